// SlurmExecutor: the Executor `kiln serve` runs with `[executor] kind =
// "slurm"`. Work does not go through worker processes here: the Dispatcher
// submits each step's tasks as Slurm jobs, and Slurm's compute nodes are
// the capacity. The fleet's nodes (the core group) stand for capacity
// Slurm already has, so launching or terminating one starts or stops no
// process; it is recorded for `kiln cluster status`.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "worker/executor.h"

namespace kiln::slurm {

class SlurmExecutor final : public worker::Executor {
 public:
  Status start() override { return Status::ok(); }
  Status launch_node(const std::string& node_id, int slots) override;
  Status terminate_node(const std::string& node_id, std::chrono::milliseconds grace) override;
  void tick() override {}
  void stop(std::chrono::milliseconds) override {}
  worker::ExecutorStatus status() const override;

 private:
  mutable std::mutex mu_;
  std::map<std::string, int> nodes_;  // node id -> slots
};

}  // namespace kiln::slurm
