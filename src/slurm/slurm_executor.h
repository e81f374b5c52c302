// SlurmExecutor: the Executor `kiln serve` runs with `[executor] kind =
// "slurm"` (docs/slurm.md). Tasks do not go through worker processes here:
// the Dispatcher submits them as Slurm jobs. The fleet's nodes are Slurm's
// nodes, by name ([[group]] nodes = [...]):
//   - a node that is up already (a static node of the core group) is ready
//     as soon as it is launched, and terminating it leaves it alone;
//   - a CLOUD node that is powered down is kept drained, so Slurm's own
//     scheduler never wakes it; launching it undrains it and powers it up
//     (Slurm runs its ResumeProgram), and it is ready once sinfo shows it
//     up; draining it drains it in Slurm (running jobs finish, no new
//     ones); terminating it powers it down with POWER_DOWN_FORCE (jobs
//     still on it are requeued and claim their tasks again elsewhere), and
//     once it is down it is drained again.
// The autoscaler's policy therefore decides when CLOUD nodes exist, the
// same as it decides for local workers. tick() polls sinfo at most once a
// second.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "slurm/slurm_client.h"
#include "worker/executor.h"

namespace kiln::slurm {

class SlurmExecutor final : public worker::Executor {
 public:
  // `managed`: every node name the fleet's groups may use; the powered-down
  // ones are drained by start().
  SlurmExecutor(SlurmClient client, std::vector<std::string> managed);

  Status start() override;
  Status launch_node(const std::string& node_id, int slots) override;
  Status drain_node(const std::string& node_id) override;
  Status terminate_node(const std::string& node_id, std::chrono::milliseconds grace) override;
  std::vector<std::string> take_ready_nodes() override;
  void tick() override;
  void stop(std::chrono::milliseconds) override {}
  worker::ExecutorStatus status() const override;

  // sinfo's state says the node is powered down or powering down ("idle~",
  // "drained~", "idle%"), or powering up ("idle#").
  static bool powered_down(const std::string& state);
  static bool up(const std::string& state);

 private:
  enum class Phase { kPoweringUp, kUp, kPoweringDown };
  struct Managed {
    int slots = 0;
    Phase phase = Phase::kUp;
    bool cloud = false;  // powered up by us: powered down again at terminate
  };
  Result<std::map<std::string, std::string>> node_states() const;

  SlurmClient client_;
  std::vector<std::string> managed_names_;
  mutable std::mutex mu_;
  std::map<std::string, Managed> nodes_;  // launched and not yet down
  std::set<std::string> powering_down_;   // to drain again once down
  std::vector<std::string> ready_;        // for take_ready_nodes()
  std::chrono::steady_clock::time_point next_poll_{};
};

}  // namespace kiln::slurm
