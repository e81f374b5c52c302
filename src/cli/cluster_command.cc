// `kiln cluster status`: the warm cluster as the caller's environment sees it
// (GET /v1/cluster: workers, slots, this environment's queue).
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"

namespace kiln::cli {
namespace {

using nlohmann::json;

struct ClusterFlags {
  ApiFlags api;
  bool json = false;
  std::string node;
  double notice_seconds = -1;
};

std::string scalar_text(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

// Prints the scalar members as "key value" lines (nested objects as
// "outer.inner"), so fields the server adds later show up without a client
// change; arrays of objects are printed afterwards as tables.
void print_scalars(const json& obj, const std::string& prefix,
                   std::vector<std::pair<std::string, const json*>>* tables) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const std::string key = prefix + it.key();
    if (it->is_object()) {
      print_scalars(*it, key + ".", tables);
    } else if (it->is_array() && !it->empty() && (*it)[0].is_object()) {
      tables->emplace_back(key, &*it);
    } else if (it->is_array()) {
      std::string items;
      for (const auto& v : *it) items += (items.empty() ? "" : ", ") + scalar_text(v);
      std::printf("%-24s %s\n", key.c_str(), items.empty() ? "-" : items.c_str());
    } else {
      std::printf("%-24s %s\n", key.c_str(), scalar_text(*it).c_str());
    }
  }
}

// A table of the union of the rows' keys, in first-seen order.
void print_table(const std::string& title, const json& rows) {
  std::vector<std::string> columns;
  std::set<std::string> seen;
  for (const auto& r : rows)
    for (auto it = r.begin(); it != r.end(); ++it)
      if (seen.insert(it.key()).second) columns.push_back(it.key());
  std::vector<size_t> width;
  for (const auto& c : columns) {
    size_t w = c.size();
    for (const auto& r : rows) w = std::max(w, scalar_text(r.value(c, json())).size());
    width.push_back(w);
  }
  std::printf("\n%s:\n", title.c_str());
  for (size_t i = 0; i < columns.size(); ++i) {
    std::string upper = columns[i];
    for (char& ch : upper) ch = static_cast<char>(std::toupper(ch));
    std::printf("%s%-*s", i ? "  " : "", static_cast<int>(width[i]), upper.c_str());
  }
  std::printf("\n");
  for (const auto& r : rows) {
    for (size_t i = 0; i < columns.size(); ++i) {
      std::printf("%s%-*s", i ? "  " : "", static_cast<int>(width[i]),
                  scalar_text(r.value(columns[i], json())).c_str());
    }
    std::printf("\n");
  }
}

int run_status(const ClusterFlags& f) {
  auto api = ApiClient::create(f.api);
  if (!api.is_ok()) return report_error(api.status());
  auto cluster = (*api)->get("/v1/cluster");
  if (!cluster.is_ok()) return report_error(cluster.status());
  if (f.json) {
    std::printf("%s\n", cluster->dump(2).c_str());
    return kExitOk;
  }
  std::vector<std::pair<std::string, const json*>> tables;
  std::printf("%-24s %s\n", "server", (*api)->server().c_str());
  if (cluster->is_object()) print_scalars(*cluster, "", &tables);
  for (const auto& [title, rows] : tables) print_table(title, *rows);
  return kExitOk;
}

int run_interrupt(const ClusterFlags& f) {
  auto api = ApiClient::create(f.api);
  if (!api.is_ok()) return report_error(api.status());
  json body = json::object();
  if (f.notice_seconds >= 0) body["notice_seconds"] = f.notice_seconds;
  auto r = (*api)->post("/v1/cluster/nodes/" + f.node + "/interrupt", body);
  if (!r.is_ok()) return report_error(r.status());
  std::printf("node %s: interruption notice sent; it drains now and is gone at the deadline\n",
              f.node.c_str());
  return kExitOk;
}

}  // namespace

Command add_cluster_command(CLI::App& app) {
  auto f = std::make_shared<ClusterFlags>();
  Command c;
  c.app = app.add_subcommand("cluster", "The warm cluster behind `kiln serve`");
  c.app->require_subcommand(1);
  CLI::App* status = c.app->add_subcommand(
      "status",
      "Workers and their slots (total, busy, free %), the queue depth and concurrency of the\n"
      "token's environment, and the elastic fleet: groups (desired and current nodes), nodes,\n"
      "the autoscaler's recent decisions with the metrics behind them, cost so far and per hour");
  status->add_flag("--json", f->json, "Print the API's JSON");
  add_api_flags(status, &f->api);
  CLI::App* interrupt = c.app->add_subcommand(
      "interrupt",
      "Send a node a spot interruption notice, as a cloud provider would (for tests and chaos\n"
      "runs): it takes no new tasks, its running tasks have until the notice ends, then it is\n"
      "gone and what it still ran is re-queued; the autoscaler replaces the capacity. Needs an\n"
      "operator token ([operator] token_sha256 in kiln.toml)");
  interrupt->add_option("NODE", f->node, "The node's id, as `kiln cluster status` lists it")
      ->required();
  interrupt->add_option("--notice", f->notice_seconds,
                        "Seconds of notice (default: the server's spot.notice_seconds, 120)");
  add_api_flags(interrupt, &f->api);
  c.run = [f, status, interrupt]() -> int {
    if (*status) return run_status(*f);
    if (*interrupt) return run_interrupt(*f);
    return kExitUsage;
  };
  return c;
}

}  // namespace kiln::cli
