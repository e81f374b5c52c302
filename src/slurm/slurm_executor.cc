#include "slurm/slurm_executor.h"

namespace kiln::slurm {

Status SlurmExecutor::launch_node(const std::string& node_id, int slots) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!nodes_.emplace(node_id, slots).second) {
    return invalid_argument("node '" + node_id + "' is in use");
  }
  return Status::ok();
}

Status SlurmExecutor::terminate_node(const std::string& node_id, std::chrono::milliseconds) {
  std::lock_guard<std::mutex> lock(mu_);
  if (nodes_.erase(node_id) == 0) return not_found("no node '" + node_id + "'");
  return Status::ok();
}

worker::ExecutorStatus SlurmExecutor::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  worker::ExecutorStatus st;
  st.kind = "slurm";
  for (const auto& [id, slots] : nodes_) st.nodes.push_back({id, slots, 0, false});
  return st;
}

}  // namespace kiln::slurm
