// LocalExecutor: nodes as `kiln worker` processes on this machine, kept
// running. Each is started through os::ProcessLauncher, KILN_WORKER_TOKEN in its
// environment and stdout/stderr appended to <state_dir>/logs/worker-<node>.log.
// A worker that exits is reported through on_worker_exit (so the server can
// return its leases at once instead of waiting for them to lapse) and started
// again after a backoff that grows while it keeps dying young.
//
// Backoffs and grace periods are measured on the injected Clock, so a test
// drives them with a ManualClock. Thread-safe (one mutex; stop() holds it
// while it waits out the grace period).
//
// Workers set PR_SET_PDEATHSIG, which fires when the *thread* that spawned
// them exits: call start() and tick() from a thread that lives as long as
// the server.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
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
  // 1-19: workers run at this nice level from their first instruction, so
  // that hundreds starting at once (a warm core of 500 nodes) leave the
  // server's threads the CPU they need to answer their registrations.
  // 0: the server's own.
  int nice = 0;
  // Called from tick() and stop(), without any executor lock held, with the
  // pid of each worker seen to exit.
  std::function<void(int64_t pid)> on_worker_exit;
  // A worker that lived less than `young` waits twice as long as last time
  // (from min_backoff up to max_backoff) before it is started again.
  std::chrono::milliseconds min_backoff{500};
  std::chrono::milliseconds max_backoff{10000};
  std::chrono::milliseconds young{10000};
  os::ProcessLauncher* launcher = nullptr;  // default: posix_launcher()
  // Where backoffs and grace periods are measured; default: system_clock().
  const Clock* clock = nullptr;
};

class LocalExecutor final : public Executor {
 public:
  explicit LocalExecutor(LocalExecutorOptions options);
  ~LocalExecutor() override;  // stop(0) if still running

  Status start() override EXCLUDES(mu_);
  Status launch_node(const std::string& node_id, int slots) override EXCLUDES(mu_);
  Status terminate_node(const std::string& node_id, std::chrono::milliseconds grace) override
      EXCLUDES(mu_);
  void tick() override EXCLUDES(mu_);
  // Measures `grace` on the clock; looks for exited workers every few
  // milliseconds of real time meanwhile.
  void stop(std::chrono::milliseconds grace) override EXCLUDES(mu_);
  ExecutorStatus status() const override EXCLUDES(mu_);

 private:
  // Times are the clock's milliseconds (Clock::now_ms()).
  struct Node {
    std::string id;
    int slots = 0;
    os::Child worker;        // not running(): between a crash and its restart
    int64_t started_ms = 0;  // when its worker last started
    int64_t next_start_ms = 0;
    std::chrono::milliseconds backoff{0};
    bool stopping = false;   // terminate_node(): not restarted
    int64_t kill_at_ms = 0;  // stopping: SIGKILL from then on
  };

  Status start_node(Node* node) REQUIRES(mu_);
  // Reaps exited workers; schedules restarts of crashed ones and forgets
  // stopped ones. Returns their pids.
  std::vector<int64_t> reap_exited(bool wait) REQUIRES(mu_);

  const LocalExecutorOptions options_;
  os::ProcessLauncher* const launcher_;
  const Clock* const clock_;
  mutable Mutex mu_;
  std::vector<std::string> command_ GUARDED_BY(mu_);
  std::vector<Node> nodes_ GUARDED_BY(mu_);
  bool started_ GUARDED_BY(mu_) = false;
  bool stopped_ GUARDED_BY(mu_) = false;
  int64_t restarts_ GUARDED_BY(mu_) = 0;
};

}  // namespace kiln::worker
