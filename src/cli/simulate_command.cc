// `kiln simulate`: elastic capacity without spending money.
//
// `run` compares four ways of providing capacity on one workload trace
// (src/sim, docs/simulate.md). `replay` puts the autoscaler's recorded
// inputs through the same code again. kiln serve appends each autoscaling round's sample and nodes
// to <state_dir>/autoscaler-samples.jsonl; replaying them through a fresh
// Autoscaler built from the same config must give the decisions the server
// took (autoscaler-decisions.jsonl): the live/simulated cross-check.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <toml++/toml.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "config/autoscaler_config.h"
#include "elastic/autoscaler.h"
#include "elastic/json.h"
#include "sim/report.h"
#include "sim/simulator.h"

namespace kiln::cli {
namespace {

using nlohmann::json;

struct SimulateFlags {
  std::string config;
  std::string samples;
  std::string scenario, workload, spot, svg, record;
  bool json = false;
  bool profile = false;
  bool quiet = false;
  int threads = 2;
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
  config::CoreDefaults core;
  if (const toml::table* ex = root["executor"].as_table()) {
    core.nodes =
        static_cast<int>(ex->get("workers") ? ex->get("workers")->value_or(int64_t{1}) : 1);
    core.slots_per_node = static_cast<int>(
        ex->get("slots_per_worker") ? ex->get("slots_per_worker")->value_or(int64_t{2}) : 2);
  }
  auto c = config::parse_autoscaler_config(root, core);
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
  std::vector<sim::Profile> profiles;
  sim::SimulateOptions options;
  options.threads = f.threads;
  if (f.profile) options.profiles = &profiles;
  options.record_dir = f.record;
  auto report = sim::simulate(*scenario, options);
  if (!report.is_ok()) return report_error(report.status());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!f.svg.empty()) {
    std::ofstream out(f.svg, std::ios::binary);
    out << sim::report_svg(*report);
    out.close();
    if (!out) return report_error(io_error("--svg '" + f.svg + "': cannot write it"));
  }
  // stdout is a function of the inputs and the seed only (the timing goes
  // to stderr), so runs can be compared byte for byte.
  if (f.json) {
    std::printf("%s\n", sim::report_json(*report).dump(2).c_str());
  } else {
    std::printf("%s", sim::report_table(*report).c_str());
  }
  if (f.profile) {
    for (const sim::Profile& p : profiles) std::fprintf(stderr, "%s", p.format().c_str());
  }
  if (!f.quiet) {
    std::fprintf(stderr, "kiln simulate: %.2f s (%d thread%s)%s%s\n", secs, f.threads,
                 f.threads == 1 ? "" : "s", f.svg.empty() ? "" : "; chart: ", f.svg.c_str());
  }
  return kExitOk;
}

}  // namespace

Command add_simulate_command(CLI::App& app) {
  auto f = std::make_shared<SimulateFlags>();
  Command c;
  c.app = app.add_subcommand(
      "simulate",
      "Elastic capacity without spending money: `run` compares a cluster per request, fixed\n"
      "clusters and Kiln's autoscaled spot cluster on a workload trace; `replay` feeds\n"
      "recorded autoscaler samples through the autoscaler again");
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
      "Run a workload trace through four ways of providing capacity and compare them on\n"
      "cost, step wait, makespan, node-hours by market, spot interruptions and re-done work:\n"
      "  per-request   a cluster per step: per_request_nodes on-demand nodes of the core\n"
      "                group's type, bootstrapped for every step (closed form)\n"
      "  fixed-peak    an always-on on-demand cluster sized for the peak demand\n"
      "  fixed-median  the same, sized for the median demand\n"
      "                (demand: the slots the trace would keep busy if every step started on\n"
      "                arrival, averaged over demand_window_seconds; peak: the busiest window;\n"
      "                median: the window half of the work arrives at or below)\n"
      "  autoscaled    the scenario's [[group]] tables and [autoscaling] policies: the warm\n"
      "                core plus autoscaled (spot) task groups\n"
      "The last three run kiln serve's own job-store scheduling (in-memory SQLite) and its\n"
      "fleet and autoscaler on a simulated clock. Same inputs and seed: same output bytes.");
  run->add_option("SCENARIO", f->scenario,
                  "Scenario TOML: [[group]] and [autoscaling] tables as in kiln.toml, and a\n"
                  "[simulation] table (examples/traces/month.toml shows every key)")
      ->required();
  run->add_option("--workload", f->workload,
                  "Workload trace; overrides simulation.workload. CSV with the header\n"
                  "arrival_s,environment,tiles (seconds from the start; an environment of\n"
                  "[[simulation.environment]]; the step's size in tiles), or JSON lines\n"
                  "{\"arrival_s\": 3600, \"environment\": \"production\", \"tiles\": 8000}\n"
                  "(.jsonl/.json, or a first line starting with '{'). '#' lines are comments.");
  run->add_option("--spot-trace", f->spot,
                  "Spot market trace; overrides simulation.spot_trace. CSV with the header\n"
                  "t_s,price_per_hour[,interruptions_per_node_hour], or JSON lines with those\n"
                  "keys: a step function over time that replaces the spot groups' price and\n"
                  "the interruption rate (simulation.spot_interruptions_per_node_hour where\n"
                  "it gives none)");
  run->add_flag("--json", f->json, "Print the report as JSON instead of a table");
  run->add_option("--svg", f->svg,
                  "Also write a chart to FILE: the autoscaled cluster's demand and ready\n"
                  "capacity by market, and every strategy's cost so far, over time");
  run->add_option("--threads", f->threads, "Strategies simulated at once (1-3)")
      ->check(CLI::Range(1, 3))
      ->capture_default_str();
  run->add_flag("--profile", f->profile,
                "Print where each strategy's time went (job store and fleet calls) on stderr");
  run->add_flag("--quiet", f->quiet, "No timing line on stderr");
  run->add_option("--record", f->record,
                  "Write the autoscaled strategy's autoscaling rounds to DIR as kiln serve\n"
                  "records them: autoscaler-samples.jsonl (for `kiln simulate replay`) and\n"
                  "autoscaler-decisions.jsonl");
  run->footer(
      "[simulation] keys (defaults): workload, spot_trace (paths relative to the scenario),\n"
      "tiles_per_slot_second (50), tiles_per_partition (2000), max_partitions (64),\n"
      "commit_seconds (5), per_request_bootstrap_seconds (600), per_request_nodes (4),\n"
      "starvation_seconds (30), spot_notice_seconds (120), spot_interruptions_per_node_hour\n"
      "(0; where the spot trace gives none), demand_window_seconds (900),\n"
      "chart_bucket_seconds (3600), seed (1), and [[simulation.environment]] tables with\n"
      "name, concurrency, priority (default: production 256/10, staging 64/0).\n"
      "Output: cost by market, step wait (submission to first task started) p50/p95/p99,\n"
      "makespan, node-hours by market, most nodes up, interruptions, re-done task time.\n"
      "Exit status: 0 on success, 2 for a bad scenario or trace (the message names the file\n"
      "and line), 6 for a missing file. More: docs/simulate.md.");
  c.run = [f, replay, run]() -> int {
    if (*replay) return run_replay(*f);
    if (*run) return run_simulation(*f);
    return kExitUsage;
  };
  return c;
}

}  // namespace kiln::cli
