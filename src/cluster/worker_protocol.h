// WorkerProtocol: the cluster core's side of what workers and batch tasks
// say to the server (docs/cluster.md, "Worker protocol"): register, lease,
// heartbeat, complete, claim (a batch task's named task), leave. The
// internal HTTP door (server/worker_api) translates JSON to these calls;
// nothing here knows HTTP.
//
// Contract:
// - Thread-safe: many workers call at once, on request threads.
// - Errors: kInvalidArgument for a malformed call (naming the field),
//   kNotFound for an unknown worker where the store says so, kInternal /
//   kIOError from the store.
// - Once shutdown has begun no task is leased or claimed (the reply says
//   "nothing" / "wait"); heartbeats and completions still count, so running
//   tasks can finish.
// - Every lease, completion and departure is logged in the step's log and
//   announced on StepEvents; time comes from the injected Clock.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster/elastic_control.h"
#include "cluster/lifecycle.h"
#include "cluster/policies.h"
#include "cluster/step_events.h"
#include "cluster/step_log.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "common/status.h"
#include "config/server_config.h"
#include "store/job_store.h"

namespace kiln::cluster {

struct Registration {
  std::string worker_id;
  int lease_seconds = 0;
  int heartbeat_seconds = 0;
  int cancel_grace_seconds = 0;
};

// One task handed to a worker: what `kiln task run` needs.
struct LeasedTask {
  int64_t task_id = 0;
  int attempt = 0;
  std::string step_id;
  nlohmann::json spec;  // step_id, task_id, attempt, kind, index, definition, plan
  std::string log_path;
  nlohmann::json sandbox;  // WorkerProtocolOptions::sandbox + the step's "source_roots"
};

struct HeartbeatReply {
  std::vector<std::pair<int64_t, std::string>> cancel;  // task id, "TERM" | "KILL"
  std::vector<int64_t> unknown;                         // leases this worker no longer holds
};

struct ClaimReply {
  using Outcome = store::Claim::Outcome;
  Outcome outcome = Outcome::kWait;
  std::optional<LeasedTask> task;  // kLeased
  int64_t retry_after_ms = 0;      // kWait
  std::string why;
};

struct Completion {
  std::string worker_id;
  std::string step_id;
  int64_t task_id = 0;
  int attempt = 0;
  bool ok = false;
  nlohmann::json result = nlohmann::json::object();
  store::Failure error;  // when !ok
};

struct WorkerProtocolOptions {
  int lease_seconds = 15;
  int heartbeat_seconds = 2;
  int cancel_grace_seconds = 10;
  int starvation_seconds = 30;
  // How workers sandbox tasks (sandbox::policy_to_json); each lease adds
  // its environment's source roots. Null: leases carry no sandbox.
  nlohmann::json sandbox;
  std::map<std::string, std::vector<std::string>> source_roots;  // by environment
};

class WorkerProtocol {
 public:
  // Every pointer must outlive this object.
  WorkerProtocol(WorkerProtocolOptions options, store::JobStore* store, ElasticControl* elastic,
                 StepLog* log, Policies* policies, StepEvents* events, Lifecycle* lifecycle,
                 const Clock& clock);

  // `node`: the fleet node the worker stands for (its --node). slots >= 1.
  // `registration_key`: the worker process's own (see
  // JobStore::register_worker); a retry with it gets the registration its
  // earlier attempt made, so a lost answer leaves no second live worker.
  Result<Registration> register_worker(int64_t pid, const std::string& node, int slots,
                                       const std::string& registration_key = "") EXCLUDES(mu_);
  // Up to free_slots tasks; none while stopping or while the worker's node
  // drains.
  Result<std::vector<LeasedTask>> lease(const std::string& worker_id, int free_slots);
  Result<HeartbeatReply> heartbeat(const std::string& worker_id,
                                   const std::vector<store::JobStore::Heartbeat>& beats);
  // Whether the completion was taken (false: the attempt no longer held
  // its lease and is ignored). The attempt's slot time is charged to its
  // step whatever the outcome.
  Result<bool> complete(const Completion& c);
  // index: a partition's, or -1 for the commit task.
  Result<ClaimReply> claim(const std::string& worker_id, const std::string& step_id, int64_t index);
  // The worker stops for good (preempted, cancelled batch task): its leases
  // return to the queue now.
  Status leave(const std::string& worker_id);
  // The executor saw a worker process exit (by pid): its tasks are requeued.
  void worker_exited(int64_t pid) EXCLUDES(mu_);

  // Tiles of the versions committed since this server started (/metrics).
  int64_t tiles_written() const { return tiles_written_.load(); }

 private:
  LeasedTask leased_task(const store::Lease& l, const std::string& worker, int64_t now);

  const WorkerProtocolOptions options_;
  store::JobStore* store_;
  ElasticControl* elastic_;
  StepLog* log_;
  Policies* policies_;
  StepEvents* events_;
  Lifecycle* lifecycle_;
  const Clock& clock_;
  std::atomic<int64_t> tiles_written_{0};
  Mutex mu_;
  std::map<int64_t, std::string> worker_by_pid_ GUARDED_BY(mu_);
};

}  // namespace kiln::cluster
