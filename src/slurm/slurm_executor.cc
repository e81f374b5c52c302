#include "slurm/slurm_executor.h"

#include <algorithm>

#include "common/log.h"

namespace kiln::slurm {
namespace {

constexpr const char* kOffReason = "kiln: powered down; the autoscaler powers it up";

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

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

SlurmExecutor::SlurmExecutor(SlurmClient client, std::vector<std::string> managed)
    : client_(std::move(client)), managed_names_(std::move(managed)) {}

Result<std::map<std::string, std::string>> SlurmExecutor::node_states() const {
  KILN_ASSIGN_OR_RETURN(std::vector<NodeInfo> nodes, client_.nodes());
  std::map<std::string, std::string> out;
  for (const NodeInfo& n : nodes) out[n.name] = n.state;
  return out;
}

Status SlurmExecutor::start() {
  if (managed_names_.empty()) return Status::ok();
  KILN_ASSIGN_OR_RETURN(auto states, node_states());
  std::vector<std::string> off;
  for (const std::string& name : managed_names_) {
    auto it = states.find(name);
    if (it == states.end()) {
      return invalid_argument("[[group]] nodes: Slurm has no node '" + name + "'");
    }
    if (powered_down(it->second) && it->second.rfind("drained", 0) != 0) off.push_back(name);
  }
  // Powered-down nodes stay drained until the autoscaler wants them, so
  // pending jobs do not make Slurm power them up on its own.
  if (!off.empty()) KILN_RETURN_IF_ERROR(client_.update_nodes(join(off), "DRAIN", kOffReason));
  return Status::ok();
}

Status SlurmExecutor::launch_node(const std::string& node_id, int slots) {
  if (std::find(managed_names_.begin(), managed_names_.end(), node_id) == managed_names_.end()) {
    // A group without `nodes`: capacity Slurm has anyway, under no name.
    std::lock_guard<std::mutex> lock(mu_);
    if (!nodes_.emplace(node_id, Managed{slots, Phase::kUp, false}).second) {
      return invalid_argument("node '" + node_id + "' is in use");
    }
    ready_.push_back(node_id);
    return Status::ok();
  }
  KILN_ASSIGN_OR_RETURN(auto states, node_states());
  auto it = states.find(node_id);
  if (it == states.end()) return not_found("Slurm has no node '" + node_id + "'");
  Managed m;
  m.slots = slots;
  if (powered_down(it->second)) {
    KILN_RETURN_IF_ERROR(client_.update_nodes(node_id, "RESUME", ""));
    KILN_RETURN_IF_ERROR(client_.power(node_id, /*up=*/true));
    m.cloud = true;
    m.phase = Phase::kPoweringUp;
    log::info("slurm: powering up node " + node_id);
  } else if (it->second.rfind("drain", 0) == 0) {
    // Drained by an earlier scale-in that had not powered it down yet.
    KILN_RETURN_IF_ERROR(client_.update_nodes(node_id, "RESUME", ""));
  }
  std::lock_guard<std::mutex> lock(mu_);
  powering_down_.erase(node_id);
  if (m.phase == Phase::kUp) ready_.push_back(node_id);
  nodes_[node_id] = m;
  return Status::ok();
}

Status SlurmExecutor::drain_node(const std::string& node_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = nodes_.find(node_id);
    if (it == nodes_.end()) return not_found("no node '" + node_id + "'");
    if (!it->second.cloud) return Status::ok();  // static capacity stays in Slurm
  }
  return client_.update_nodes(node_id, "DRAIN", "kiln: draining (scale-in or notice)");
}

Status SlurmExecutor::terminate_node(const std::string& node_id, std::chrono::milliseconds) {
  bool cloud = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = nodes_.find(node_id);
    if (it == nodes_.end()) return not_found("no node '" + node_id + "'");
    cloud = it->second.cloud;
    nodes_.erase(it);
    if (cloud) powering_down_.insert(node_id);
  }
  if (!cloud) return Status::ok();
  log::info("slurm: powering down node " + node_id);
  // Drained first, so that no job is placed on it while it goes; jobs still
  // on it are requeued by the forced power-down and claim their tasks
  // again elsewhere.
  Status drained = client_.update_nodes(node_id, "DRAIN", "kiln: scale-in");
  if (!drained.is_ok()) log::warn("slurm: " + drained.message());
  return client_.update_nodes(node_id, "POWER_DOWN_FORCE", "");
}

std::vector<std::string> SlurmExecutor::take_ready_nodes() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  out.swap(ready_);
  return out;
}

void SlurmExecutor::tick() {
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (now < next_poll_) return;
    bool waiting = !powering_down_.empty();
    for (const auto& [id, m] : nodes_) waiting = waiting || m.phase == Phase::kPoweringUp;
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
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, m] : nodes_) {
      if (m.phase != Phase::kPoweringUp) continue;
      auto it = states->find(id);
      if (it != states->end() && up(it->second)) {
        m.phase = Phase::kUp;
        ready_.push_back(id);
        log::info("slurm: node " + id + " is up (" + it->second + ")");
      }
    }
    for (auto it = powering_down_.begin(); it != powering_down_.end();) {
      auto st = states->find(*it);
      if (st != states->end() && st->second.find('~') != std::string::npos) {
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
  std::lock_guard<std::mutex> lock(mu_);
  worker::ExecutorStatus st;
  st.kind = "slurm";
  for (const auto& [id, m] : nodes_) st.nodes.push_back({id, m.slots, 0, false});
  return st;
}

}  // namespace kiln::slurm
