#include "elastic/json.h"

namespace kiln::elastic {
namespace {

using json = nlohmann::json;

template <typename T>
Status read(const json& j, const char* key, T* out) {
  auto it = j.find(key);
  if (it == j.end()) return invalid_argument(std::string(key) + ": missing");
  try {
    *out = it->get<T>();
  } catch (const json::exception&) {
    return invalid_argument(std::string(key) + ": wrong type (" + it->type_name() + ")");
  }
  return Status::ok();
}

}  // namespace

json to_json(const ClusterSample& s) {
  return {{"t_ms", s.t_ms},
          {"pending_tasks", s.pending_tasks},
          {"backlog_steps", s.backlog_steps},
          {"running_tasks", s.running_tasks},
          {"slots_total", s.slots_total},
          {"slots_busy", s.slots_busy},
          {"free_slot_pct", s.free_slot_pct},
          {"pending_ratio", s.pending_ratio},
          {"oldest_pending_wait_ms", s.oldest_pending_wait_ms},
          {"booting_nodes", s.booting_nodes}};
}

json to_json(const Node& n) {
  return {{"id", n.id},
          {"group", n.group},
          {"counts_for", n.counts_for},
          {"market", market_name(n.market)},
          {"state", node_state_name(n.state)},
          {"slots", n.slots},
          {"busy", n.busy},
          {"launched_ms", n.launched_ms},
          {"ready_ms", n.ready_ms},
          {"idle_since_ms", n.idle_since_ms},
          {"drain_deadline_ms", n.drain_deadline_ms},
          {"ended_ms", n.ended_ms},
          {"interrupted", n.interrupted},
          {"drain_reason", n.drain_reason}};
}

json to_json(const Decision& d) {
  return {{"t_ms", d.t_ms},
          {"group", d.group},
          {"from", d.from},
          {"to", d.to},
          {"policy", d.policy},
          {"reason", d.reason},
          {"sample", to_json(d.sample)}};
}

Result<ClusterSample> sample_from_json(const json& j) {
  if (!j.is_object()) return invalid_argument("sample: must be an object");
  ClusterSample s;
  KILN_RETURN_IF_ERROR(read(j, "t_ms", &s.t_ms).with_context("sample"));
  KILN_RETURN_IF_ERROR(read(j, "pending_tasks", &s.pending_tasks).with_context("sample"));
  KILN_RETURN_IF_ERROR(read(j, "backlog_steps", &s.backlog_steps).with_context("sample"));
  KILN_RETURN_IF_ERROR(read(j, "running_tasks", &s.running_tasks).with_context("sample"));
  KILN_RETURN_IF_ERROR(read(j, "slots_total", &s.slots_total).with_context("sample"));
  KILN_RETURN_IF_ERROR(read(j, "slots_busy", &s.slots_busy).with_context("sample"));
  KILN_RETURN_IF_ERROR(
      read(j, "oldest_pending_wait_ms", &s.oldest_pending_wait_ms).with_context("sample"));
  KILN_RETURN_IF_ERROR(read(j, "booting_nodes", &s.booting_nodes).with_context("sample"));
  derive(&s);
  return s;
}

Result<Node> node_from_json(const json& j) {
  if (!j.is_object()) return invalid_argument("node: must be an object");
  Node n;
  std::string market, state;
  KILN_RETURN_IF_ERROR(read(j, "id", &n.id).with_context("node"));
  const std::string where = "node '" + n.id + "'";
  KILN_RETURN_IF_ERROR(read(j, "group", &n.group).with_context(where));
  KILN_RETURN_IF_ERROR(read(j, "counts_for", &n.counts_for).with_context(where));
  KILN_RETURN_IF_ERROR(read(j, "market", &market).with_context(where));
  KILN_RETURN_IF_ERROR(read(j, "state", &state).with_context(where));
  KILN_RETURN_IF_ERROR(read(j, "slots", &n.slots).with_context(where));
  KILN_RETURN_IF_ERROR(read(j, "busy", &n.busy).with_context(where));
  KILN_RETURN_IF_ERROR(read(j, "launched_ms", &n.launched_ms).with_context(where));
  KILN_RETURN_IF_ERROR(read(j, "ready_ms", &n.ready_ms).with_context(where));
  KILN_RETURN_IF_ERROR(read(j, "idle_since_ms", &n.idle_since_ms).with_context(where));
  KILN_RETURN_IF_ERROR(read(j, "drain_deadline_ms", &n.drain_deadline_ms).with_context(where));
  KILN_RETURN_IF_ERROR(read(j, "ended_ms", &n.ended_ms).with_context(where));
  KILN_RETURN_IF_ERROR(read(j, "interrupted", &n.interrupted).with_context(where));
  KILN_RETURN_IF_ERROR(read(j, "drain_reason", &n.drain_reason).with_context(where));
  auto m = parse_market(market);
  if (!m.is_ok()) return m.status().with_context(where + ".market");
  n.market = *m;
  bool known = false;
  for (NodeState s :
       {NodeState::kBooting, NodeState::kReady, NodeState::kDraining, NodeState::kGone}) {
    if (state == node_state_name(s)) {
      n.state = s;
      known = true;
    }
  }
  if (!known) return invalid_argument(where + ".state: unknown state '" + state + "'");
  return n;
}

}  // namespace kiln::elastic
