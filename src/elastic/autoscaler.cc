#include "elastic/autoscaler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace kiln::elastic {
namespace {

const char* comparison_text(Comparison c) {
  switch (c) {
    case Comparison::kGreater:
      return ">";
    case Comparison::kGreaterOrEqual:
      return ">=";
    case Comparison::kLess:
      return "<";
    case Comparison::kLessOrEqual:
      return "<=";
  }
  return "?";
}

bool meets(double v, Comparison c, double threshold) {
  switch (c) {
    case Comparison::kGreater:
      return v > threshold;
    case Comparison::kGreaterOrEqual:
      return v >= threshold;
    case Comparison::kLess:
      return v < threshold;
    case Comparison::kLessOrEqual:
      return v <= threshold;
  }
  return false;
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// Nodes that count toward a group's desired size: launched for it (or
// standing in for it) and not draining or gone.
bool counts(const Node& n, const std::string& group) {
  return n.counts_for == group && (n.state == NodeState::kBooting || n.state == NodeState::kReady);
}

}  // namespace

Status validate(const AutoscalerConfig& c) {
  KILN_RETURN_IF_ERROR(validate_groups(c.groups));
  if (c.period_ms < 100) return invalid_argument("autoscaling.period_seconds: must be > 0");
  if (c.drain_timeout_ms < 0) {
    return invalid_argument("autoscaling.drain_timeout_seconds: must be >= 0");
  }
  auto has_group = [&](const std::string& name) {
    return std::any_of(c.groups.begin(), c.groups.end(),
                       [&](const GroupConfig& g) { return g.name == name; });
  };
  std::set<std::string> ruled, targeted;
  for (size_t i = 0; i < c.rules.size(); ++i) {
    const ScalingRule& r = c.rules[i];
    // The key first, so it reads as in the file; then the rule's name,
    // unless it is only its position (the parser's default).
    const std::string where = "autoscaling.rule[" + std::to_string(i) + "]";
    const std::string named = r.name.empty() || r.name == where ? "" : " (rule '" + r.name + "')";
    if (!has_group(r.group)) {
      return invalid_argument(where + ".group" + named + ": no group '" + r.group + "'");
    }
    ClusterSample probe;
    auto m = metric_value(probe, r.metric);
    if (!m.is_ok()) {
      return invalid_argument(where + ".metric" + named + ": " + m.status().message());
    }
    if (r.evaluation_periods < 1) {
      return invalid_argument(where + ".evaluation_periods" + named + ": must be >= 1");
    }
    if (r.cooldown_ms < 0) {
      return invalid_argument(where + ".cooldown_seconds" + named + ": must be >= 0");
    }
    if (r.adjustment == Adjustment::kExactCapacity && r.amount < 0) {
      return invalid_argument(where + ".amount" + named + ": an exact capacity must be >= 0");
    }
    ruled.insert(r.group);
  }
  for (size_t i = 0; i < c.targets.size(); ++i) {
    const TargetTracking& t = c.targets[i];
    const std::string where = "autoscaling.target[" + std::to_string(i) + "]";
    if (!has_group(t.group)) return invalid_argument(where + ".group: no group '" + t.group + "'");
    if (!(t.target_free_slot_pct >= 0 && t.target_free_slot_pct < 100)) {
      return invalid_argument(where + ".free_slot_pct: must be 0 or more and below 100");
    }
    if (t.scale_out_cooldown_ms < 0 || t.scale_in_cooldown_ms < 0 || t.idle_timeout_ms < 0) {
      return invalid_argument(where + ": cooldowns and idle_timeout must be >= 0");
    }
    if (!targeted.insert(t.group).second) {
      return invalid_argument(where + ": group '" + t.group + "' has a target already");
    }
    if (ruled.count(t.group)) {
      return invalid_argument(where + ": group '" + t.group +
                              "' has rules too; give a group rules or a target, not both");
    }
  }
  return Status::ok();
}

std::string describe(const Decision& d) {
  return "group " + d.group + ": " + std::to_string(d.from) + " -> " + std::to_string(d.to) +
         " nodes (" + d.policy + ": " + d.reason + ")";
}

Autoscaler::Autoscaler(AutoscalerConfig config) : config_(std::move(config)) {
  for (const GroupConfig& g : config_.groups) desired_[g.name] = g.min_nodes;
}

int Autoscaler::desired(const std::string& group) const {
  auto it = desired_.find(group);
  return it == desired_.end() ? 0 : it->second;
}

Plan Autoscaler::reconcile(const ClusterSample& s, const std::vector<Node>& nodes) {
  Plan plan;
  const int64_t now = s.t_ms;
  for (const GroupConfig& g : config_.groups) {
    const int cur = desired_[g.name];
    int want = cur;
    std::string policy, reason;
    auto cooled = [&](int64_t cooldown_ms) {
      auto it = last_change_ms_.find(g.name);
      return it == last_change_ms_.end() || now - it->second >= cooldown_ms;
    };

    auto target = std::find_if(config_.targets.begin(), config_.targets.end(),
                               [&](const TargetTracking& t) { return t.group == g.name; });
    if (target != config_.targets.end()) {
      // Slots the work in hand needs at the target share free, less what
      // the other groups already give.
      const int64_t needed = s.running_tasks + s.pending_tasks;
      const double keep_free = target->target_free_slot_pct / 100.0;
      const int64_t total_slots =
          static_cast<int64_t>(std::ceil(static_cast<double>(needed) / (1.0 - keep_free)));
      int64_t other_slots = 0;
      for (const Node& n : nodes)
        if (n.counts_for != g.name && counts(n, n.counts_for)) other_slots += n.slots;
      const int64_t own = std::max<int64_t>(0, total_slots - other_slots);
      int nodes_needed = static_cast<int>((own + g.slots_per_node - 1) / g.slots_per_node);
      nodes_needed = std::clamp(nodes_needed, g.min_nodes, g.max_nodes);
      if (nodes_needed > cur && cooled(target->scale_out_cooldown_ms)) {
        want = nodes_needed;
        policy = "target-tracking";
        reason = std::to_string(needed) + " tasks (" + std::to_string(s.running_tasks) +
                 " running, " + std::to_string(s.pending_tasks) + " pending) need " +
                 std::to_string(total_slots) + " slots at " + number(target->target_free_slot_pct) +
                 "% free; other groups give " + std::to_string(other_slots);
      }
      // The most nodes the work needed over the last idle_timeout: a
      // scale-in never goes below it. Without this floor the headroom the
      // target keeps free is idle by design (a packing scheduler leaves the
      // last node empty), times out between bursts and is bought back at
      // the next one: an out/in pair every idle_timeout. The window keeps
      // only samples no later one outdoes (a monotonic queue), so its front
      // is the maximum and a round costs O(1).
      auto& window = needed_[g.name];
      while (!window.empty() && window.back().second <= nodes_needed) window.pop_back();
      window.emplace_back(now, nodes_needed);
      while (now - window.front().first > target->idle_timeout_ms) window.pop_front();
      const int floor = window.front().second;
      if (want == cur && floor < cur && cooled(target->scale_in_cooldown_ms)) {
        // Only nodes idle for idle_timeout go: the hysteresis that keeps a
        // bursty load from thrashing.
        int idle = 0;
        for (const Node& n : nodes) {
          if (counts(n, g.name) && n.state == NodeState::kReady && n.busy == 0 &&
              n.idle_since_ms > 0 && now - n.idle_since_ms >= target->idle_timeout_ms) {
            ++idle;
          }
        }
        const int drop = std::min(cur - floor, idle);
        if (drop > 0) {
          want = cur - drop;
          policy = "target-tracking";
          reason = std::to_string(needed) + " tasks need " + std::to_string(total_slots) +
                   " slots at " + number(target->target_free_slot_pct) + "% free; at most " +
                   std::to_string(floor) + " node(s) needed in the last " +
                   std::to_string(target->idle_timeout_ms / 1000) + " s; " + std::to_string(idle) +
                   " node(s) idle for that long";
        }
      }
    }

    for (const ScalingRule& r : config_.rules) {
      if (r.group != g.name) continue;
      const double v = metric_value(s, r.metric).value();  // validate() checked the name
      int& streak = rule_streak_[r.name + "@" + r.group];
      streak = meets(v, r.comparison, r.threshold) ? streak + 1 : 0;
      if (want != cur || streak < r.evaluation_periods || !cooled(r.cooldown_ms)) continue;
      int next = cur;
      switch (r.adjustment) {
        case Adjustment::kChangeInCapacity:
          next = cur + static_cast<int>(std::lround(r.amount));
          break;
        case Adjustment::kPercentChangeInCapacity: {
          const double delta = cur * r.amount / 100.0;
          int step = static_cast<int>(delta > 0 ? std::ceil(delta) : std::floor(delta));
          if (step == 0 && r.amount != 0) step = r.amount > 0 ? 1 : -1;
          next = cur + step;
          break;
        }
        case Adjustment::kExactCapacity:
          next = static_cast<int>(std::lround(r.amount));
          break;
      }
      next = std::clamp(next, g.min_nodes, g.max_nodes);
      if (next == cur) continue;
      want = next;
      policy = r.name.empty() ? "rule" : r.name;
      reason = r.metric + " " + number(v) + " " + comparison_text(r.comparison) + " " +
               number(r.threshold) + " for " + std::to_string(streak) + " period(s)";
      streak = 0;
    }

    want = std::clamp(want, g.min_nodes, g.max_nodes);
    if (want != cur) {
      plan.decisions.push_back({now, g.name, cur, want, policy, reason, s});
      desired_[g.name] = want;
      last_change_ms_[g.name] = now;
    }
    plan.desired[g.name] = desired_[g.name];

    // Launches and drains that bring the group to its desired size.
    std::vector<const Node*> counted;
    for (const Node& n : nodes)
      if (counts(n, g.name)) counted.push_back(&n);
    const int have = static_cast<int>(counted.size());
    const int target_size = desired_[g.name];
    // A Fleet launches the min sizes before its first round; a group still
    // below them then (the autoscaler driven alone, or a launch that
    // failed) is raised with a decision of its own, so the log says why
    // those nodes exist. Later shortfalls (lost or interrupted nodes) are
    // replacements of a size already decided, not decisions.
    if (first_round_ && have < g.min_nodes) {
      plan.decisions.push_back(
          {now, g.name, have, target_size, "min-size",
           std::to_string(have) + " node(s), below min_nodes " + std::to_string(g.min_nodes), s});
    }
    if (have < target_size) {
      plan.launch.emplace_back(g.name, target_size - have);
    } else if (have > target_size) {
      // Booting nodes first (they have done nothing yet), then idle ones,
      // longest idle first, then the least busy, newest first.
      std::stable_sort(counted.begin(), counted.end(), [](const Node* a, const Node* b) {
        const bool a_boot = a->state == NodeState::kBooting;
        const bool b_boot = b->state == NodeState::kBooting;
        if (a_boot != b_boot) return a_boot;
        const bool a_idle = a->busy == 0, b_idle = b->busy == 0;
        if (a_idle != b_idle) return a_idle;
        if (a_idle) return a->idle_since_ms < b->idle_since_ms;
        if (a->busy != b->busy) return a->busy < b->busy;
        return a->launched_ms > b->launched_ms;
      });
      for (int i = 0; i < have - target_size; ++i) plan.drain.push_back(counted[i]->id);
    }
  }
  first_round_ = false;
  return plan;
}

}  // namespace kiln::elastic
