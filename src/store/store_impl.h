// JobStore::Impl: the connection, its mutex, and the row-level helpers the
// public operations are built from. Internal to src/store; shared by
// job_store.cc (steps), scheduling.cc (tasks and leases), workers.cc and
// batch.cc (claims and batch jobs).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "store/job_store.h"
#include "store/sqlite.h"

namespace kiln::store {

// Column lists in the order read_step()/read_task() expect.
inline constexpr const char* kStepColumns =
    "seq, id, environment, name, state, action_on_failure, action, layer, version, "
    "tiles_total, created_ms, started_ms, ended_ms, failure_reason, failure_message, "
    "failure_log_file, cancel_signal, final_tasks_total, final_tasks_done, final_tiles_done, "
    "final_bytes_read, final_bytes_written, slot_seconds, cost";
inline constexpr const char* kTaskColumns =
    "id, step_id, kind, idx, state, attempt, max_attempts, worker_id, lease_expires_ms, "
    "not_before_ms, queued_ms, last_error";

// "SELECT <step columns> FROM steps <rest>".
std::string select_steps(const std::string& rest);
std::string select_tasks(const std::string& rest);

struct JobStore::Impl {
  // Every member function below REQUIRES(mu). The public JobStore methods
  // take it once, on entry, and hold it for the whole operation including
  // its transaction.
  Mutex mu;
  std::unique_ptr<internal::Database> db GUARDED_BY(mu);

  // The step with this id in any environment; nullopt when there is none.
  // `with_progress`: false skips the pass over its tasks (a lease only
  // needs the step's definition).
  Result<std::optional<Step>> find_step(const std::string& id, bool with_progress = true)
      REQUIRES(mu);
  // The step with this id in `environment`; NotFound otherwise, with one
  // message whether the id is unknown or belongs to another environment.
  Result<Step> step_in(const std::string& environment, const std::string& id) REQUIRES(mu);
  // How many of the environment's steps are in `state` (steps_by_state index).
  Result<int64_t> count_steps(const std::string& environment, StepState state) REQUIRES(mu);
  // Every row of `q` (a select_steps() query) as a Step with its progress.
  // `parse_action`: false leaves Step::action null (listings that do not
  // show it skip parsing every step's definition).
  Result<std::vector<Step>> read_steps(internal::Query& q, bool parse_action = true,
                                       bool with_progress = true) REQUIRES(mu);
  // Fills the progress of each step that has not ended from its tasks, in
  // one query (an ended step's was read from its row).
  Status fill_progress(std::vector<Step>& steps) REQUIRES(mu);
  // Records step_id's progress as of now in its row; called in the
  // transaction that ends it, so an ended step's progress is what it was
  // when it ended.
  Status freeze_progress(const std::string& step_id) REQUIRES(mu);

  Result<Task> task(int64_t id) REQUIRES(mu);
  Result<std::vector<Task>> read_tasks(internal::Query& q) REQUIRES(mu);

  // Ends a step that is not terminal yet: `state` (terminal), ended_ms, the
  // failure if any, and its PENDING tasks CANCELLED. LEASED tasks stay
  // leased: their workers learn through cancellations() and their
  // completions end them CANCELLED.
  Status end_step(const std::string& step_id, StepState state, const Failure* failure,
                  int64_t now_ms) REQUIRES(mu);
  // A LEASED task whose lease ends without a result (expiry, worker gone):
  // back to PENDING when its step still runs, else CANCELLED.
  Status release_lease(const Task& t, int64_t now_ms) REQUIRES(mu);
  Status add_to_counter(const char* name, int64_t delta) REQUIRES(mu);
  // NotFound unless the worker is registered and not declared gone; marks
  // it seen now. For the calls that hand a worker work (lease, claim).
  Status check_live_worker(const std::string& worker_id, int64_t now_ms) REQUIRES(mu);
  // The task is LEASED to `worker_id` until `expires_ms` as its next
  // attempt, which starts from zero progress.
  Status start_attempt(int64_t task_id, const std::string& worker_id, int64_t expires_ms)
      REQUIRES(mu);
};

}  // namespace kiln::store
