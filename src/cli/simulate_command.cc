// `kiln simulate replay`: the autoscaler's recorded inputs through the same
// code again. kiln serve appends each autoscaling round's sample and nodes
// to <state_dir>/autoscaler-samples.jsonl; replaying them through a fresh
// Autoscaler built from the same config must give the decisions the server
// took (autoscaler-decisions.jsonl): the live/simulated cross-check.
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

namespace kiln::cli {
namespace {

using nlohmann::json;

struct SimulateFlags {
  std::string config;
  std::string samples;
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
  c.run = [f, replay]() -> int {
    if (*replay) return run_replay(*f);
    return kExitUsage;
  };
  return c;
}

}  // namespace kiln::cli
