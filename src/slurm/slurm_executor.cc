#include "slurm/slurm_executor.h"

#include "common/log.h"

namespace kiln::slurm {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kOffReason = "kiln: powered down; the autoscaler powers it up";
// A CLOUD node not up this long after POWER_UP is reported (once).
constexpr std::chrono::minutes kPowerUpWarning{5};

}  // namespace

bool SlurmExecutor::powered_down(const std::string& state) {
  return state.find('~') != std::string::npos || state.find('%') != std::string::npos;
}

bool SlurmExecutor::up(const std::string& state) {
  if (state.empty() || powered_down(state)) return false;
  if (state.find('#') != std::string::npos || state.find('*') != std::string::npos) return false;
  return state.rfind("idle", 0) == 0 || state.rfind("mixed", 0) == 0 ||
         state.rfind("allocated", 0) == 0 || state.rfind("completing", 0) == 0;
}

SlurmExecutor::SlurmExecutor(SlurmClient client, std::vector<std::string> static_nodes,
                             std::vector<std::string> cloud_nodes)
    : client_(std::move(client)),
      static_(static_nodes.begin(), static_nodes.end()),
      cloud_(cloud_nodes.begin(), cloud_nodes.end()) {}

Result<std::map<std::string, std::string>> SlurmExecutor::node_states() const {
  KILN_ASSIGN_OR_RETURN(std::vector<NodeInfo> nodes, client_.nodes());
  std::map<std::string, std::string> out;
  for (const NodeInfo& n : nodes) out[n.name] = n.state;
  return out;
}

Status SlurmExecutor::start() {
  if (static_.empty() && cloud_.empty()) return Status::ok();
  KILN_ASSIGN_OR_RETURN(auto states, node_states());
  std::vector<std::string> off, on;
  for (const std::set<std::string>* names : {&static_, &cloud_}) {
    for (const std::string& name : *names) {
      auto it = states.find(name);
      if (it == states.end()) {
        return invalid_argument("[[group]] nodes: Slurm has no node '" + name + "'");
      }
      if (names == &static_) continue;
      if (powered_down(it->second)) {
        if (it->second.rfind("drained", 0) != 0) off.push_back(name);
      } else {
        on.push_back(name);
      }
    }
  }
  // Powered-down CLOUD nodes stay drained until the autoscaler wants them,
  // so pending jobs do not make Slurm power them up on its own. One that is
  // up (left so by an earlier run) finishes what it runs and goes down.
  if (!off.empty()) KILN_RETURN_IF_ERROR(client_.update_nodes(join(off), "DRAIN", kOffReason));
  if (!on.empty()) {
    KILN_RETURN_IF_ERROR(client_.update_nodes(join(on), "POWER_DOWN_ASAP", kOffReason));
    MutexLock lock(&mu_);
    powering_down_.insert(on.begin(), on.end());
  }
  return Status::ok();
}

Status SlurmExecutor::launch_node(const std::string& node_id, int slots) {
  MutexLock lock(&mu_);
  Node n;
  n.slots = slots;
  n.cloud = cloud_.count(node_id) > 0;
  n.since = Clock::now();
  if (!nodes_.emplace(node_id, n).second) {
    return invalid_argument("node '" + node_id + "' is in use");
  }
  if (n.cloud) {
    nodes_[node_id].powering_up = true;
    ops_.emplace_back(Op::kPowerUp, node_id);
  } else {
    // Static capacity (named or not): Slurm has it already.
    ready_.push_back(node_id);
  }
  return Status::ok();
}

Status SlurmExecutor::drain_node(const std::string& node_id) {
  MutexLock lock(&mu_);
  auto it = nodes_.find(node_id);
  if (it == nodes_.end()) return not_found("no node '" + node_id + "'");
  if (it->second.cloud) ops_.emplace_back(Op::kDrain, node_id);
  return Status::ok();
}

Status SlurmExecutor::terminate_node(const std::string& node_id, std::chrono::milliseconds) {
  MutexLock lock(&mu_);
  auto it = nodes_.find(node_id);
  if (it == nodes_.end()) return not_found("no node '" + node_id + "'");
  if (it->second.cloud) ops_.emplace_back(Op::kPowerDown, node_id);
  nodes_.erase(it);
  return Status::ok();
}

std::vector<std::string> SlurmExecutor::take_ready_nodes() {
  MutexLock lock(&mu_);
  std::vector<std::string> out;
  out.swap(ready_);
  return out;
}

void SlurmExecutor::run(Op op, const std::string& node) {
  Status st;
  switch (op) {
    case Op::kPowerUp: {
      log::info("slurm: powering up node " + node);
      st = client_.update_nodes(node, "RESUME", "");
      // A node that was drained but not powered down yet is only undrained.
      auto states = node_states();
      const bool down = !states.is_ok() || !states->count(node) || powered_down(states->at(node));
      if (st.is_ok() && down) st = client_.power(node, /*up=*/true);
      if (!st.is_ok()) {
        // Left drained, so Slurm does not wake it behind the autoscaler's
        // back; the fleet keeps counting it as booting.
        (void)client_.update_nodes(node, "DRAIN", kOffReason);
      }
      break;
    }
    case Op::kDrain:
      st = client_.update_nodes(node, "DRAIN", "kiln: draining (scale-in or spot notice)");
      break;
    case Op::kPowerDown: {
      log::info("slurm: powering down node " + node);
      // Drained first, so no job is placed on it while it goes; jobs still
      // on it are requeued by the forced power-down.
      Status drained = client_.update_nodes(node, "DRAIN", "kiln: scale-in");
      if (!drained.is_ok()) log::warn("slurm: " + drained.message());
      st = client_.update_nodes(node, "POWER_DOWN_FORCE", "");
      MutexLock lock(&mu_);
      powering_down_.insert(node);
      break;
    }
  }
  if (!st.is_ok()) log::error("slurm: node " + node + ": " + st.message());
}

void SlurmExecutor::tick() {
  std::deque<std::pair<Op, std::string>> ops;
  {
    MutexLock lock(&mu_);
    ops.swap(ops_);
  }
  for (const auto& [op, node] : ops) run(op, node);

  const auto now = Clock::now();
  if (now < next_poll_) return;
  {
    MutexLock lock(&mu_);
    bool waiting = !powering_down_.empty();
    for (const auto& [id, n] : nodes_) waiting = waiting || n.powering_up;
    if (!waiting) return;
  }
  next_poll_ = now + std::chrono::seconds(1);
  auto states = node_states();
  if (!states.is_ok()) {
    log::warn("slurm: sinfo: " + states.status().message());
    return;
  }
  std::vector<std::string> to_drain;
  {
    MutexLock lock(&mu_);
    for (auto& [id, n] : nodes_) {
      if (!n.powering_up) continue;
      auto it = states->find(id);
      if (it != states->end() && up(it->second)) {
        n.powering_up = false;
        ready_.push_back(id);
        log::info("slurm: node " + id + " is up (" + it->second + ")");
      } else if (now - n.since > kPowerUpWarning) {
        log::warn("slurm: node " + id + " is not up " + std::to_string(kPowerUpWarning.count()) +
                  " min after POWER_UP (" +
                  (it == states->end() ? std::string("unknown") : it->second) + ")");
        n.since = now;  // once per period
      }
    }
    for (auto it = powering_down_.begin(); it != powering_down_.end();) {
      auto st = states->find(*it);
      // Launched again meanwhile: the power-up takes it from here.
      if (nodes_.count(*it)) {
        it = powering_down_.erase(it);
      } else if (st != states->end() && st->second.find('~') != std::string::npos) {
        if (st->second.rfind("drained", 0) != 0) to_drain.push_back(*it);
        it = powering_down_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (!to_drain.empty()) {
    Status st = client_.update_nodes(join(to_drain), "DRAIN", kOffReason);
    if (!st.is_ok()) log::warn("slurm: " + st.message());
  }
}

worker::ExecutorStatus SlurmExecutor::status() const {
  MutexLock lock(&mu_);
  worker::ExecutorStatus st;
  st.kind = "slurm";
  for (const auto& [id, n] : nodes_) st.nodes.push_back({id, n.slots, 0, false});
  return st;
}

}  // namespace kiln::slurm
