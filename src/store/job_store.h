// The job store: durable state of steps, tasks and workers in SQLite (WAL).
//
// Every state transition is one transaction, so a kill -9 at any moment
// leaves either the state before or the state after. Time is always passed
// in (milliseconds since the epoch) so the scheduler's clock is a seam and
// tests control it. Thread-safe: one connection guarded by a mutex (SQLite
// serialises writers anyway; reads are short).
//
// See docs/cluster.md for the state machines this enforces.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "common/task_kind.h"

namespace kiln::store {

enum class StepState {
  kPending,
  kRunning,
  kCompleted,
  kCancelPending,
  kCancelled,
  kFailed,
  kInterrupted
};
const char* step_state_name(StepState s);  // "PENDING", ...
Result<StepState> parse_step_state(const std::string& name);
bool is_terminal(StepState s);  // COMPLETED, CANCELLED, FAILED, INTERRUPTED

enum class TaskState { kPending, kLeased, kDone, kFailed, kCancelled };
const char* task_state_name(TaskState s);

using TaskKind = ::kiln::TaskKind;  // defined once, in common/task_kind.h

struct Failure {
  std::string reason;   // short, stable: "TASK_FAILED", "SOURCE_ERROR", ...
  std::string message;  // human, names the culprit
  std::string log_file;
  // The attempt failed on something that fails again every time (a corrupt
  // block, a missing source): the task is not retried. Crashes, lost
  // leases and signals are transient (false), as is a worker that does not
  // say (docs/cluster.md, "Retries").
  bool permanent = false;
};

struct StepProgress {
  int64_t tasks_total = 0, tasks_done = 0;
  int64_t tiles_total = 0, tiles_done = 0;
  uint64_t bytes_read = 0, bytes_written = 0;
};

struct Step {
  std::string id;   // "s-" + 13 of [0-9A-Z]
  int64_t seq = 0;  // submission order, global, increasing
  std::string environment;
  std::string name;
  StepState state = StepState::kPending;
  std::string action_on_failure;  // "CONTINUE" | "CANCEL_AND_WAIT"
  nlohmann::json action;          // as submitted (definition resolved inline)
  int64_t created_ms = 0, started_ms = 0, ended_ms = 0;  // 0: not yet
  std::optional<Failure> failure;
  std::string cancel_signal;  // "" | "TERM" | "KILL" once cancel was asked
  StepProgress progress;
  std::string layer;
  int version = 0;  // committed layer version (COMPLETED only)
  // What its task attempts ran on so far: slot-seconds, and their price
  // (add_cost()).
  double slot_seconds = 0;
  double cost = 0;
};

struct NewStep {
  std::string environment;
  std::string name;
  std::string action_on_failure;
  nlohmann::json action;
  std::string layer;
  int64_t partitions = 0;  // partition tasks to create (plus one commit task)
  int64_t tiles_total = 0;
  int max_attempts = 3;
  // > 0: submit() refuses (kResourceExhausted) when the environment has
  // this many PENDING steps already, checked in the insert's transaction.
  int64_t max_pending = 0;
};

struct Task {
  int64_t id = 0;
  std::string step_id;
  TaskKind kind = TaskKind::kPartition;
  int64_t index = 0;  // partition index; -1 for the commit task
  TaskState state = TaskState::kPending;
  int attempt = 0;  // attempts started so far; the current lease's number
  int max_attempts = 3;
  std::string worker_id;
  int64_t lease_expires_ms = 0;
  int64_t not_before_ms = 0;  // backoff after a failed attempt
  int64_t queued_ms = 0;      // when it last became PENDING (starvation)
  std::string last_error;
};

// What a worker gets for one leased task.
struct Lease {
  Task task;
  Step step;  // state + action, for building the task spec
};

struct EnvironmentPolicy {
  int concurrency = 1;  // RUNNING + CANCEL_PENDING steps at most
  int priority = 0;     // higher first
};

struct WorkerInfo {
  std::string id;  // "w-..."
  int64_t pid = 0;
  std::string host;
  int slots = 0;
  int busy = 0;  // tasks leased now
  int64_t registered_ms = 0, last_seen_ms = 0;
  bool alive = true;
};

struct ListQuery {
  std::string environment;        // required: only this environment's steps
  std::vector<StepState> states;  // empty: all
  std::vector<std::string> ids;   // empty: all
  int limit = 50;                 // 1..1000
  std::string marker;             // from a previous page's next_marker
  bool with_action = true;        // false: Step::action left null (cheaper listings)
};

struct ListPage {
  std::vector<Step> steps;  // newest first
  std::string next_marker;  // empty: last page
};

// Counters and gauges for /metrics and cluster status.
struct StoreStats {
  std::map<std::string, std::map<std::string, int64_t>> steps_by_env_state;
  int64_t tasks_pending = 0, tasks_leased = 0;
  std::map<std::string, int64_t> queued_tasks_by_env;  // PENDING tasks of RUNNING steps
  int64_t lease_expiries = 0;                          // total, durable
  int64_t task_retries = 0;                            // total, durable
};

// The load an autoscaler looks at (elastic::ClusterSample's store half).
// Cheap: reads only PENDING/LEASED tasks and PENDING steps by index, never
// the history.
struct Load {
  int64_t pending_tasks = 0;  // PENDING tasks of RUNNING steps, past their backoff
  int64_t leased_tasks = 0;
  int64_t backlog_steps = 0;  // PENDING steps (waiting for their environment's concurrency)
  int64_t oldest_pending_wait_ms = 0;  // of pending_tasks; 0 when there is none
};

// What claim() found for one task.
struct Claim {
  enum class Outcome {
    kLeased,  // `lease` holds it now (a new attempt, or the claimant's own)
    kWait,    // not runnable yet (backoff, partitions not done, another
              // holder's lease): ask again at retry_at_ms
    kDone,    // DONE already: nothing to run
    kGone,    // the step is not running or the task ended FAILED/CANCELLED
  };
  Outcome outcome = Outcome::kWait;
  std::optional<Lease> lease;
  int64_t retry_at_ms = 0;
  std::string why;  // for kWait and kGone: what the claimant is told
};

// A job of an external batch system (Slurm) running some of a step's tasks.
struct BatchJob {
  std::string job_id;  // the batch system's id
  std::string step_id;
  std::string kind;     // "partitions" | "commit"
  std::string indexes;  // partition indexes as submitted: "0-7", "3,5"; "" for commit
  int64_t submitted_ms = 0;
  bool ended = false;
};

namespace internal {
class Database;
}

class JobStore {
 public:
  // Opens (creating if needed) <state_dir>/kiln.db in WAL mode and applies
  // pending schema migrations (schema version in PRAGMA user_version).
  static Result<std::unique_ptr<JobStore>> open(const std::string& state_dir);
  // The same store in memory, gone when closed: for `kiln simulate`, which
  // drives the real scheduling code with a simulated clock, and for tests.
  static Result<std::unique_ptr<JobStore>> open_in_memory();
  ~JobStore();

  // --- steps (API side) ---------------------------------------------------
  Result<Step> submit(const NewStep& s, int64_t now_ms);
  // Every step in one transaction, in order: all are inserted or none.
  // Each step's max_pending counts the steps before it in `steps` that are
  // in the same environment (kResourceExhausted for the whole batch).
  Result<std::vector<Step>> submit_all(const std::vector<NewStep>& steps, int64_t now_ms);
  // NotFound unless the step exists *in `environment`*.
  Result<Step> get(const std::string& environment, const std::string& id);
  // Pages continue after ListQuery::marker, the id of the previous page's
  // last step (next_marker); kInvalidArgument when it is not a step of
  // q.environment.
  Result<ListPage> list(const ListQuery& q);
  // The environment's steps in `state` (by index: cheap for PENDING).
  Result<int64_t> count_steps(const std::string& environment, StepState state);
  // PENDING -> CANCELLED at once; RUNNING -> CANCEL_PENDING (signal "TERM" or
  // "KILL" recorded for the workers); terminal or CANCEL_PENDING: unchanged
  // (returns the step as it is). NotFound as for get().
  Result<Step> request_cancel(const std::string& environment, const std::string& id,
                              const std::string& signal, int64_t now_ms);

  // --- scheduling (server side) -------------------------------------------
  // Starts PENDING steps in submission order per environment while that
  // environment has fewer than policy.concurrency RUNNING/CANCEL_PENDING
  // steps. Environments missing from `policies` are left alone. Returns the
  // ids started.
  Result<std::vector<std::string>> start_steps(
      const std::map<std::string, EnvironmentPolicy>& policies, int64_t now_ms);
  // Leases up to `slots` runnable tasks to `worker_id` (see docs/cluster.md
  // for the order), each until now_ms + lease_ms; attempt is incremented.
  // NotFound when the worker is not registered or was declared gone.
  // Environments missing from `policies` count as priority 0.
  Result<std::vector<Lease>> lease(const std::string& worker_id, int slots,
                                   const std::map<std::string, EnvironmentPolicy>& policies,
                                   int64_t starvation_ms, int64_t lease_ms, int64_t now_ms);
  // Renews the worker's leases on these (task id, attempt) pairs and stores
  // their progress; returns the ones it does not hold (any more).
  struct Heartbeat {
    int64_t task_id = 0;
    int attempt = 0;
    int64_t tiles_done = 0;
    uint64_t bytes_read = 0, bytes_written = 0;
  };
  Result<std::vector<int64_t>> heartbeat(const std::string& worker_id,
                                         const std::vector<Heartbeat>& tasks, int64_t lease_ms,
                                         int64_t now_ms);
  // Tasks this worker holds whose steps are CANCEL_PENDING, with the signal.
  Result<std::vector<std::pair<int64_t, std::string>>> cancellations(const std::string& worker_id);
  // Ends an attempt. Ignored (returns false) unless (task, attempt, worker)
  // holds the lease. ok: partition -> DONE; commit -> DONE and its step
  // COMPLETED with result["version"], result["layer"]. Not ok: back to PENDING
  // with backoff, or FAILED when out of attempts or error.permanent -> step
  // FAILED with the error (and CANCEL_AND_WAIT cancels the environment's PENDING steps).
  // A task of a CANCEL_PENDING step ends CANCELLED either way, except a
  // commit that succeeded: its version is published, so the step is
  // COMPLETED (the cancel came too late). A DONE task's progress is its last
  // heartbeat's, or result["tiles_done"/"bytes_read"/"bytes_written"] when
  // the worker sends its final figures there.
  Result<bool> complete(const std::string& worker_id, int64_t task_id, int attempt, bool ok,
                        const nlohmann::json& result, const Failure& error, int64_t now_ms);
  // Leases one named task (index -1: the step's commit task) to
  // `worker_id`, for an executor that places each task itself (Slurm runs
  // an array task per partition, which claims its own). Unlike lease(), the
  // order and the environments' priorities are not consulted: the placement
  // was decided elsewhere. A task LEASED to another worker is not taken
  // over: that holder may still be running it (a failed node's processes
  // can outlive its daemon), so the claimant waits for it to finish,
  // release or lapse. NotFound for an unknown worker, step or index.
  Result<Claim> claim(const std::string& worker_id, const std::string& step_id, int64_t index,
                      int64_t lease_ms, int64_t now_ms);
  // Every LEASED task's lease lasts at least until `until_ms`: a restarted
  // server gives workers that outlived it (batch jobs) time to report in.
  // Returns how many were extended.
  Result<int64_t> extend_leases(int64_t until_ms);
  // A step's tasks, partitions by index then the commit task. NotFound for
  // an unknown step.
  Result<std::vector<Task>> tasks_of(const std::string& step_id);
  // Steps in these states, in every environment, oldest first, without
  // their definitions.
  Result<std::vector<Step>> steps_in_states(const std::vector<StepState>& states);

  // --- batch jobs (executor "slurm") -----------------------------------------
  // InvalidArgument for a job id recorded already; NotFound for an unknown step.
  Status add_batch_job(const BatchJob& job);
  // Jobs not marked ended, oldest first.
  Result<std::vector<BatchJob>> open_batch_jobs();
  // Whether any batch job was ever recorded for the step (ended or not).
  Result<bool> has_batch_jobs(const std::string& step_id);
  // A RUNNING or CANCEL_PENDING step -> FAILED with `failure` (an executor
  // that cannot run it: the batch system refuses its jobs). Its PENDING
  // tasks are CANCELLED; LEASED ones end as their workers report. Returns
  // false when the step had ended already. NotFound for an unknown step.
  Result<bool> fail_step(const std::string& step_id, const Failure& failure, int64_t now_ms);
  Status end_batch_job(const std::string& job_id);

  // Leases past their deadline go back to PENDING (counted in
  // lease_expiries); returns how many. `lapsed`, if given, receives the
  // tasks as they were leased (for their steps' logs).
  Result<int64_t> expire_leases(int64_t now_ms, std::vector<Task>* lapsed = nullptr);
  // CANCEL_PENDING steps with no LEASED task left -> CANCELLED (their
  // PENDING tasks CANCELLED). Returns the ids finished, for staging cleanup.
  Result<std::vector<Step>> finish_cancellations(int64_t now_ms);
  // Steps FAILED or CANCELLED whose staging has not been cleaned yet, and
  // marking them cleaned (so cleanup survives a restart in between). A
  // FAILED step is listed only once none of its tasks is LEASED any more,
  // so no task writes into staging after its removal.
  Result<std::vector<Step>> steps_to_clean();
  Status mark_cleaned(const std::string& step_id);
  // PENDING/RUNNING/CANCEL_PENDING steps of environments not in `known` ->
  // INTERRUPTED with a failure saying so. Returns how many.
  Result<int64_t> interrupt_unknown_environments(const std::vector<std::string>& known,
                                                 int64_t now_ms);

  // --- workers --------------------------------------------------------------
  // `registration_key`: drawn by the worker process once and sent with
  // every attempt to register. An alive worker registered under the same
  // key is that process's earlier attempt (its answer was lost): it is
  // returned (and touched) instead of a second worker, with *again set.
  // The same key from a different pid, host or slot count is refused
  // (kInvalidArgument naming registration_key). Empty: no key, a new
  // worker every time.
  Result<WorkerInfo> register_worker(int64_t pid, const std::string& host, int slots,
                                     int64_t now_ms, const std::string& registration_key = "",
                                     bool* again = nullptr);
  Status touch_worker(const std::string& worker_id, int64_t now_ms);
  // Marks the worker dead and returns its leases to PENDING at once.
  // `released`, if given, receives the tasks it held.
  Status worker_gone(const std::string& worker_id, int64_t now_ms,
                     std::vector<Task>* released = nullptr);
  Result<std::vector<WorkerInfo>> workers(bool alive_only);

  Result<StoreStats> stats();
  Result<Load> load(int64_t now_ms);
  // Adds one task attempt's slot-seconds and price to its step. NotFound
  // for an unknown step.
  Status add_cost(const std::string& step_id, double slot_seconds, double cost);

 private:
  JobStore() = default;
  static Result<std::unique_ptr<JobStore>> from_database(std::unique_ptr<internal::Database> db);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::store
