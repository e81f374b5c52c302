// JobStore: opening the database, state names, and the API side of steps
// (submit, get, list, cancel) plus stats() and load(). Scheduling lives in
// scheduling.cc, worker registration in workers.cc.
#include "store/job_store.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <system_error>

#include "store/ids.h"
#include "store/schema.h"
#include "store/store_impl.h"

namespace kiln::store {
namespace {

using internal::Query;
using internal::ReadSnapshot;
using internal::Transaction;

// How long a statement waits for another process's write lock before
// failing with SQLITE_BUSY. Transactions here take milliseconds, so this
// only runs out when something holds the database far longer than it should.
constexpr int kBusyTimeoutMs = 5000;

Status pending_quota_error(const std::string& environment, int64_t pending) {
  return resource_exhausted("environment '" + environment + "' has " + std::to_string(pending) +
                            " PENDING steps, its limit ([[environment]] max_pending_steps): "
                            "wait for some to start, or cancel some");
}

Status validate_new_step(const NewStep& s) {
  if (s.environment.empty()) return invalid_argument("step has no environment");
  if (s.action_on_failure != "CONTINUE" && s.action_on_failure != "CANCEL_AND_WAIT") {
    return invalid_argument("action_on_failure must be CONTINUE or CANCEL_AND_WAIT, not '" +
                            s.action_on_failure + "'");
  }
  if (s.partitions < 0) return invalid_argument("a step cannot have a negative partition count");
  if (s.tiles_total < 0) return invalid_argument("a step cannot have a negative tile count");
  if (s.max_attempts < 1) return invalid_argument("max_attempts must be at least 1");
  return Status::ok();
}

}  // namespace

// --- state names -------------------------------------------------------------

const char* step_state_name(StepState s) {
  switch (s) {
    case StepState::kPending:
      return "PENDING";
    case StepState::kRunning:
      return "RUNNING";
    case StepState::kCompleted:
      return "COMPLETED";
    case StepState::kCancelPending:
      return "CANCEL_PENDING";
    case StepState::kCancelled:
      return "CANCELLED";
    case StepState::kFailed:
      return "FAILED";
    case StepState::kInterrupted:
      return "INTERRUPTED";
  }
  return "UNKNOWN";
}

Result<StepState> parse_step_state(const std::string& name) {
  for (StepState s :
       {StepState::kPending, StepState::kRunning, StepState::kCompleted, StepState::kCancelPending,
        StepState::kCancelled, StepState::kFailed, StepState::kInterrupted}) {
    if (name == step_state_name(s)) return s;
  }
  return invalid_argument("unknown step state '" + name +
                          "' (PENDING, RUNNING, COMPLETED, CANCEL_PENDING, CANCELLED, FAILED, "
                          "INTERRUPTED)");
}

bool is_terminal(StepState s) {
  return s == StepState::kCompleted || s == StepState::kCancelled || s == StepState::kFailed ||
         s == StepState::kInterrupted;
}

const char* task_state_name(TaskState s) {
  switch (s) {
    case TaskState::kPending:
      return "PENDING";
    case TaskState::kLeased:
      return "LEASED";
    case TaskState::kDone:
      return "DONE";
    case TaskState::kFailed:
      return "FAILED";
    case TaskState::kCancelled:
      return "CANCELLED";
  }
  return "UNKNOWN";
}

// --- opening -----------------------------------------------------------------

Result<std::unique_ptr<JobStore>> JobStore::open(const std::string& state_dir) {
  if (state_dir.empty()) return invalid_argument("state directory is empty: name a directory");
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec) return io_error("cannot create state directory '" + state_dir + "': " + ec.message());

  KILN_ASSIGN_OR_RETURN(std::unique_ptr<internal::Database> db,
                        internal::Database::open(state_dir + "/kiln.db"));
  KILN_RETURN_IF_ERROR(db->exec("PRAGMA busy_timeout = " + std::to_string(kBusyTimeoutMs)));
  {
    // WAL: readers never block the writer, and a commit is one append to
    // the log. The mode is stored in the file, but asking every time is
    // cheap and repairs a database someone switched back.
    KILN_ASSIGN_OR_RETURN(Query q, db->query("PRAGMA journal_mode = WAL"));
    KILN_ASSIGN_OR_RETURN(bool row, q.next());
    if (!row || q.text(0) != "wal") {
      return io_error("job store '" + db->path() + "' cannot use write-ahead logging (mode '" +
                      (row ? q.text(0) : std::string()) + "'); is it on a network file system?");
    }
  }
  // synchronous=NORMAL: in WAL mode a COMMIT has written the transaction to
  // the log with write(2) before it returns, and fsyncs only at checkpoints.
  // What write(2) handed to the kernel survives the process dying any way at
  // all (kill -9, a crash, the OOM killer), so no committed transition is
  // lost then. Only a power loss or kernel crash can drop the last few
  // commits, and even then the database opens consistent at an earlier
  // commit; tasks are idempotent (a commit task finds its version already
  // committed), so what such a loss costs is re-running work, never a wrong
  // catalog. FULL would add an fsync to every lease and heartbeat.
  KILN_RETURN_IF_ERROR(db->exec("PRAGMA synchronous = NORMAL"));
  return from_database(std::move(db));
}

Result<std::unique_ptr<JobStore>> JobStore::open_in_memory() {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<internal::Database> db,
                        internal::Database::open(":memory:"));
  return from_database(std::move(db));
}

Result<std::unique_ptr<JobStore>> JobStore::from_database(std::unique_ptr<internal::Database> db) {
  KILN_RETURN_IF_ERROR(db->exec("PRAGMA foreign_keys = ON"));
  KILN_RETURN_IF_ERROR(internal::migrate(*db));
  std::unique_ptr<JobStore> store(new JobStore());
  store->impl_ = std::make_unique<Impl>();
  {
    // Nobody else can see the store yet; the lock is for the analysis, and
    // costs nothing uncontended.
    MutexLock lock(&store->impl_->mu);
    store->impl_->db = std::move(db);
  }
  return store;
}

JobStore::~JobStore() = default;

// --- steps -------------------------------------------------------------------

Result<Step> JobStore::submit(const NewStep& s, int64_t now_ms) {
  KILN_ASSIGN_OR_RETURN(std::vector<Step> steps, submit_all({s}, now_ms));
  return std::move(steps.front());
}

Result<std::vector<Step>> JobStore::submit_all(const std::vector<NewStep>& steps, int64_t now_ms) {
  if (steps.empty()) return invalid_argument("no step to submit");
  std::vector<std::string> actions;
  for (const NewStep& s : steps) {
    KILN_RETURN_IF_ERROR(validate_new_step(s));
    // Replace, not throw, on invalid UTF-8: nothing may throw across this
    // library's boundary, and a parsed request body is valid UTF-8 anyway.
    actions.push_back(s.action.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }

  MutexLock lock(&impl_->mu);
  internal::Database& db = *impl_->db;
  KILN_ASSIGN_OR_RETURN(Transaction txn, Transaction::begin(db));

  std::vector<std::string> ids;
  std::map<std::string, int64_t> pending;  // by environment, as this batch grows it
  for (size_t k = 0; k < steps.size(); ++k) {
    const NewStep& s = steps[k];
    // In the transaction: two submits at once cannot both take the last place.
    if (s.max_pending > 0) {
      auto it = pending.find(s.environment);
      if (it == pending.end()) {
        KILN_ASSIGN_OR_RETURN(int64_t n, impl_->count_steps(s.environment, StepState::kPending));
        it = pending.emplace(s.environment, n).first;
      }
      if (it->second >= s.max_pending) return pending_quota_error(s.environment, it->second);
    }
    ++pending[s.environment];
    // 36^13 ids make a collision all but impossible; checking costs one
    // indexed lookup, and inside the transaction nobody can take the id
    // between the check and the insert.
    std::string id;
    for (;;) {
      KILN_ASSIGN_OR_RETURN(id, internal::new_step_id());
      KILN_ASSIGN_OR_RETURN(Query q, db.query("SELECT 1 FROM steps WHERE id = ?1"));
      q.bind(1, id);
      KILN_ASSIGN_OR_RETURN(bool taken, q.next());
      if (!taken && std::find(ids.begin(), ids.end(), id) == ids.end()) break;
    }
    {
      KILN_ASSIGN_OR_RETURN(Query q, db.query(R"sql(
INSERT INTO steps (id, environment, name, state, action_on_failure, action, layer,
                   tiles_total, created_ms)
VALUES (?1, ?2, ?3, 'PENDING', ?4, ?5, ?6, ?7, ?8))sql"));
      q.bind(1, id).bind(2, s.environment).bind(3, s.name).bind(4, s.action_on_failure);
      q.bind(5, actions[k]).bind(6, s.layer).bind(7, s.tiles_total).bind(8, now_ms);
      KILN_RETURN_IF_ERROR(q.run());
    }
    // Partition tasks 0..n-1, then the commit task (index -1).
    for (int64_t i = 0; i <= s.partitions; ++i) {
      KILN_ASSIGN_OR_RETURN(Query q, db.query(R"sql(
INSERT INTO tasks (step_id, kind, idx, state, max_attempts, queued_ms)
VALUES (?1, ?2, ?3, 'PENDING', ?4, ?5))sql"));
      const int64_t index = i < s.partitions ? i : -1;
      q.bind(1, id).bind(2, std::string(index < 0 ? "commit" : "partition")).bind(3, index);
      q.bind(4, s.max_attempts).bind(5, now_ms);
      KILN_RETURN_IF_ERROR(q.run());
    }
    ids.push_back(std::move(id));
  }
  KILN_RETURN_IF_ERROR(txn.commit());

  std::vector<Step> out;
  for (const std::string& id : ids) {
    KILN_ASSIGN_OR_RETURN(std::optional<Step> step, impl_->find_step(id));
    if (!step) return internal_error("step " + id + " vanished after it was submitted");
    out.push_back(std::move(*step));
  }
  return out;
}

Result<int64_t> JobStore::count_steps(const std::string& environment, StepState state) {
  MutexLock lock(&impl_->mu);
  return impl_->count_steps(environment, state);
}

Result<Step> JobStore::get(const std::string& environment, const std::string& id) {
  MutexLock lock(&impl_->mu);
  KILN_ASSIGN_OR_RETURN(ReadSnapshot snapshot, ReadSnapshot::begin(*impl_->db));
  return impl_->step_in(environment, id);
}

Result<ListPage> JobStore::list(const ListQuery& q) {
  if (q.environment.empty()) return invalid_argument("listing steps needs an environment");
  if (q.limit < 1 || q.limit > 1000) {
    return invalid_argument("limit must be between 1 and 1000, not " + std::to_string(q.limit));
  }
  // Pages continue after the step the marker names: an id of this
  // environment (random, its own), never the global seq, so a marker tells
  // nothing about how many steps other environments submitted.
  if (q.marker.size() > 64) return invalid_argument("marker is not one a previous list returned");

  // Filters travel as JSON arrays so one cached statement serves every
  // combination; NULL means "no filter".
  nlohmann::json states = nlohmann::json::array();
  for (StepState s : q.states) states.push_back(step_state_name(s));
  nlohmann::json ids = nlohmann::json::array();
  for (const std::string& id : q.ids) ids.push_back(id);

  MutexLock lock(&impl_->mu);
  KILN_ASSIGN_OR_RETURN(ReadSnapshot snapshot, ReadSnapshot::begin(*impl_->db));
  int64_t before = std::numeric_limits<int64_t>::max();
  if (!q.marker.empty()) {
    KILN_ASSIGN_OR_RETURN(
        Query m, impl_->db->query("SELECT seq FROM steps WHERE environment = ?1 AND id = ?2"));
    m.bind(1, q.environment).bind(2, q.marker);
    KILN_ASSIGN_OR_RETURN(bool found, m.next());
    if (!found) return invalid_argument("marker is not one a previous list returned");
    before = m.int64(0);
  }
  KILN_ASSIGN_OR_RETURN(Query query, impl_->db->query(select_steps(R"sql(
 WHERE environment = ?1 AND seq < ?2
   AND (?3 IS NULL OR state IN (SELECT value FROM json_each(?3)))
   AND (?4 IS NULL OR id IN (SELECT value FROM json_each(?4)))
 ORDER BY seq DESC LIMIT ?5)sql")));
  query.bind(1, q.environment).bind(2, before);
  if (q.states.empty()) {
    query.bind_null(3);
  } else {
    query.bind(3, states.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  if (q.ids.empty()) {
    query.bind_null(4);
  } else {
    query.bind(4, ids.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  // One row more than asked tells whether another page follows.
  query.bind(5, static_cast<int64_t>(q.limit) + 1);
  KILN_ASSIGN_OR_RETURN(std::vector<Step> steps, impl_->read_steps(query, q.with_action));

  ListPage page;
  if (steps.size() > static_cast<size_t>(q.limit)) {
    steps.resize(static_cast<size_t>(q.limit));
    page.next_marker = steps.back().id;
  }
  page.steps = std::move(steps);
  return page;
}

Result<Step> JobStore::request_cancel(const std::string& environment, const std::string& id,
                                      const std::string& signal, int64_t now_ms) {
  const std::string sig = signal.empty() ? "TERM" : signal;
  if (sig != "TERM" && sig != "KILL") {
    return invalid_argument("signal must be TERM or KILL, not '" + signal + "'");
  }
  MutexLock lock(&impl_->mu);
  internal::Database& db = *impl_->db;
  KILN_ASSIGN_OR_RETURN(Transaction txn, Transaction::begin(db));
  KILN_ASSIGN_OR_RETURN(Step step, impl_->step_in(environment, id));
  if (step.state != StepState::kPending && step.state != StepState::kRunning) return step;

  {
    KILN_ASSIGN_OR_RETURN(Query q, db.query("UPDATE steps SET cancel_signal = ?2 WHERE id = ?1"));
    q.bind(1, id).bind(2, sig);
    KILN_RETURN_IF_ERROR(q.run());
  }
  if (step.state == StepState::kPending) {
    KILN_RETURN_IF_ERROR(impl_->end_step(id, StepState::kCancelled, nullptr, now_ms));
  } else {
    // RUNNING: what is queued will never run; what is leased stops when its
    // worker sees the signal, and finish_cancellations() ends the step.
    {
      KILN_ASSIGN_OR_RETURN(Query q,
                            db.query("UPDATE steps SET state = 'CANCEL_PENDING' WHERE id = ?1"));
      q.bind(1, id);
      KILN_RETURN_IF_ERROR(q.run());
    }
    KILN_ASSIGN_OR_RETURN(Query q, db.query("UPDATE tasks SET state = 'CANCELLED' "
                                            "WHERE step_id = ?1 AND state = 'PENDING'"));
    q.bind(1, id);
    KILN_RETURN_IF_ERROR(q.run());
  }
  KILN_RETURN_IF_ERROR(txn.commit());
  return impl_->step_in(environment, id);
}

// --- stats -------------------------------------------------------------------

Result<StoreStats> JobStore::stats() {
  MutexLock lock(&impl_->mu);
  internal::Database& db = *impl_->db;
  StoreStats out;
  // One read transaction, so the figures are one consistent snapshot.
  KILN_ASSIGN_OR_RETURN(ReadSnapshot snapshot, ReadSnapshot::begin(db));
  {
    KILN_ASSIGN_OR_RETURN(Query q,
                          db.query("SELECT environment, state, COUNT(*) FROM steps GROUP BY 1, 2"));
    for (;;) {
      KILN_ASSIGN_OR_RETURN(bool row, q.next());
      if (!row) break;
      out.steps_by_env_state[q.text(0)][q.text(1)] = q.int64(2);
    }
  }
  {
    // All PENDING tasks, including those of steps not started yet: the
    // backlog. queued_tasks_by_env below is what workers could take now.
    KILN_ASSIGN_OR_RETURN(Query q, db.query("SELECT state, COUNT(*) FROM tasks "
                                            "WHERE state IN ('PENDING', 'LEASED') GROUP BY 1"));
    for (;;) {
      KILN_ASSIGN_OR_RETURN(bool row, q.next());
      if (!row) break;
      (q.text(0) == "PENDING" ? out.tasks_pending : out.tasks_leased) = q.int64(1);
    }
  }
  {
    KILN_ASSIGN_OR_RETURN(Query q, db.query(R"sql(
SELECT s.environment, COUNT(*) FROM tasks t JOIN steps s ON s.id = t.step_id
 WHERE t.state = 'PENDING' AND s.state = 'RUNNING' GROUP BY 1)sql"));
    for (;;) {
      KILN_ASSIGN_OR_RETURN(bool row, q.next());
      if (!row) break;
      out.queued_tasks_by_env[q.text(0)] = q.int64(1);
    }
  }
  {
    KILN_ASSIGN_OR_RETURN(Query q, db.query("SELECT name, value FROM counters"));
    for (;;) {
      KILN_ASSIGN_OR_RETURN(bool row, q.next());
      if (!row) break;
      if (q.text(0) == "lease_expiries") out.lease_expiries = q.int64(1);
      if (q.text(0) == "task_retries") out.task_retries = q.int64(1);
    }
  }
  return out;
}

Status JobStore::add_cost(const std::string& step_id, double slot_seconds, double cost) {
  MutexLock lock(&impl_->mu);
  KILN_ASSIGN_OR_RETURN(Query q,
                        impl_->db->query("UPDATE steps SET slot_seconds = slot_seconds + ?2, "
                                         "cost = cost + ?3 WHERE id = ?1"));
  q.bind(1, step_id).bind_real(2, slot_seconds).bind_real(3, cost);
  KILN_RETURN_IF_ERROR(q.run());
  if (q.changes() == 0) return not_found("step '" + step_id + "' does not exist");
  return Status::ok();
}

Result<Load> JobStore::load(int64_t now_ms) {
  MutexLock lock(&impl_->mu);
  internal::Database& db = *impl_->db;
  KILN_ASSIGN_OR_RETURN(ReadSnapshot snapshot, ReadSnapshot::begin(db));
  Load out;
  {
    // A commit task waiting for its partitions counts as pending: it is
    // work the cluster will need a slot for, and a scale-in now would have
    // to scale out again a moment later.
    KILN_ASSIGN_OR_RETURN(Query q, db.query(R"sql(
SELECT COUNT(*), COALESCE(MIN(MAX(t.queued_ms, t.not_before_ms)), 0)
  FROM tasks t JOIN steps s ON s.id = t.step_id
 WHERE t.state = 'PENDING' AND s.state = 'RUNNING' AND t.not_before_ms <= ?1)sql"));
    q.bind(1, now_ms);
    KILN_ASSIGN_OR_RETURN(bool row, q.next());
    if (row) {
      out.pending_tasks = q.int64(0);
      if (out.pending_tasks > 0)
        out.oldest_pending_wait_ms = std::max<int64_t>(0, now_ms - q.int64(1));
    }
  }
  {
    KILN_ASSIGN_OR_RETURN(Query q, db.query("SELECT COUNT(*) FROM tasks WHERE state = 'LEASED'"));
    KILN_ASSIGN_OR_RETURN(bool row, q.next());
    if (row) out.leased_tasks = q.int64(0);
  }
  {
    KILN_ASSIGN_OR_RETURN(Query q, db.query("SELECT COUNT(*) FROM steps WHERE state = 'PENDING'"));
    KILN_ASSIGN_OR_RETURN(bool row, q.next());
    if (row) out.backlog_steps = q.int64(0);
  }
  return out;
}

}  // namespace kiln::store
