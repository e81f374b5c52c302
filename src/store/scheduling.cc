// JobStore's scheduling side: starting steps, leasing tasks, heartbeats,
// completions, lease expiry, cancellation and the cleanup/interrupt sweeps.
// The rules are docs/cluster.md's "Tasks and leases".
#include <algorithm>

#include "store/store_impl.h"

namespace kiln::store {
namespace {

using internal::Query;
using internal::Transaction;

// docs/cluster.md: a failed attempt waits min(30 s, 1 s * 2^(attempt-1)).
int64_t retry_backoff_ms(int attempt) {
  constexpr int64_t kFirstMs = 1000, kMaxMs = 30000;
  if (attempt <= 1) return kFirstMs;
  if (attempt - 1 >= 5) return kMaxMs;  // 2^5 s already exceeds 30 s
  return std::min(kMaxMs, kFirstMs << (attempt - 1));
}

// The integer at `key` of a task result, when there is one.
std::optional<int64_t> result_int(const nlohmann::json& result, const char* key) {
  if (!result.is_object()) return std::nullopt;
  auto it = result.find(key);
  if (it == result.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

std::string task_label(const Task& t) {
  return t.kind == TaskKind::kCommit ? std::string("commit task")
                                     : "partition " + std::to_string(t.index);
}

// Ids from a query's first column.
Result<std::vector<std::string>> read_ids(Query& q) {
  std::vector<std::string> ids;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, q.next());
    if (!row) break;
    ids.push_back(q.text(0));
  }
  return ids;
}

// Marks the worker seen now. Unknown or dead workers are left as they are:
// the operation that called this decides whether that is an error.
Status touch(internal::Database& db, const std::string& worker_id, int64_t now_ms) {
  KILN_ASSIGN_OR_RETURN(
      Query q, db.query("UPDATE workers SET last_seen_ms = ?2 WHERE id = ?1 AND alive = 1"));
  q.bind(1, worker_id).bind(2, now_ms);
  return q.run();
}

}  // namespace

Result<std::vector<std::string>> JobStore::start_steps(
    const std::map<std::string, EnvironmentPolicy>& policies, int64_t now_ms) {
  MutexLock lock(&impl_->mu);
  internal::Database& db = *impl_->db;
  KILN_ASSIGN_OR_RETURN(Transaction txn, Transaction::begin(db));
  std::vector<std::string> started;
  for (const auto& [env, policy] : policies) {
    int64_t active = 0;
    {
      KILN_ASSIGN_OR_RETURN(Query q, db.query(R"sql(
SELECT COUNT(*) FROM steps
 WHERE environment = ?1 AND state IN ('RUNNING', 'CANCEL_PENDING'))sql"));
      q.bind(1, env);
      KILN_ASSIGN_OR_RETURN(bool row, q.next());
      if (row) active = q.int64(0);
    }
    if (active >= policy.concurrency) continue;
    std::vector<std::string> ids;
    {
      KILN_ASSIGN_OR_RETURN(Query q, db.query(R"sql(
SELECT id FROM steps WHERE environment = ?1 AND state = 'PENDING' ORDER BY seq LIMIT ?2)sql"));
      q.bind(1, env).bind(2, policy.concurrency - active);
      KILN_ASSIGN_OR_RETURN(ids, read_ids(q));
    }
    for (const std::string& id : ids) {
      {
        KILN_ASSIGN_OR_RETURN(
            Query q, db.query("UPDATE steps SET state = 'RUNNING', started_ms = ?2 WHERE id = ?1"));
        q.bind(1, id).bind(2, now_ms);
        KILN_RETURN_IF_ERROR(q.run());
      }
      // Waiting for the environment's concurrency is not waiting for a
      // slot: starvation counts from now.
      KILN_ASSIGN_OR_RETURN(Query q, db.query("UPDATE tasks SET queued_ms = ?2 "
                                              "WHERE step_id = ?1 AND state = 'PENDING'"));
      q.bind(1, id).bind(2, now_ms);
      KILN_RETURN_IF_ERROR(q.run());
      started.push_back(id);
    }
  }
  KILN_RETURN_IF_ERROR(txn.commit());
  return started;
}

Result<std::vector<Lease>> JobStore::lease(const std::string& worker_id, int slots,
                                           const std::map<std::string, EnvironmentPolicy>& policies,
                                           int64_t starvation_ms, int64_t lease_ms,
                                           int64_t now_ms) {
  MutexLock lock(&impl_->mu);
  internal::Database& db = *impl_->db;
  KILN_ASSIGN_OR_RETURN(Transaction txn, Transaction::begin(db));
  KILN_RETURN_IF_ERROR(impl_->check_live_worker(worker_id, now_ms));
  if (slots <= 0) {
    KILN_RETURN_IF_ERROR(txn.commit());
    return std::vector<Lease>();
  }

  // The order of docs/cluster.md in one statement: tasks that have been
  // runnable longer than starvation_ms first, then environment priority
  // (higher first; an environment without a policy counts as 0), then step
  // submission order, then partitions by index before the commit task. A
  // task is runnable once its backoff has passed, so waiting is counted
  // from max(queued_ms, not_before_ms). The commit task is runnable only
  // when every partition task of its step is DONE. Priorities come in as a
  // JSON object, so the statement stays cached whatever the policies are.
  // CROSS JOIN makes SQLite start from the RUNNING steps (few: bounded by
  // the concurrencies) rather than from every PENDING task, which includes
  // the whole backlog of steps not started yet.
  nlohmann::json priorities = nlohmann::json::object();
  for (const auto& [env, policy] : policies) priorities[env] = policy.priority;
  std::vector<int64_t> chosen;
  {
    KILN_ASSIGN_OR_RETURN(Query q, db.query(R"sql(
SELECT t.id FROM steps s
 CROSS JOIN tasks t ON t.step_id = s.id
  LEFT JOIN json_each(?1) p ON p.key = s.environment
 WHERE t.state = 'PENDING' AND s.state = 'RUNNING' AND t.not_before_ms <= ?2
   AND (t.kind = 'partition' OR NOT EXISTS (
          SELECT 1 FROM tasks d
           WHERE d.step_id = t.step_id AND d.kind = 'partition' AND d.state <> 'DONE'))
 ORDER BY (?2 - MAX(t.queued_ms, t.not_before_ms) > ?3) DESC,
          COALESCE(p.value, 0) DESC,
          s.seq,
          t.kind = 'commit',
          t.idx
 LIMIT ?4)sql"));
    q.bind(1, priorities.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    q.bind(2, now_ms).bind(3, starvation_ms).bind(4, slots);
    for (;;) {
      KILN_ASSIGN_OR_RETURN(bool row, q.next());
      if (!row) break;
      chosen.push_back(q.int64(0));
    }
  }

  std::vector<Lease> leases;
  for (int64_t task_id : chosen) {
    KILN_RETURN_IF_ERROR(impl_->start_attempt(task_id, worker_id, now_ms + lease_ms));
    Lease l;
    KILN_ASSIGN_OR_RETURN(l.task, impl_->task(task_id));
    KILN_ASSIGN_OR_RETURN(std::optional<Step> step,
                          impl_->find_step(l.task.step_id, /*with_progress=*/false));
    if (!step) return internal_error("task " + std::to_string(task_id) + " has no step");
    l.step = std::move(*step);
    leases.push_back(std::move(l));
  }
  KILN_RETURN_IF_ERROR(txn.commit());
  return leases;
}

Result<std::vector<int64_t>> JobStore::heartbeat(const std::string& worker_id,
                                                 const std::vector<Heartbeat>& tasks,
                                                 int64_t lease_ms, int64_t now_ms) {
  MutexLock lock(&impl_->mu);
  internal::Database& db = *impl_->db;
  KILN_ASSIGN_OR_RETURN(Transaction txn, Transaction::begin(db));
  KILN_RETURN_IF_ERROR(touch(db, worker_id, now_ms));
  std::vector<int64_t> unknown;
  for (const Heartbeat& hb : tasks) {
    KILN_ASSIGN_OR_RETURN(Query q, db.query(R"sql(
UPDATE tasks SET lease_expires_ms = ?4, tiles_done = ?5, bytes_read = ?6, bytes_written = ?7
 WHERE id = ?1 AND attempt = ?2 AND worker_id = ?3 AND state = 'LEASED')sql"));
    q.bind(1, hb.task_id).bind(2, hb.attempt).bind(3, worker_id).bind(4, now_ms + lease_ms);
    q.bind(5, hb.tiles_done)
        .bind(6, static_cast<int64_t>(hb.bytes_read))
        .bind(7, static_cast<int64_t>(hb.bytes_written));
    KILN_RETURN_IF_ERROR(q.run());
    if (q.changes() == 0) unknown.push_back(hb.task_id);
  }
  KILN_RETURN_IF_ERROR(txn.commit());
  return unknown;
}

Result<std::vector<std::pair<int64_t, std::string>>> JobStore::cancellations(
    const std::string& worker_id) {
  MutexLock lock(&impl_->mu);
  // Any step that is no longer RUNNING: CANCEL_PENDING with the signal the
  // client asked for; FAILED (another task ran out of attempts) or
  // INTERRUPTED with TERM, since their remaining work is wasted.
  KILN_ASSIGN_OR_RETURN(Query q, impl_->db->query(R"sql(
SELECT t.id, s.cancel_signal FROM tasks t JOIN steps s ON s.id = t.step_id
 WHERE t.worker_id = ?1 AND t.state = 'LEASED' AND s.state <> 'RUNNING'
 ORDER BY t.id)sql"));
  q.bind(1, worker_id);
  std::vector<std::pair<int64_t, std::string>> out;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, q.next());
    if (!row) break;
    std::string signal = q.text(1);
    out.emplace_back(q.int64(0), signal.empty() ? "TERM" : signal);
  }
  return out;
}

Result<bool> JobStore::complete(const std::string& worker_id, int64_t task_id, int attempt, bool ok,
                                const nlohmann::json& result, const Failure& error,
                                int64_t now_ms) {
  MutexLock lock(&impl_->mu);
  internal::Database& db = *impl_->db;
  KILN_ASSIGN_OR_RETURN(Transaction txn, Transaction::begin(db));
  Result<Task> found = impl_->task(task_id);
  if (!found.is_ok()) {
    if (found.status().code() == StatusCode::kNotFound) return false;
    return found.status();
  }
  const Task& t = *found;
  // Only the attempt holding the lease may end it: a late report from an
  // attempt whose lease lapsed (and maybe was leased again) changes nothing.
  if (t.state != TaskState::kLeased || t.attempt != attempt || t.worker_id != worker_id) {
    return false;
  }
  KILN_RETURN_IF_ERROR(touch(db, worker_id, now_ms));
  // Its state, layer and failure policy; not its progress.
  KILN_ASSIGN_OR_RETURN(std::optional<Step> step,
                        impl_->find_step(t.step_id, /*with_progress=*/false));
  if (!step) return internal_error("task " + std::to_string(task_id) + " has no step");

  // A commit that succeeded while its step was being cancelled came too
  // late to stop: the version is published, so the step is COMPLETED (a
  // CANCELLED step must never have visible output).
  const bool commit_landed =
      ok && t.kind == TaskKind::kCommit && step->state == StepState::kCancelPending;
  if (step->state != StepState::kRunning && !commit_landed) {
    KILN_ASSIGN_OR_RETURN(Query q, db.query("UPDATE tasks SET state = 'CANCELLED', "
                                            "lease_expires_ms = 0 WHERE id = ?1"));
    q.bind(1, task_id);
    KILN_RETURN_IF_ERROR(q.run());
    KILN_RETURN_IF_ERROR(txn.commit());
    return true;
  }

  if (ok) {
    // The final figures, when the worker folded its last progress line into
    // the result; otherwise the last heartbeat's stand.
    {
      KILN_ASSIGN_OR_RETURN(Query q, db.query(R"sql(
UPDATE tasks SET state = 'DONE', lease_expires_ms = 0,
                 tiles_done = COALESCE(?2, tiles_done),
                 bytes_read = COALESCE(?3, bytes_read),
                 bytes_written = COALESCE(?4, bytes_written)
 WHERE id = ?1)sql"));
      q.bind(1, task_id);
      int col = 2;
      for (const char* key : {"tiles_done", "bytes_read", "bytes_written"}) {
        std::optional<int64_t> v = result_int(result, key);
        if (v) {
          q.bind(col, *v);
        } else {
          q.bind_null(col);
        }
        ++col;
      }
      KILN_RETURN_IF_ERROR(q.run());
    }
    if (t.kind == TaskKind::kPartition) {
      // When the last partition is done the commit task becomes runnable:
      // its wait for a slot starts now.
      KILN_ASSIGN_OR_RETURN(Query q, db.query(R"sql(
UPDATE tasks SET queued_ms = ?2
 WHERE step_id = ?1 AND kind = 'commit' AND state = 'PENDING'
   AND NOT EXISTS (SELECT 1 FROM tasks d WHERE d.step_id = ?1 AND d.kind = 'partition'
                                           AND d.state <> 'DONE'))sql"));
      q.bind(1, t.step_id).bind(2, now_ms);
      KILN_RETURN_IF_ERROR(q.run());
    } else {
      std::string layer = step->layer;
      if (result.is_object() && result.contains("layer") && result["layer"].is_string()) {
        layer = result["layer"].get<std::string>();
      }
      KILN_ASSIGN_OR_RETURN(Query q, db.query(R"sql(
UPDATE steps SET state = 'COMPLETED', ended_ms = ?2, layer = ?3, version = ?4 WHERE id = ?1)sql"));
      q.bind(1, t.step_id).bind(2, now_ms).bind(3, layer);
      q.bind(4, result_int(result, "version").value_or(0));
      KILN_RETURN_IF_ERROR(q.run());
      KILN_RETURN_IF_ERROR(impl_->freeze_progress(t.step_id));
    }
    KILN_RETURN_IF_ERROR(txn.commit());
    return true;
  }

  const std::string reason = error.reason.empty() ? "TASK_FAILED" : error.reason;
  const std::string last_error = reason + ": " + error.message;
  if (!error.permanent && t.attempt < t.max_attempts) {
    {
      KILN_ASSIGN_OR_RETURN(Query q, db.query(R"sql(
UPDATE tasks SET state = 'PENDING', worker_id = '', lease_expires_ms = 0, not_before_ms = ?2,
                 queued_ms = ?3, last_error = ?4, tiles_done = 0, bytes_read = 0,
                 bytes_written = 0
 WHERE id = ?1)sql"));
      q.bind(1, task_id).bind(2, now_ms + retry_backoff_ms(t.attempt)).bind(3, now_ms);
      q.bind(4, last_error);
      KILN_RETURN_IF_ERROR(q.run());
    }
    KILN_RETURN_IF_ERROR(impl_->add_to_counter("task_retries", 1));
    KILN_RETURN_IF_ERROR(txn.commit());
    return true;
  }

  // Out of attempts, or an error another attempt would meet again: the task
  // and its step fail.
  {
    KILN_ASSIGN_OR_RETURN(Query q, db.query("UPDATE tasks SET state = 'FAILED', "
                                            "lease_expires_ms = 0, last_error = ?2 WHERE id = ?1"));
    q.bind(1, task_id).bind(2, last_error);
    KILN_RETURN_IF_ERROR(q.run());
  }
  const std::string attempts =
      "attempt " + std::to_string(t.attempt) + " of " + std::to_string(t.max_attempts) +
      (error.permanent && t.attempt < t.max_attempts ? "; not retried: the error is permanent"
                                                     : "");
  Failure failure{reason, task_label(t) + " failed (" + attempts + "): " + error.message, ""};
  KILN_RETURN_IF_ERROR(impl_->end_step(t.step_id, StepState::kFailed, &failure, now_ms));

  if (step->action_on_failure == "CANCEL_AND_WAIT") {
    std::vector<std::string> ids;
    {
      KILN_ASSIGN_OR_RETURN(Query q, db.query("SELECT id FROM steps WHERE environment = ?1 "
                                              "AND state = 'PENDING' ORDER BY seq"));
      q.bind(1, step->environment);
      KILN_ASSIGN_OR_RETURN(ids, read_ids(q));
    }
    Failure cancelled{"CANCELLED_BY_EARLIER_FAILURE",
                      "cancelled because step " + t.step_id +
                          " failed and its action_on_failure is CANCEL_AND_WAIT",
                      ""};
    for (const std::string& id : ids) {
      KILN_RETURN_IF_ERROR(impl_->end_step(id, StepState::kCancelled, &cancelled, now_ms));
    }
  }
  KILN_RETURN_IF_ERROR(txn.commit());
  return true;
}

Result<int64_t> JobStore::expire_leases(int64_t now_ms, std::vector<Task>* lapsed_out) {
  MutexLock lock(&impl_->mu);
  internal::Database& db = *impl_->db;
  KILN_ASSIGN_OR_RETURN(Transaction txn, Transaction::begin(db));
  std::vector<Task> lapsed;
  {
    // A lease granted until T is held at T itself.
    KILN_ASSIGN_OR_RETURN(
        Query q, db.query(select_tasks("WHERE state = 'LEASED' AND lease_expires_ms < ?1")));
    q.bind(1, now_ms);
    KILN_ASSIGN_OR_RETURN(lapsed, impl_->read_tasks(q));
  }
  for (const Task& t : lapsed) KILN_RETURN_IF_ERROR(impl_->release_lease(t, now_ms));
  const auto n = static_cast<int64_t>(lapsed.size());
  if (n > 0) KILN_RETURN_IF_ERROR(impl_->add_to_counter("lease_expiries", n));
  KILN_RETURN_IF_ERROR(txn.commit());
  if (lapsed_out) *lapsed_out = std::move(lapsed);
  return n;
}

Result<std::vector<Step>> JobStore::finish_cancellations(int64_t now_ms) {
  MutexLock lock(&impl_->mu);
  internal::Database& db = *impl_->db;
  KILN_ASSIGN_OR_RETURN(Transaction txn, Transaction::begin(db));
  std::vector<std::string> ids;
  {
    KILN_ASSIGN_OR_RETURN(Query q, db.query(R"sql(
SELECT id FROM steps s
 WHERE state = 'CANCEL_PENDING'
   AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.step_id = s.id AND t.state = 'LEASED')
 ORDER BY seq)sql"));
    KILN_ASSIGN_OR_RETURN(ids, read_ids(q));
  }
  std::vector<Step> finished;
  for (const std::string& id : ids) {
    KILN_RETURN_IF_ERROR(impl_->end_step(id, StepState::kCancelled, nullptr, now_ms));
    KILN_ASSIGN_OR_RETURN(std::optional<Step> s, impl_->find_step(id));
    if (s) finished.push_back(std::move(*s));
  }
  KILN_RETURN_IF_ERROR(txn.commit());
  return finished;
}

Result<std::vector<Step>> JobStore::steps_to_clean() {
  MutexLock lock(&impl_->mu);
  // Not while a task may still write into the staging directory: a FAILED
  // step's other tasks can hold leases until their workers stop them.
  KILN_ASSIGN_OR_RETURN(Query q, impl_->db->query(select_steps(R"sql(
 WHERE cleaned = 0 AND state IN ('FAILED', 'CANCELLED')
   AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.step_id = steps.id AND t.state = 'LEASED')
 ORDER BY seq)sql")));
  return impl_->read_steps(q);
}

Status JobStore::mark_cleaned(const std::string& step_id) {
  MutexLock lock(&impl_->mu);
  KILN_ASSIGN_OR_RETURN(Query q, impl_->db->query("UPDATE steps SET cleaned = 1 WHERE id = ?1"));
  q.bind(1, step_id);
  KILN_RETURN_IF_ERROR(q.run());
  if (q.changes() == 0) return not_found("step '" + step_id + "' does not exist");
  return Status::ok();
}

Result<int64_t> JobStore::interrupt_unknown_environments(const std::vector<std::string>& known,
                                                         int64_t now_ms) {
  nlohmann::json names = nlohmann::json::array();
  for (const std::string& k : known) names.push_back(k);
  MutexLock lock(&impl_->mu);
  internal::Database& db = *impl_->db;
  KILN_ASSIGN_OR_RETURN(Transaction txn, Transaction::begin(db));
  std::vector<std::pair<std::string, std::string>> steps;  // id, environment
  {
    KILN_ASSIGN_OR_RETURN(Query q, db.query(R"sql(
SELECT id, environment FROM steps
 WHERE state IN ('PENDING', 'RUNNING', 'CANCEL_PENDING')
   AND environment NOT IN (SELECT value FROM json_each(?1))
 ORDER BY seq)sql"));
    q.bind(1, names.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    for (;;) {
      KILN_ASSIGN_OR_RETURN(bool row, q.next());
      if (!row) break;
      steps.emplace_back(q.text(0), q.text(1));
    }
  }
  for (const auto& [id, env] : steps) {
    Failure f{"ENVIRONMENT_REMOVED", "environment '" + env + "' is no longer configured", ""};
    KILN_RETURN_IF_ERROR(impl_->end_step(id, StepState::kInterrupted, &f, now_ms));
  }
  KILN_RETURN_IF_ERROR(txn.commit());
  return static_cast<int64_t>(steps.size());
}

}  // namespace kiln::store
