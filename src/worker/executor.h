// Executor: how `kiln serve` gets workers. A node is one worker process with
// some slots standing for one machine of the cluster; the server's fleet
// (src/elastic) decides which nodes exist and asks the executor to start and
// stop them. The local executor starts worker processes on this machine;
// the Slurm executor (src/slurm) powers Slurm's nodes up and down instead,
// since there Slurm runs the tasks.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::worker {

struct NodeProcess {
  std::string node_id;
  int slots = 0;
  int64_t pid = 0;        // 0: not running now (between a crash and its restart)
  bool stopping = false;  // terminate_node() was called
};

struct ExecutorStatus {
  std::string kind;                // "local", ...
  int64_t restarts = 0;            // workers started again after a crash
  std::vector<NodeProcess> nodes;  // every node started and not yet ended
};

// Not thread-safe unless an implementation says so; the server calls
// start(), tick() and stop() from one thread, the one that lives as long as
// the server (a local worker dies with the thread that started it, see
// local_executor.h).
class Executor {
 public:
  virtual ~Executor() = default;
  // Gets ready to start nodes. kInternal naming what failed.
  virtual Status start() = 0;
  // Starts node `node_id`: a worker with `slots` slots that reports the node
  // id at registration. It is kept running (restarted after a crash) until
  // terminate_node(). kInvalidArgument for a node id in use.
  virtual Status launch_node(const std::string& node_id, int slots) = 0;
  // Stops the node's worker: SIGTERM now, SIGKILL once `grace` has passed
  // (in tick()); it is not restarted. kNotFound for an unknown node.
  virtual Status terminate_node(const std::string& node_id, std::chrono::milliseconds grace) = 0;
  // The node must take no new task from now on (scale-in, spot notice);
  // what it runs may finish. The local executor needs nothing here (the
  // server stops leasing to it); a batch system is told to drain it.
  virtual Status drain_node(const std::string& /*node_id*/) { return Status::ok(); }
  // Nodes launched since the last call that can take tasks now, for an
  // executor that learns this itself (a Slurm node that finished powering
  // up). The local executor returns none: its nodes are ready when their
  // worker registers.
  virtual std::vector<std::string> take_ready_nodes() { return {}; }
  // Supervises: reaps workers that exited, reports them, restarts crashed
  // ones, kills stopping ones past their grace. Call a few times a second;
  // never blocks for long.
  virtual void tick() = 0;
  // Asks every worker to stop (SIGTERM), waits up to `grace`, then kills
  // what is left. No worker runs once it returns; tick() then does nothing.
  virtual void stop(std::chrono::milliseconds grace) = 0;
  // Thread-safe.
  virtual ExecutorStatus status() const = 0;
};

}  // namespace kiln::worker
