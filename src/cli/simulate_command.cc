// `kiln simulate replay`: the autoscaler's recorded inputs through the same
// code again. kiln serve appends each autoscaling round's sample and nodes
// to <state_dir>/autoscaler-samples.jsonl; replaying them through a fresh
// Autoscaler built from the same config must give the decisions the server
// took (autoscaler-decisions.jsonl): the live/simulated cross-check.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <toml++/toml.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "elastic/autoscaler.h"
#include "elastic/config.h"
#include "elastic/json.h"
#include "sim/simulator.h"

namespace kiln::cli {
namespace {

using nlohmann::json;

struct SimulateFlags {
  std::string config;
  std::string samples;
  std::string scenario, workload, spot, svg;
  bool json = false;
};

// The autoscaler config of a kiln.toml or a scenario file: its [[group]]
// and [autoscaling] tables ([executor] sizes the core when there are no
// groups, as kiln serve does).
Result<elastic::AutoscalerConfig> load_autoscaler_config(const std::string& path) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << path << ": line " << e.source().begin.line << ": " << e.description();
    return invalid_argument(msg.str());
  }
  elastic::CoreDefaults core;
  if (const toml::table* ex = root["executor"].as_table()) {
    core.nodes =
        static_cast<int>(ex->get("workers") ? ex->get("workers")->value_or(int64_t{1}) : 1);
    core.slots_per_node = static_cast<int>(
        ex->get("slots_per_worker") ? ex->get("slots_per_worker")->value_or(int64_t{2}) : 2);
  }
  auto c = elastic::parse_autoscaler_config(root, core);
  if (!c.is_ok()) return c.status().with_context(path);
  return c;
}

int run_replay(const SimulateFlags& f) {
  auto config = load_autoscaler_config(f.config);
  if (!config.is_ok()) return report_error(config.status());
  std::ifstream in(f.samples);
  if (!in) return report_error(not_found("samples file '" + f.samples + "': cannot read it"));
  elastic::Autoscaler autoscaler(*config);
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    const std::string where = f.samples + ":" + std::to_string(number);
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return report_error(invalid_argument(where + ": not a JSON object"));
    }
    auto sample = elastic::sample_from_json(j.value("sample", json()));
    if (!sample.is_ok()) return report_error(sample.status().with_context(where));
    std::vector<elastic::Node> nodes;
    const json list = j.value("nodes", json::array());
    if (!list.is_array()) return report_error(invalid_argument(where + ": nodes: not a list"));
    for (const json& n : list) {
      auto node = elastic::node_from_json(n);
      if (!node.is_ok()) return report_error(node.status().with_context(where));
      nodes.push_back(std::move(node).value());
    }
    const elastic::Plan plan = autoscaler.reconcile(*sample, nodes);
    for (const elastic::Decision& d : plan.decisions) {
      json out = elastic::to_json(d);
      out.erase("sample");
      std::printf("%s\n", out.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
    }
  }
  return kExitOk;
}

int run_simulation(const SimulateFlags& f) {
  auto scenario = sim::load_scenario(f.scenario, f.workload, f.spot);
  if (!scenario.is_ok()) return report_error(scenario.status());
  const auto t0 = std::chrono::steady_clock::now();
  auto report = sim::simulate(*scenario);
  if (!report.is_ok()) return report_error(report.status());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!f.svg.empty()) {
    std::ofstream out(f.svg);
    out << sim::report_svg(*report);
    if (!out) return report_error(io_error("--svg '" + f.svg + "': cannot write it"));
  }
  if (f.json) {
    json j = sim::report_json(*report);
    j["wall_seconds"] = secs;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("%s", sim::report_table(*report).c_str());
    std::printf("\nsimulated in %.2f s%s%s\n", secs,
                f.svg.empty() ? "" : "; chart: ", f.svg.c_str());
  }
  return kExitOk;
}

}  // namespace

Command add_simulate_command(CLI::App& app) {
  auto f = std::make_shared<SimulateFlags>();
  Command c;
  c.app = app.add_subcommand("simulate", "Elastic capacity without spending money");
  c.app->require_subcommand(1);
  CLI::App* replay = c.app->add_subcommand(
      "replay",
      "Feed the autoscaling samples kiln serve recorded (<state_dir>/autoscaler-samples.jsonl,\n"
      "one {\"sample\": ..., \"nodes\": [...]} per line) through the autoscaler built from a\n"
      "config, and print its decisions as JSON lines {t_ms, group, from, to, policy, reason}.\n"
      "With the server's own config they equal its autoscaler-decisions.jsonl.");
  replay
      ->add_option("--config", f->config,
                   "kiln.toml (or a scenario file) with [[group]] and "
                   "[autoscaling] tables")
      ->required();
  replay->add_option("--samples", f->samples, "The recorded samples (JSON lines)")->required();
  CLI::App* run = c.app->add_subcommand(
      "run",
      "Run a workload trace through four ways of providing capacity and compare them: a\n"
      "cluster per request (bootstrap paid per step), a fixed on-demand cluster sized for the\n"
      "peak, one sized for the median, and the scenario's warm core + autoscaled groups,\n"
      "driven by the same autoscaler and job-store scheduling as kiln serve on a simulated\n"
      "clock. Prints cost, step wait p50/p95/p99, makespan, node-hours by market,\n"
      "interruptions and re-done work (docs/simulate.md).");
  run->add_option("SCENARIO", f->scenario,
                  "Scenario TOML: [[group]], [autoscaling] and [simulation] tables "
                  "(examples/traces/month.toml)")
      ->required();
  run->add_option("--workload", f->workload,
                  "Workload CSV (arrival_s,environment,tiles); default: the scenario's");
  run->add_option("--spot-trace", f->spot,
                  "Spot CSV (t_s,price_per_hour,interruptions_per_node_hour); default: the "
                  "scenario's");
  run->add_flag("--json", f->json, "Print the report as JSON");
  run->add_option("--svg", f->svg, "Also write a chart of demand, capacity and cost to FILE");
  c.run = [f, replay, run]() -> int {
    if (*replay) return run_replay(*f);
    if (*run) return run_simulation(*f);
    return kExitUsage;
  };
  return c;
}

}  // namespace kiln::cli
