// LocalExecutor: nodes as `kiln worker` processes on this machine, kept
// running. Each is started with posix_spawn, KILN_WORKER_TOKEN in its
// environment and stdout/stderr appended to <state_dir>/logs/worker-<node>.log.
// A worker that exits is reported through on_worker_exit (so the server can
// return its leases at once instead of waiting for them to lapse) and started
// again after a backoff that grows while it keeps dying young.
//
// Workers set PR_SET_PDEATHSIG, which fires when the *thread* that spawned
// them exits: call start() and tick() from a thread that lives as long as
// the server.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "common/process.h"
#include "worker/executor.h"

namespace kiln::worker {

struct LocalExecutorOptions {
  std::string server_url;  // "http://127.0.0.1:PORT"
  std::string token;       // the worker token, passed as KILN_WORKER_TOKEN
  std::string state_dir;   // logs go to <state_dir>/logs/worker-<node id>.log
  // A worker's command line without its node arguments: each node's worker
  // gets "--slots <n> --node <node id>" appended. Empty: this executable's
  // "worker --server <server_url>".
  std::vector<std::string> command;
  // Called from tick() and stop(), without any executor lock held, with the
  // pid of each worker seen to exit.
  std::function<void(int64_t pid)> on_worker_exit;
  // A worker that lived less than `young` waits twice as long as last time
  // (from min_backoff up to max_backoff) before it is started again.
  std::chrono::milliseconds min_backoff{500};
  std::chrono::milliseconds max_backoff{10000};
  std::chrono::milliseconds young{10000};
  os::ProcessLauncher* launcher = nullptr;  // default: posix_launcher()
};

class LocalExecutor final : public Executor {
 public:
  explicit LocalExecutor(LocalExecutorOptions options);
  ~LocalExecutor() override;  // stop(0) if still running

  Status start() override;
  Status launch_node(const std::string& node_id, int slots) override;
  Status terminate_node(const std::string& node_id, std::chrono::milliseconds grace) override;
  void tick() override;
  void stop(std::chrono::milliseconds grace) override;
  ExecutorStatus status() const override;

 private:
  using Clock = std::chrono::steady_clock;
  struct Node {
    std::string id;
    int slots = 0;
    os::Child worker;  // not running(): between a crash and its restart
    Clock::time_point started;
    Clock::time_point next_start;
    std::chrono::milliseconds backoff{0};
    bool stopping = false;      // terminate_node(): not restarted
    Clock::time_point kill_at;  // stopping: SIGKILL from then on
  };

  // REQUIRES: mu_ held.
  Status start_node(Node* node);
  // Reaps exited workers; schedules restarts of crashed ones and forgets
  // stopped ones. Returns their pids. REQUIRES: mu_ held.
  std::vector<int64_t> reap_exited(bool wait);

  LocalExecutorOptions options_;
  os::ProcessLauncher* launcher_;
  std::vector<std::string> command_;
  mutable std::mutex mu_;
  std::vector<Node> nodes_;  // guarded by mu_
  bool started_ = false;     // guarded by mu_
  bool stopped_ = false;     // guarded by mu_
  int64_t restarts_ = 0;     // guarded by mu_
};

}  // namespace kiln::worker
