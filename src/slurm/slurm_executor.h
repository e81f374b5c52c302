// SlurmExecutor: the Executor `kiln serve` runs with `[executor] kind =
// "slurm"` (docs/slurm.md). Tasks do not go through worker processes here:
// the Dispatcher submits them as Slurm jobs. The fleet's nodes are Slurm's
// nodes, by name ([[group]] nodes = [...]):
//   - a node of the core group (static, always up), or of a group without
//     names, is ready as soon as it is launched; terminating it leaves
//     Slurm alone;
//   - a node of any other named group is a CLOUD node. While it is not in
//     the fleet it is kept drained (and powered down), so Slurm's scheduler
//     never wakes it by itself; launching it undrains it and powers it up
//     (Slurm runs its ResumeProgram), and it is ready once sinfo shows it
//     up; draining it drains it in Slurm (running jobs finish, no new
//     ones); terminating it drains it and powers it down with
//     POWER_DOWN_FORCE (jobs still on it are requeued and claim their tasks
//     again elsewhere), and once it is down it is drained again.
// launch/drain/terminate only record what to do: the fleet calls them with
// its lock held, from HTTP threads too (a spot notice). tick(), on the
// scheduler thread, runs the Slurm commands and polls sinfo (at most once a
// second) while a node is powering up or down.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "slurm/slurm_client.h"
#include "worker/executor.h"

namespace kiln::slurm {

class SlurmExecutor final : public worker::Executor {
 public:
  // `static_nodes`: the core group's names; `cloud_nodes`: every other
  // named group's.
  SlurmExecutor(SlurmClient client, std::vector<std::string> static_nodes,
                std::vector<std::string> cloud_nodes);

  // Checks every named node exists in Slurm; drains the CLOUD ones (and
  // powers down those that are up: a previous run left them so).
  Status start() override EXCLUDES(mu_);
  Status launch_node(const std::string& node_id, int slots) override EXCLUDES(mu_);
  Status drain_node(const std::string& node_id) override EXCLUDES(mu_);
  Status terminate_node(const std::string& node_id, std::chrono::milliseconds grace) override
      EXCLUDES(mu_);
  std::vector<std::string> take_ready_nodes() override EXCLUDES(mu_);
  void tick() override EXCLUDES(mu_);
  void stop(std::chrono::milliseconds) override {}
  worker::ExecutorStatus status() const override EXCLUDES(mu_);

  // sinfo's state says the node is powered down or powering down ("idle~",
  // "drained~", "idle%").
  static bool powered_down(const std::string& state);
  // Up and able to run jobs ("idle", "mixed", "allocated").
  static bool up(const std::string& state);

 private:
  enum class Op { kPowerUp, kDrain, kPowerDown };
  struct Node {
    int slots = 0;
    bool cloud = false;
    bool powering_up = false;
    std::chrono::steady_clock::time_point since{};
  };
  Result<std::map<std::string, std::string>> node_states() const;
  // Runs the Slurm commands for one op; takes mu_ only to record state.
  void run(Op op, const std::string& node) EXCLUDES(mu_);

  SlurmClient client_;
  std::set<std::string> static_, cloud_;
  mutable Mutex mu_;
  std::map<std::string, Node> nodes_ GUARDED_BY(mu_);
  std::deque<std::pair<Op, std::string>> ops_ GUARDED_BY(mu_);
  std::set<std::string> powering_down_ GUARDED_BY(mu_);
  std::vector<std::string> ready_ GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point next_poll_{};  // scheduler thread only
};

}  // namespace kiln::slurm
