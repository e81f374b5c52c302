#include "config/autoscaler_config.h"

#include <cmath>
#include <set>

#include "config/limits.h"
#include "config/toml_fields.h"

namespace kiln::config {
namespace {

using elastic::Adjustment;
using elastic::AutoscalerConfig;
using elastic::Comparison;
using elastic::GroupConfig;
using elastic::PriceTrace;
using elastic::ScalingRule;
using elastic::TargetTracking;

// The tables of an array of tables `key` in `t` (empty when absent).
Result<std::vector<const toml::table*>> tables(const toml::table& t, const std::string& where,
                                               const char* key) {
  std::vector<const toml::table*> out;
  const toml::node* n = t.get(key);
  if (!n) return out;
  if (!n->is_array_of_tables()) {
    return invalid_argument(where + key + ": must be a list of tables ([[" + where + key + "]])");
  }
  for (const toml::node& e : *n->as_array()) out.push_back(e.as_table());
  return out;
}

Result<GroupConfig> parse_group(const toml::table& t, const std::string& where) {
  KILN_RETURN_IF_ERROR(
      check_keys(t, where,
                 {"name", "core", "market", "min_nodes", "max_nodes", "slots_per_node",
                  "price_per_hour", "price_trace", "bootstrap_seconds", "fallback_group",
                  "fallback_after_interruptions", "interruption_window_seconds", "nodes"}));
  GroupConfig g;
  KILN_RETURN_IF_ERROR(get_string(t, where, "name", &g.name));
  if (g.name.empty()) return invalid_argument(where + ".name: required");
  KILN_RETURN_IF_ERROR(get_bool(t, where, "core", &g.core));
  std::string market = "on_demand";
  KILN_RETURN_IF_ERROR(get_string(t, where, "market", &market));
  auto m = elastic::parse_market(market);
  if (!m.is_ok()) return invalid_argument(where + ".market: " + m.status().message());
  g.market = *m;
  g.min_nodes = g.core ? 1 : 0;
  KILN_RETURN_IF_ERROR(get_int(t, where, "min_nodes", 0, 10000, &g.min_nodes));
  g.max_nodes = g.min_nodes;
  KILN_RETURN_IF_ERROR(get_int(t, where, "max_nodes", 0, 10000, &g.max_nodes));
  if (g.max_nodes < g.min_nodes) {
    return invalid_argument(where + ".max_nodes: must be >= min_nodes (" +
                            std::to_string(g.min_nodes) + "), got " + std::to_string(g.max_nodes));
  }
  KILN_RETURN_IF_ERROR(get_int(t, where, "slots_per_node", 1, kMaxSlotsPerNode, &g.slots_per_node));
  const bool has_price = t.get("price_per_hour") != nullptr;
  const bool has_trace = t.get("price_trace") != nullptr;
  if (has_price && has_trace) {
    return invalid_argument(where + ": give price_per_hour or price_trace, not both");
  }
  if (has_trace) {
    const toml::node* n = t.get("price_trace");
    std::vector<std::pair<int64_t, double>> points;
    bool ok = n->is_array() && !n->as_array()->empty();
    if (ok) {
      for (const toml::node& p : *n->as_array()) {
        const toml::array* pair = p.as_array();
        if (!pair || pair->size() != 2 || !pair->get(0)->value<double>() ||
            !pair->get(1)->value<double>()) {
          ok = false;
          break;
        }
        points.emplace_back(static_cast<int64_t>(*pair->get(0)->value<double>() * 1000),
                            *pair->get(1)->value<double>());
      }
    }
    if (!ok) {
      return invalid_argument(where + ".price_trace: must be a list of [t_seconds, price] pairs");
    }
    auto trace = PriceTrace::from_points(std::move(points));
    if (!trace.is_ok())
      return invalid_argument(where + ".price_trace: " + trace.status().message());
    g.price = *trace;
  } else {
    double price = 0;
    KILN_RETURN_IF_ERROR(get_number(t, where, "price_per_hour", &price));
    if (price < 0) return invalid_argument(where + ".price_per_hour: must be >= 0");
    g.price = PriceTrace(price);
  }
  KILN_RETURN_IF_ERROR(get_seconds(t, where, "bootstrap_seconds", 86400, &g.bootstrap_ms));
  KILN_RETURN_IF_ERROR(get_string(t, where, "fallback_group", &g.fallback_group));
  KILN_RETURN_IF_ERROR(
      get_int(t, where, "fallback_after_interruptions", 1, 1000, &g.fallback_after_interruptions));
  KILN_RETURN_IF_ERROR(
      get_seconds(t, where, "interruption_window_seconds", 30 * 86400, &g.interruption_window_ms));
  if (const toml::node* n = t.get("nodes")) {
    const toml::array* a = n->as_array();
    if (!a) return invalid_argument(where + ".nodes: must be a list of node names");
    for (const toml::node& e : *a) {
      auto name = e.value<std::string>();
      if (!name) return invalid_argument(where + ".nodes: must be a list of node names");
      g.node_names.push_back(*name);
    }
  }
  return g;
}

Result<Comparison> parse_comparison(const std::string& s) {
  if (s == ">") return Comparison::kGreater;
  if (s == ">=") return Comparison::kGreaterOrEqual;
  if (s == "<") return Comparison::kLess;
  if (s == "<=") return Comparison::kLessOrEqual;
  return invalid_argument("must be \">\", \">=\", \"<\" or \"<=\", not '" + s + "'");
}

Result<Adjustment> parse_adjustment(const std::string& s) {
  if (s == "change_in_capacity") return Adjustment::kChangeInCapacity;
  if (s == "percent_change_in_capacity") return Adjustment::kPercentChangeInCapacity;
  if (s == "exact_capacity") return Adjustment::kExactCapacity;
  return invalid_argument(
      "must be change_in_capacity, percent_change_in_capacity or exact_capacity, not '" + s + "'");
}

Result<ScalingRule> parse_rule(const toml::table& t, const std::string& where) {
  KILN_RETURN_IF_ERROR(
      check_keys(t, where,
                 {"name", "group", "metric", "comparison", "threshold", "evaluation_periods",
                  "adjustment", "amount", "cooldown_seconds"}));
  ScalingRule r;
  KILN_RETURN_IF_ERROR(get_string(t, where, "name", &r.name));
  KILN_RETURN_IF_ERROR(get_string(t, where, "group", &r.group));
  KILN_RETURN_IF_ERROR(get_string(t, where, "metric", &r.metric));
  if (r.group.empty() || r.metric.empty()) {
    return invalid_argument(where + ": group and metric are required");
  }
  if (r.name.empty()) r.name = where;
  std::string cmp = ">", adj = "change_in_capacity";
  KILN_RETURN_IF_ERROR(get_string(t, where, "comparison", &cmp));
  auto c = parse_comparison(cmp);
  if (!c.is_ok()) return invalid_argument(where + ".comparison: " + c.status().message());
  r.comparison = *c;
  if (!t.get("threshold")) return invalid_argument(where + ".threshold: required");
  KILN_RETURN_IF_ERROR(get_number(t, where, "threshold", &r.threshold));
  KILN_RETURN_IF_ERROR(get_int(t, where, "evaluation_periods", 1, 1000, &r.evaluation_periods));
  KILN_RETURN_IF_ERROR(get_string(t, where, "adjustment", &adj));
  auto a = parse_adjustment(adj);
  if (!a.is_ok()) return invalid_argument(where + ".adjustment: " + a.status().message());
  r.adjustment = *a;
  KILN_RETURN_IF_ERROR(get_number(t, where, "amount", &r.amount));
  KILN_RETURN_IF_ERROR(get_seconds(t, where, "cooldown_seconds", 86400, &r.cooldown_ms));
  return r;
}

Result<TargetTracking> parse_target(const toml::table& t, const std::string& where) {
  KILN_RETURN_IF_ERROR(check_keys(t, where,
                                  {"group", "free_slot_pct", "scale_out_cooldown_seconds",
                                   "scale_in_cooldown_seconds", "idle_timeout_seconds"}));
  TargetTracking g;
  KILN_RETURN_IF_ERROR(get_string(t, where, "group", &g.group));
  if (g.group.empty()) return invalid_argument(where + ".group: required");
  KILN_RETURN_IF_ERROR(get_number(t, where, "free_slot_pct", &g.target_free_slot_pct));
  KILN_RETURN_IF_ERROR(
      get_seconds(t, where, "scale_out_cooldown_seconds", 86400, &g.scale_out_cooldown_ms));
  KILN_RETURN_IF_ERROR(
      get_seconds(t, where, "scale_in_cooldown_seconds", 86400, &g.scale_in_cooldown_ms));
  KILN_RETURN_IF_ERROR(get_seconds(t, where, "idle_timeout_seconds", 86400, &g.idle_timeout_ms));
  return g;
}

}  // namespace

Result<AutoscalerConfig> parse_autoscaler_config(const toml::table& root,
                                                 const CoreDefaults& core) {
  AutoscalerConfig c;
  KILN_ASSIGN_OR_RETURN(std::vector<const toml::table*> groups, tables(root, "", "group"));
  for (size_t i = 0; i < groups.size(); ++i) {
    KILN_ASSIGN_OR_RETURN(GroupConfig g,
                          parse_group(*groups[i], "group[" + std::to_string(i) + "]"));
    c.groups.push_back(std::move(g));
  }
  if (c.groups.empty()) {
    GroupConfig g;
    g.name = "core";
    g.core = true;
    g.min_nodes = g.max_nodes = core.nodes;
    g.slots_per_node = core.slots_per_node;
    g.price = PriceTrace(0);
    c.groups.push_back(g);
  }
  if (const toml::node* n = root.get("autoscaling")) {
    const toml::table* t = n->as_table();
    if (!t) return invalid_argument("autoscaling: must be a table ([autoscaling])");
    KILN_RETURN_IF_ERROR(check_keys(*t, "autoscaling",
                                    {"period_seconds", "drain_timeout_seconds", "rule", "target"}));
    KILN_RETURN_IF_ERROR(get_seconds(*t, "autoscaling", "period_seconds", 3600, &c.period_ms));
    if (c.period_ms < 100) return invalid_argument("autoscaling.period_seconds: must be >= 0.1");
    KILN_RETURN_IF_ERROR(
        get_seconds(*t, "autoscaling", "drain_timeout_seconds", 86400, &c.drain_timeout_ms));
    KILN_ASSIGN_OR_RETURN(std::vector<const toml::table*> rules,
                          tables(*t, "autoscaling.", "rule"));
    for (size_t i = 0; i < rules.size(); ++i) {
      KILN_ASSIGN_OR_RETURN(ScalingRule r,
                            parse_rule(*rules[i], "autoscaling.rule[" + std::to_string(i) + "]"));
      c.rules.push_back(std::move(r));
    }
    KILN_ASSIGN_OR_RETURN(std::vector<const toml::table*> targets,
                          tables(*t, "autoscaling.", "target"));
    for (size_t i = 0; i < targets.size(); ++i) {
      KILN_ASSIGN_OR_RETURN(
          TargetTracking tt,
          parse_target(*targets[i], "autoscaling.target[" + std::to_string(i) + "]"));
      c.targets.push_back(std::move(tt));
    }
  }
  KILN_RETURN_IF_ERROR(elastic::validate(c));
  return c;
}

}  // namespace kiln::config
