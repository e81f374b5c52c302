// report_table and report_json (report_svg is chart.cc).
#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>

#include "sim/report.h"

namespace kiln::sim {
namespace {

using nlohmann::json;

std::string printf_string(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string printf_string(const char* format, ...) {
  char buf[1024];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  return buf;
}

const StrategyResult* find(const Report& r, const std::string& name) {
  for (const StrategyResult& s : r.strategies)
    if (s.name == name) return &s;
  return nullptr;
}

// Rounded to `scale` (a power of ten: 1000 keeps 3 decimals) for JSON, so
// the numbers read as decimals and do not show the last bits of a sum.
// Dividing by the exact power of ten gives the double nearest the decimal.
double round_to(double v, double scale) { return std::round(v * scale) / scale; }

}  // namespace

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double rank = std::ceil(p / 100.0 * static_cast<double>(v.size()));
  const size_t k = static_cast<size_t>(std::clamp(rank, 1.0, static_cast<double>(v.size()))) - 1;
  return v[k];
}

std::string report_table(const Report& r) {
  std::string out;
  out += printf_string("scenario %s (seed %llu)\n", r.scenario.c_str(),
                       static_cast<unsigned long long>(r.seed));
  out += printf_string("workload %lld steps, %lld tasks, %.0f slot-hours of work over %.1f days\n",
                       static_cast<long long>(r.steps), static_cast<long long>(r.tasks),
                       r.work_slot_hours, r.trace_days);
  out += printf_string(
      "demand   peak %.1f slots -> %d nodes, median %.1f slots -> %d nodes (%d-slot nodes, "
      "%lld-min windows)\n\n",
      r.peak_slots, r.peak_nodes, r.median_slots, r.median_nodes, r.slots_per_node,
      static_cast<long long>(r.demand_window_s / 60));
  out += printf_string("%-13s %10s %7s %9s %8s %8s %9s %10s %10s %6s %6s %9s\n", "STRATEGY", "COST",
                       "OF PEAK", "WAIT p50", "p95", "p99", "MAKESPAN", "OD NODE-H", "SPOT NODE-H",
                       "NODES", "INTR", "REDONE");
  const StrategyResult* peak = find(r, "fixed-peak");
  for (const StrategyResult& s : r.strategies) {
    const std::string share = peak != nullptr && peak->cost > 0
                                  ? printf_string("%.0f%%", 100 * s.cost / peak->cost)
                                  : std::string("-");
    out += printf_string(
        "%-13s %10.2f %7s %8.0fs %7.0fs %7.0fs %8.1fh %10.1f %11.1f %6d %6lld %8.1fh\n",
        s.name.c_str(), s.cost, share.c_str(), s.wait_p50_s, s.wait_p95_s, s.wait_p99_s,
        s.makespan_h, s.node_hours_on_demand, s.node_hours_spot, s.peak_nodes,
        static_cast<long long>(s.interruptions), s.redone_task_seconds / 3600);
  }
  out += "\n";
  for (const StrategyResult& s : r.strategies) {
    out += printf_string("%-13s %s", s.name.c_str(), s.shape.c_str());
    if (s.completed != s.steps) {
      out += printf_string(" (%lld of %lld steps completed)", static_cast<long long>(s.completed),
                           static_cast<long long>(s.steps));
    }
    out += "\n";
  }
  out +=
      "\nCOST in the price traces' currency; OF PEAK: share of fixed-peak's cost; WAIT: "
      "submission to first task started;\nNODES: most up at once; INTR: spot interruptions; "
      "REDONE: task-hours lost to interruptions and drains.\n";
  return out;
}

json report_json(const Report& r) {
  json strategies = json::array();
  for (const StrategyResult& s : r.strategies) {
    strategies.push_back({
        {"name", s.name},
        {"shape", s.shape},
        {"cost", round_to(s.cost, 1e4)},
        {"cost_by_market",
         {{"on_demand", round_to(s.cost_on_demand, 1e4)}, {"spot", round_to(s.cost_spot, 1e4)}}},
        {"wait_seconds",
         {{"p50", round_to(s.wait_p50_s, 1e3)},
          {"p95", round_to(s.wait_p95_s, 1e3)},
          {"p99", round_to(s.wait_p99_s, 1e3)},
          {"max", round_to(s.wait_max_s, 1e3)},
          {"mean", round_to(s.wait_mean_s, 1e3)}}},
        {"makespan_hours", round_to(s.makespan_h, 1e4)},
        {"node_hours",
         {{"on_demand", round_to(s.node_hours_on_demand, 1e4)},
          {"spot", round_to(s.node_hours_spot, 1e4)}}},
        {"peak_nodes", s.peak_nodes},
        {"interruptions", s.interruptions},
        {"redone_task_seconds", round_to(s.redone_task_seconds, 1e3)},
        {"steps", s.steps},
        {"completed", s.completed},
    });
  }
  return {{"scenario", r.scenario},
          {"workload", r.workload},
          {"spot_trace", r.spot},
          {"seed", r.seed},
          {"steps", r.steps},
          {"tasks", r.tasks},
          {"trace_days", round_to(r.trace_days, 1e4)},
          {"work_slot_hours", round_to(r.work_slot_hours, 1e3)},
          {"demand",
           {{"window_seconds", r.demand_window_s},
            {"peak_slots", round_to(r.peak_slots, 1e3)},
            {"median_slots", round_to(r.median_slots, 1e3)},
            {"peak_nodes", r.peak_nodes},
            {"median_nodes", r.median_nodes},
            {"slots_per_node", r.slots_per_node}}},
          {"strategies", strategies}};
}

}  // namespace kiln::sim
