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

// Money fields of /v1/cluster: the fleet's cost and prices, in the
// config's currency units; printed to the cent with no currency sign.
bool is_money(const std::string& path) {
  const size_t dot = path.rfind('.');
  const std::string leaf = dot == std::string::npos ? path : path.substr(dot + 1);
  return leaf == "cost" || leaf == "price_per_hour" || leaf == "rate_per_hour" ||
         path == "elastic.cost.total";
}

std::string scalar_text(const json& v, bool money = false) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (money && v.is_number()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f", v.get<double>());
    return buf;
  }
  return v.dump();
}

struct Line {
  std::string key;
  std::string value;
  bool number = false;
};

// Collects the scalar members as "key value" lines (nested objects as
// "outer.inner"), so fields the server adds later show up without a client
// change; arrays of objects are collected as tables, printed afterwards.
void collect_scalars(const json& obj, const std::string& prefix, std::vector<Line>* lines,
                     std::vector<std::pair<std::string, const json*>>* tables) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const std::string key = prefix + it.key();
    if (it->is_object()) {
      collect_scalars(*it, key + ".", lines, tables);
    } else if (it->is_array() && !it->empty() && (*it)[0].is_object()) {
      tables->emplace_back(key, &*it);
    } else if (it->is_array()) {
      std::string items;
      for (const auto& v : *it) items += (items.empty() ? "" : ", ") + scalar_text(v);
      lines->push_back({key, items.empty() ? "-" : items, false});
    } else {
      lines->push_back({key, scalar_text(*it, is_money(key)), it->is_number()});
    }
  }
}

// Keys in one column; numbers right-aligned in the next, so that amounts
// line up on their decimal point; text left-aligned from the same start.
void print_lines(const std::vector<Line>& lines) {
  size_t key_width = 0, number_width = 0;
  for (const Line& l : lines) {
    key_width = std::max(key_width, l.key.size());
    if (l.number) number_width = std::max(number_width, l.value.size());
  }
  for (const Line& l : lines) {
    std::printf("%-*s  %*s\n", static_cast<int>(key_width), l.key.c_str(),
                l.number ? static_cast<int>(number_width) : 0, l.value.c_str());
  }
}

struct Column {
  std::string key;  // "nodes" or, for a member of an object cell, "nodes.ready"
  std::vector<std::string> cells;
  bool number = true;
  size_t width = 0;
};

// A table of the union of the rows' keys, in first-seen order. A cell that
// is an object (a group's node counts by state) becomes one column per
// member; a row without that member counts 0 there. Numbers right-aligned.
void print_table(const std::string& title, const json& rows) {
  std::vector<std::string> keys;
  std::set<std::string> seen;
  for (const auto& r : rows) {
    for (auto it = r.begin(); it != r.end(); ++it) {
      if (it->is_object()) {
        for (auto sub = it->begin(); sub != it->end(); ++sub) {
          if (seen.insert(it.key() + "." + sub.key()).second)
            keys.push_back(it.key() + "." + sub.key());
        }
      } else if (seen.insert(it.key()).second) {
        keys.push_back(it.key());
      }
    }
  }
  std::vector<Column> columns;
  for (const std::string& key : keys) {
    Column c;
    c.key = key;
    const size_t dot = key.find('.');
    for (const auto& r : rows) {
      json v;
      if (dot == std::string::npos) {
        v = r.value(key, json());
      } else {
        const json outer = r.value(key.substr(0, dot), json());
        v = outer.is_object() ? outer.value(key.substr(dot + 1), json(0)) : json(0);
      }
      if (!v.is_number() && !v.is_null()) c.number = false;
      c.cells.push_back(scalar_text(v, is_money(key)));
    }
    std::string upper = key;
    for (char& ch : upper) ch = static_cast<char>(std::toupper(ch));
    c.key = upper;
    c.width = c.key.size();
    for (const auto& cell : c.cells) c.width = std::max(c.width, cell.size());
    columns.push_back(std::move(c));
  }
  auto print_row = [&](auto&& cell_of) {
    std::string line;
    for (size_t i = 0; i < columns.size(); ++i) {
      const Column& c = columns[i];
      const std::string text = cell_of(c);
      const std::string pad(c.width - text.size(), ' ');
      if (i) line += "  ";
      line += c.number ? pad + text : text + pad;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
  };
  std::printf("\n%s:\n", title.c_str());
  print_row([](const Column& c) { return c.key; });
  for (size_t r = 0; r < rows.size(); ++r) print_row([r](const Column& c) { return c.cells[r]; });
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
  std::vector<Line> lines = {{"server", (*api)->server(), false}};
  std::vector<std::pair<std::string, const json*>> tables;
  if (cluster->is_object()) collect_scalars(*cluster, "", &lines, &tables);
  print_lines(lines);
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
