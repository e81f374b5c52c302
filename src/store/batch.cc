// JobStore's side for executors that place tasks themselves (Slurm): a task
// claimed by name, the jobs a batch system runs for a step, and the reads
// a dispatcher needs. The rules are docs/slurm.md's.
#include <algorithm>

#include "store/store_impl.h"

namespace kiln::store {
namespace {

using internal::Query;
using internal::Transaction;

// How soon a claimant waiting on another holder's lease asks again: often
// enough to start right after the holder releases, rarely enough to be
// noise on the server.
constexpr int64_t kHolderPollMs = 2000;
// How soon a commit claimant asks again while partitions are unfinished
// (normally never: the batch system starts the commit job after them).
constexpr int64_t kCommitPollMs = 1000;

std::string state_text(TaskState s) { return task_state_name(s); }

}  // namespace

Result<Claim> JobStore::claim(const std::string& worker_id, const std::string& step_id,
                              int64_t index, int64_t lease_ms, int64_t now_ms) {
  MutexLock lock(&impl_->mu);
  internal::Database& db = *impl_->db;
  KILN_ASSIGN_OR_RETURN(Transaction txn, Transaction::begin(db));
  KILN_RETURN_IF_ERROR(impl_->check_live_worker(worker_id, now_ms));
  KILN_ASSIGN_OR_RETURN(std::optional<Step> step,
                        impl_->find_step(step_id, /*with_progress=*/false));
  if (!step) return not_found("no step '" + step_id + "'");
  std::vector<Task> found;
  {
    KILN_ASSIGN_OR_RETURN(Query q, db.query(select_tasks("WHERE step_id = ?1 AND idx = ?2")));
    q.bind(1, step_id).bind(2, index);
    KILN_ASSIGN_OR_RETURN(found, impl_->read_tasks(q));
  }
  if (found.empty()) {
    return not_found(
        "step " + step_id + " has no " +
        (index < 0 ? std::string("commit task") : "partition " + std::to_string(index)));
  }
  const Task& t = found.front();
  Claim c;
  auto finish = [&](Claim::Outcome outcome, std::string why, int64_t retry_at) -> Result<Claim> {
    c.outcome = outcome;
    c.why = std::move(why);
    c.retry_at_ms = retry_at;
    KILN_RETURN_IF_ERROR(txn.commit());
    return c;
  };

  if (t.state == TaskState::kDone) return finish(Claim::Outcome::kDone, "done already", 0);
  if (step->state != StepState::kRunning) {
    return finish(Claim::Outcome::kGone,
                  std::string("step ") + step_id + " is " + step_state_name(step->state), 0);
  }
  if (t.state == TaskState::kFailed || t.state == TaskState::kCancelled) {
    return finish(Claim::Outcome::kGone, "task is " + state_text(t.state), 0);
  }
  if (t.state == TaskState::kLeased) {
    if (t.worker_id != worker_id) {
      return finish(Claim::Outcome::kWait,
                    "attempt " + std::to_string(t.attempt) + " is held by worker " + t.worker_id,
                    std::min(t.lease_expires_ms + 1, now_ms + kHolderPollMs));
    }
    // The claimant's own lease (its earlier reply was lost): the same
    // attempt again, renewed.
    KILN_ASSIGN_OR_RETURN(Query q,
                          db.query("UPDATE tasks SET lease_expires_ms = ?2 WHERE id = ?1"));
    q.bind(1, t.id).bind(2, now_ms + lease_ms);
    KILN_RETURN_IF_ERROR(q.run());
  } else {
    // PENDING.
    if (t.not_before_ms > now_ms) {
      return finish(Claim::Outcome::kWait,
                    "attempt " + std::to_string(t.attempt) + " failed; backing off",
                    t.not_before_ms);
    }
    if (t.kind == TaskKind::kCommit) {
      KILN_ASSIGN_OR_RETURN(Query q, db.query(R"sql(
SELECT COUNT(*) FROM tasks WHERE step_id = ?1 AND kind = 'partition' AND state <> 'DONE')sql"));
      q.bind(1, step_id);
      KILN_ASSIGN_OR_RETURN(bool row, q.next());
      const int64_t unfinished = row ? q.int64(0) : 0;
      if (unfinished > 0) {
        return finish(Claim::Outcome::kWait,
                      std::to_string(unfinished) + " partition task(s) not done yet",
                      now_ms + kCommitPollMs);
      }
    }
    KILN_RETURN_IF_ERROR(impl_->start_attempt(t.id, worker_id, now_ms + lease_ms));
  }
  Lease l;
  KILN_ASSIGN_OR_RETURN(l.task, impl_->task(t.id));
  l.step = std::move(*step);
  c.lease = std::move(l);
  return finish(Claim::Outcome::kLeased, "", 0);
}

Result<int64_t> JobStore::extend_leases(int64_t until_ms) {
  MutexLock lock(&impl_->mu);
  KILN_ASSIGN_OR_RETURN(Query q, impl_->db->query(R"sql(
UPDATE tasks SET lease_expires_ms = ?1 WHERE state = 'LEASED' AND lease_expires_ms < ?1)sql"));
  q.bind(1, until_ms);
  KILN_RETURN_IF_ERROR(q.run());
  return static_cast<int64_t>(q.changes());
}

Result<std::vector<Task>> JobStore::tasks_of(const std::string& step_id) {
  MutexLock lock(&impl_->mu);
  KILN_ASSIGN_OR_RETURN(std::optional<Step> step,
                        impl_->find_step(step_id, /*with_progress=*/false));
  if (!step) return not_found("no step '" + step_id + "'");
  KILN_ASSIGN_OR_RETURN(
      Query q, impl_->db->query(select_tasks("WHERE step_id = ?1 ORDER BY kind = 'commit', idx")));
  q.bind(1, step_id);
  return impl_->read_tasks(q);
}

Result<std::vector<Step>> JobStore::steps_in_states(const std::vector<StepState>& states) {
  MutexLock lock(&impl_->mu);
  std::vector<Step> out;
  for (StepState s : states) {
    KILN_ASSIGN_OR_RETURN(Query q, impl_->db->query(select_steps("WHERE state = ?1")));
    q.bind(1, std::string(step_state_name(s)));
    KILN_ASSIGN_OR_RETURN(std::vector<Step> some,
                          impl_->read_steps(q, /*parse_action=*/false, /*with_progress=*/false));
    for (Step& st : some) out.push_back(std::move(st));
  }
  std::sort(out.begin(), out.end(), [](const Step& a, const Step& b) { return a.seq < b.seq; });
  return out;
}

Status JobStore::add_batch_job(const BatchJob& job) {
  MutexLock lock(&impl_->mu);
  internal::Database& db = *impl_->db;
  KILN_ASSIGN_OR_RETURN(Transaction txn, Transaction::begin(db));
  KILN_ASSIGN_OR_RETURN(std::optional<Step> step,
                        impl_->find_step(job.step_id, /*with_progress=*/false));
  if (!step) return not_found("no step '" + job.step_id + "'");
  {
    KILN_ASSIGN_OR_RETURN(Query q, db.query("SELECT 1 FROM batch_jobs WHERE job_id = ?1"));
    q.bind(1, job.job_id);
    KILN_ASSIGN_OR_RETURN(bool row, q.next());
    if (row) return invalid_argument("batch job " + job.job_id + " is recorded already");
  }
  KILN_ASSIGN_OR_RETURN(Query q, db.query(R"sql(
INSERT INTO batch_jobs (job_id, step_id, kind, indexes, submitted_ms, ended)
VALUES (?1, ?2, ?3, ?4, ?5, ?6))sql"));
  q.bind(1, job.job_id).bind(2, job.step_id).bind(3, job.kind).bind(4, job.indexes);
  q.bind(5, job.submitted_ms).bind(6, int64_t{job.ended ? 1 : 0});
  KILN_RETURN_IF_ERROR(q.run());
  return txn.commit();
}

Result<std::vector<BatchJob>> JobStore::open_batch_jobs() {
  MutexLock lock(&impl_->mu);
  KILN_ASSIGN_OR_RETURN(Query q, impl_->db->query(R"sql(
SELECT job_id, step_id, kind, indexes, submitted_ms FROM batch_jobs
 WHERE ended = 0 ORDER BY submitted_ms, rowid)sql"));
  std::vector<BatchJob> out;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, q.next());
    if (!row) break;
    BatchJob j;
    j.job_id = q.text(0);
    j.step_id = q.text(1);
    j.kind = q.text(2);
    j.indexes = q.text(3);
    j.submitted_ms = q.int64(4);
    out.push_back(std::move(j));
  }
  return out;
}

Result<bool> JobStore::has_batch_jobs(const std::string& step_id) {
  MutexLock lock(&impl_->mu);
  KILN_ASSIGN_OR_RETURN(Query q,
                        impl_->db->query("SELECT 1 FROM batch_jobs WHERE step_id = ?1 LIMIT 1"));
  q.bind(1, step_id);
  return q.next();
}

Result<bool> JobStore::fail_step(const std::string& step_id, const Failure& failure,
                                 int64_t now_ms) {
  MutexLock lock(&impl_->mu);
  internal::Database& db = *impl_->db;
  KILN_ASSIGN_OR_RETURN(Transaction txn, Transaction::begin(db));
  KILN_ASSIGN_OR_RETURN(std::optional<Step> step,
                        impl_->find_step(step_id, /*with_progress=*/false));
  if (!step) return not_found("no step '" + step_id + "'");
  if (step->state != StepState::kRunning && step->state != StepState::kCancelPending) {
    return false;
  }
  KILN_RETURN_IF_ERROR(impl_->end_step(step_id, StepState::kFailed, &failure, now_ms));
  KILN_RETURN_IF_ERROR(txn.commit());
  return true;
}

Status JobStore::end_batch_job(const std::string& job_id) {
  MutexLock lock(&impl_->mu);
  KILN_ASSIGN_OR_RETURN(Query q,
                        impl_->db->query("UPDATE batch_jobs SET ended = 1 WHERE job_id = ?1"));
  q.bind(1, job_id);
  KILN_RETURN_IF_ERROR(q.run());
  if (q.changes() == 0) return not_found("no batch job " + job_id);
  return Status::ok();
}

}  // namespace kiln::store
