#include "elastic/fleet.h"

#include <algorithm>

namespace kiln::elastic {

Fleet::Fleet(AutoscalerConfig config, NodeProvider* provider)
    : autoscaler_(config), provider_(provider) {
  for (const GroupConfig& g : config.groups) groups_[g.name] = g;
}

std::string Fleet::next_id(const std::string& group) {
  const GroupConfig& g = groups_.at(group);
  if (!g.node_names.empty()) {
    for (const std::string& name : g.node_names) {
      auto it = nodes_.find(name);
      if (it == nodes_.end() || it->second.state == NodeState::kGone) return name;
    }
    return "";  // every machine of the group is in use (some still draining)
  }
  return group + "-" + std::to_string(++next_number_[group]);
}

Status Fleet::launch(const std::string& group, const std::string& counts_for, int64_t now_ms) {
  const GroupConfig& g = groups_.at(group);
  Node n;
  n.id = next_id(group);
  if (n.id.empty()) {
    return unavailable("group '" + group + "': every named node is in use (some still draining)");
  }
  n.group = group;
  n.counts_for = counts_for;
  n.market = g.market;
  n.state = NodeState::kBooting;
  n.slots = g.slots_per_node;
  n.launched_ms = now_ms;
  KILN_RETURN_IF_ERROR(provider_->launch(g, n.id, now_ms));
  live_[++launches_] = n.id;
  live_seq_[n.id] = launches_;
  nodes_[n.id] = n;
  return Status::ok();
}

Status Fleet::start(int64_t now_ms) {
  for (const auto& [name, g] : groups_) {
    for (int i = 0; i < g.min_nodes; ++i) KILN_RETURN_IF_ERROR(launch(name, name, now_ms));
  }
  return Status::ok();
}

void Fleet::node_ready(const std::string& node_id, int64_t now_ms) {
  auto it = nodes_.find(node_id);
  if (it == nodes_.end() || it->second.state != NodeState::kBooting) return;
  it->second.state = NodeState::kReady;
  it->second.ready_ms = now_ms;
  it->second.idle_since_ms = now_ms;
}

void Fleet::node_busy(const std::string& node_id, int busy, int64_t now_ms) {
  auto it = nodes_.find(node_id);
  if (it == nodes_.end() || it->second.state == NodeState::kGone) return;
  Node& n = it->second;
  if (busy > 0) {
    n.idle_since_ms = 0;
  } else if (n.busy > 0 || n.idle_since_ms == 0) {
    n.idle_since_ms = now_ms;
  }
  n.busy = busy;
}

void Fleet::node_lost(const std::string& node_id, int64_t now_ms) {
  auto it = nodes_.find(node_id);
  if (it == nodes_.end() || it->second.state == NodeState::kGone) return;
  it->second.state = NodeState::kGone;
  it->second.ended_ms = now_ms;
  it->second.busy = 0;
  if (it->second.drain_reason.empty()) it->second.drain_reason = "lost";
  retire(it->second);
}

void Fleet::retire(const Node& n) {
  auto seq = live_seq_.find(n.id);
  if (seq != live_seq_.end()) {
    live_.erase(seq->second);
    live_seq_.erase(seq);
  }
  draining_.erase(n.id);
  const GroupConfig& g = groups_.at(n.group);
  const double c = g.price.cost(n.launched_ms, n.ended_ms);
  const double secs = static_cast<double>(std::max<int64_t>(0, n.ended_ms - n.launched_ms)) / 1000;
  gone_cost_.total += c;
  gone_cost_.by_market[market_name(n.market)].cost += c;
  gone_cost_.by_market[market_name(n.market)].node_seconds += secs;
  gone_cost_.by_group[n.group].cost += c;
  gone_cost_.by_group[n.group].node_seconds += secs;
}

Status Fleet::interrupt(const std::string& node_id, int64_t now_ms, int64_t notice_ms) {
  auto it = nodes_.find(node_id);
  if (it == nodes_.end() || it->second.state == NodeState::kGone) {
    return not_found("node '" + node_id + "' is not in the fleet (or is gone already)");
  }
  Node& n = it->second;
  ++interruptions_;
  auto& times = interrupted_[n.group];
  times.push_back(now_ms);
  n.interrupted = true;
  n.drain_reason = "interruption";
  if (n.state == NodeState::kBooting) return terminate(&n, now_ms);
  if (n.state == NodeState::kDraining) {
    // Draining already (scale-in): the provider knows; the instance now
    // goes at the notice's end, or earlier if the drain deadline is sooner.
    n.drain_deadline_ms = std::min(n.drain_deadline_ms, now_ms + notice_ms);
    return Status::ok();
  }
  n.state = NodeState::kDraining;
  draining_.insert(n.id);
  n.drain_deadline_ms = now_ms + notice_ms;
  return provider_->drain(n.id, now_ms);
}

Status Fleet::terminate(Node* n, int64_t now_ms) {
  Status st = provider_->terminate(n->id, now_ms);
  n->state = NodeState::kGone;
  n->ended_ms = now_ms;
  n->busy = 0;
  retire(*n);
  return st;
}

Status Fleet::tick(int64_t now_ms) {
  Status first;
  const std::vector<std::string> draining(draining_.begin(), draining_.end());
  for (const std::string& id : draining) {
    Node& n = nodes_.at(id);
    if (n.state != NodeState::kDraining) continue;
    if (n.busy == 0 || now_ms >= n.drain_deadline_ms) {
      Status st = terminate(&n, now_ms);
      if (first.is_ok()) first = st;
    }
  }
  return first;
}

bool Fleet::falls_back(const GroupConfig& g, int64_t now_ms) {
  if (g.fallback_group.empty()) return false;
  auto& times = interrupted_[g.name];
  while (!times.empty() && now_ms - times.front() > g.interruption_window_ms) times.pop_front();
  return static_cast<int>(times.size()) >= g.fallback_after_interruptions;
}

Result<Plan> Fleet::reconcile(const ClusterSample& sample, int64_t now_ms) {
  Status st = tick(now_ms);
  Plan plan = autoscaler_.reconcile(sample, live_nodes());
  for (const Decision& d : plan.decisions) remember(d);
  for (const auto& [group, count] : plan.launch) {
    const GroupConfig& g = groups_.at(group);
    std::string in = group;
    if (falls_back(g, now_ms)) {
      in = g.fallback_group;
      Decision d;
      d.t_ms = now_ms;
      d.group = group;
      d.from = d.to = autoscaler_.desired(group);
      d.policy = "fallback-on-demand";
      d.reason = std::to_string(interrupted_[group].size()) + " interruptions within " +
                 std::to_string(g.interruption_window_ms / 1000) + " s: " + std::to_string(count) +
                 " node(s) launched in '" + in + "' instead";
      d.sample = sample;
      plan.decisions.push_back(d);
      remember(d);
    }
    for (int i = 0; i < count; ++i) {
      Status ls = launch(in, group, now_ms);
      if (!ls.is_ok() && st.is_ok()) st = ls;
    }
  }
  for (const std::string& id : plan.drain) {
    Node& n = nodes_.at(id);
    n.drain_reason = "scale-in";
    if (n.state == NodeState::kBooting) {
      Status ts = terminate(&n, now_ms);
      if (!ts.is_ok() && st.is_ok()) st = ts;
      continue;
    }
    n.state = NodeState::kDraining;
    draining_.insert(n.id);
    n.drain_deadline_ms = now_ms + autoscaler_.config().drain_timeout_ms;
    Status ds = provider_->drain(id, now_ms);
    if (!ds.is_ok() && st.is_ok()) st = ds;
  }
  // An idle node drained just now goes at once.
  Status ts = tick(now_ms);
  if (!ts.is_ok() && st.is_ok()) st = ts;
  if (!st.is_ok()) return st;
  return plan;
}

void Fleet::remember(const Decision& d) {
  decisions_.push_back(d);
  while (decisions_.size() > 256) decisions_.pop_front();
}

std::vector<Node> Fleet::nodes() const {
  std::vector<Node> out;
  out.reserve(nodes_.size());
  for (const auto& [id, n] : nodes_) out.push_back(n);
  // Launch order, so ids read naturally (core-1, core-2, spot-1, ...).
  std::stable_sort(out.begin(), out.end(),
                   [](const Node& a, const Node& b) { return a.launched_ms < b.launched_ms; });
  return out;
}

std::vector<Node> Fleet::live_nodes() const {
  std::vector<Node> out;
  out.reserve(live_.size());
  for (const auto& [seq, id] : live_) out.push_back(nodes_.at(id));
  return out;
}

const Node* Fleet::node(const std::string& node_id) const {
  auto it = nodes_.find(node_id);
  return it == nodes_.end() ? nullptr : &it->second;
}

CostReport Fleet::cost(int64_t now_ms) const {
  CostReport r = gone_cost_;
  r.rate_per_hour = 0;
  for (const auto& [seq, id] : live_) {
    const Node& n = nodes_.at(id);
    const GroupConfig& g = groups_.at(n.group);
    const int64_t end = now_ms;
    const double c = g.price.cost(n.launched_ms, end);
    const double secs = static_cast<double>(std::max<int64_t>(0, end - n.launched_ms)) / 1000.0;
    r.total += c;
    r.by_market[market_name(n.market)].cost += c;
    r.by_market[market_name(n.market)].node_seconds += secs;
    r.by_group[n.group].cost += c;
    r.by_group[n.group].node_seconds += secs;
    r.rate_per_hour += g.price.at(now_ms);
  }
  return r;
}

double Fleet::slot_cost(const std::string& node_id, int64_t t0_ms, int64_t t1_ms) const {
  const Node* n = node(node_id);
  if (n == nullptr || n->slots <= 0) return 0;
  return groups_.at(n->group).price.cost(t0_ms, t1_ms) / n->slots;
}

}  // namespace kiln::elastic
