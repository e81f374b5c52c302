#include "elastic/capacity.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

namespace kiln::elastic {

const char* market_name(Market m) { return m == Market::kSpot ? "spot" : "on_demand"; }

Result<Market> parse_market(const std::string& name) {
  if (name == "on_demand") return Market::kOnDemand;
  if (name == "spot") return Market::kSpot;
  return invalid_argument("market must be \"on_demand\" or \"spot\", not '" + name + "'");
}

const char* node_state_name(NodeState s) {
  switch (s) {
    case NodeState::kBooting:
      return "booting";
    case NodeState::kReady:
      return "ready";
    case NodeState::kDraining:
      return "draining";
    case NodeState::kGone:
      return "gone";
  }
  return "unknown";
}

// --- PriceTrace ----------------------------------------------------------------

PriceTrace::PriceTrace(double constant_per_hour) : points_{{0, constant_per_hour}} {}

Result<PriceTrace> PriceTrace::from_points(std::vector<std::pair<int64_t, double>> points) {
  if (points.empty()) return invalid_argument("a price trace needs at least one point");
  for (const auto& [t, p] : points) {
    if (!std::isfinite(p) || p < 0) {
      return invalid_argument("price " + std::to_string(p) + " at t=" + std::to_string(t / 1000) +
                              " s: must be a finite number >= 0");
    }
  }
  std::stable_sort(points.begin(), points.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  PriceTrace trace;
  trace.points_ = std::move(points);
  return trace;
}

double PriceTrace::at(int64_t t_ms) const {
  if (points_.empty()) return 0;
  // The last point at or before t; before the first point, the first price.
  auto it = std::upper_bound(points_.begin(), points_.end(), t_ms,
                             [](int64_t t, const auto& p) { return t < p.first; });
  return it == points_.begin() ? points_.front().second : std::prev(it)->second;
}

double PriceTrace::cost(int64_t t0_ms, int64_t t1_ms) const {
  if (points_.empty() || t1_ms <= t0_ms) return 0;
  double total = 0;
  int64_t t = t0_ms;
  // Walk the steps that start inside (t0, t1).
  auto it = std::upper_bound(points_.begin(), points_.end(), t0_ms,
                             [](int64_t v, const auto& p) { return v < p.first; });
  double price = it == points_.begin() ? points_.front().second : std::prev(it)->second;
  for (; it != points_.end() && it->first < t1_ms; ++it) {
    total += price * static_cast<double>(it->first - t) / 3.6e6;
    t = it->first;
    price = it->second;
  }
  total += price * static_cast<double>(t1_ms - t) / 3.6e6;
  return total;
}

// --- groups --------------------------------------------------------------------

Status validate_groups(const std::vector<GroupConfig>& groups) {
  if (groups.empty()) return invalid_argument("at least one group is needed: the core group");
  std::set<std::string> names;
  std::set<std::string> node_names;  // across groups
  int cores = 0;
  for (const GroupConfig& g : groups) {
    const std::string where = "group '" + g.name + "'";
    bool ok_name = !g.name.empty() && g.name.size() <= 32;
    for (char ch : g.name) {
      if (!(std::islower(static_cast<unsigned char>(ch)) ||
            std::isdigit(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-')) {
        ok_name = false;
      }
    }
    if (!ok_name) return invalid_argument(where + ".name: 1-32 of [a-z0-9_-]");
    if (!names.insert(g.name).second) return invalid_argument(where + ": configured twice");
    if (g.min_nodes < 0 || g.max_nodes < g.min_nodes) {
      return invalid_argument(where + ": needs 0 <= min_nodes <= max_nodes (got " +
                              std::to_string(g.min_nodes) + ", " + std::to_string(g.max_nodes) +
                              ")");
    }
    if (g.max_nodes > 10000) return invalid_argument(where + ".max_nodes: at most 10000");
    if (g.slots_per_node < 1 || g.slots_per_node > 256) {
      return invalid_argument(where + ".slots_per_node: must be 1-256");
    }
    if (g.bootstrap_ms < 0) return invalid_argument(where + ".bootstrap_seconds: must be >= 0");
    if (!g.node_names.empty()) {
      if (static_cast<int>(g.node_names.size()) < g.max_nodes) {
        return invalid_argument(where + ".nodes: " + std::to_string(g.node_names.size()) +
                                " name(s) for max_nodes " + std::to_string(g.max_nodes));
      }
      for (const std::string& n : g.node_names) {
        bool ok = !n.empty() && n.size() <= 64;
        for (char ch : n) {
          if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' ||
                ch == '.')) {
            ok = false;
          }
        }
        if (!ok) return invalid_argument(where + ".nodes: '" + n + "' is not a node name");
        if (!node_names.insert(n).second) {
          return invalid_argument(where + ".nodes: '" + n + "' is named twice");
        }
      }
    }
    if (g.core) {
      ++cores;
      if (g.market != Market::kOnDemand) {
        return invalid_argument(where +
                                ": the core group must be on demand (it keeps the "
                                "cluster warm; spot capacity can be taken away)");
      }
      if (g.min_nodes < 1) {
        return invalid_argument(where +
                                ".min_nodes: the core group needs at least 1 node, so "
                                "the cluster stays warm");
      }
    }
    if (g.fallback_after_interruptions < 1) {
      return invalid_argument(where + ".fallback_after_interruptions: must be >= 1");
    }
  }
  if (cores != 1) {
    return invalid_argument("exactly one group must be the core group (core = true), found " +
                            std::to_string(cores));
  }
  for (const GroupConfig& g : groups) {
    if (g.fallback_group.empty()) continue;
    const std::string where = "group '" + g.name + "'.fallback_group";
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const GroupConfig& o) { return o.name == g.fallback_group; });
    if (it == groups.end())
      return invalid_argument(where + ": no group '" + g.fallback_group + "'");
    if (it->market != Market::kOnDemand) {
      return invalid_argument(where + ": '" + g.fallback_group + "' must be on demand");
    }
    if (it->name == g.name) return invalid_argument(where + ": a group cannot fall back on itself");
  }
  return Status::ok();
}

// --- samples -------------------------------------------------------------------

const std::vector<std::string>& metric_names() {
  static const std::vector<std::string> names = {
      "pending_tasks",         "running_tasks", "free_slot_pct", "pending_ratio",
      "oldest_pending_wait_s", "slots_total",   "slots_busy",    "backlog_steps"};
  return names;
}

Result<double> metric_value(const ClusterSample& s, const std::string& name) {
  if (name == "pending_tasks") return static_cast<double>(s.pending_tasks);
  if (name == "running_tasks") return static_cast<double>(s.running_tasks);
  if (name == "free_slot_pct") return s.free_slot_pct;
  if (name == "pending_ratio") return s.pending_ratio;
  if (name == "oldest_pending_wait_s") return static_cast<double>(s.oldest_pending_wait_ms) / 1000;
  if (name == "slots_total") return static_cast<double>(s.slots_total);
  if (name == "slots_busy") return static_cast<double>(s.slots_busy);
  if (name == "backlog_steps") return static_cast<double>(s.backlog_steps);
  std::string known;
  for (const auto& n : metric_names()) known += (known.empty() ? "" : ", ") + n;
  return invalid_argument("unknown metric '" + name + "' (known: " + known + ")");
}

void derive(ClusterSample* s) {
  s->free_slot_pct = s->slots_total > 0
                         ? 100.0 * static_cast<double>(s->slots_total - s->slots_busy) /
                               static_cast<double>(s->slots_total)
                         : 0;
  s->pending_ratio = static_cast<double>(s->pending_tasks) /
                     static_cast<double>(std::max<int64_t>(1, s->slots_total));
}

}  // namespace kiln::elastic
