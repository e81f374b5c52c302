// JobStore's worker registry: registration, liveness, and what happens to
// the leases of a worker that is gone.
#include "store/ids.h"
#include "store/store_impl.h"

namespace kiln::store {

using internal::Query;
using internal::Transaction;

namespace {

// A worker's identity from a row that starts with
// id, pid, host, slots, registered_ms.
WorkerInfo identity_of(const Query& q) {
  WorkerInfo w;
  w.id = q.text(0);
  w.pid = q.int64(1);
  w.host = q.text(2);
  w.slots = static_cast<int>(q.int64(3));
  w.registered_ms = q.int64(4);
  return w;
}

}  // namespace

Result<WorkerInfo> JobStore::register_worker(int64_t pid, const std::string& host, int slots,
                                             int64_t now_ms, const std::string& registration_key,
                                             bool* again) {
  if (slots < 1)
    return invalid_argument("a worker needs at least 1 slot, not " + std::to_string(slots));
  if (again) *again = false;
  MutexLock lock(&impl_->mu);
  internal::Database& db = *impl_->db;
  KILN_ASSIGN_OR_RETURN(Transaction txn, Transaction::begin(db));
  if (!registration_key.empty()) {
    // The same process asking again: under the store's lock, so two
    // attempts in flight at once still make one worker.
    KILN_ASSIGN_OR_RETURN(Query q, db.query(R"sql(
SELECT id, pid, host, slots, registered_ms FROM workers
 WHERE registration_key = ?1 AND alive = 1)sql"));
    q.bind(1, registration_key);
    KILN_ASSIGN_OR_RETURN(bool found, q.next());
    if (found) {
      WorkerInfo w = identity_of(q);
      w.last_seen_ms = now_ms;
      if (w.pid != pid || w.host != host || w.slots != slots) {
        return invalid_argument("registration_key: already registered by worker " + w.id +
                                " (pid " + std::to_string(w.pid) + ", host '" + w.host + "', " +
                                std::to_string(w.slots) + " slots); a key is one process's own");
      }
      KILN_ASSIGN_OR_RETURN(Query t,
                            db.query("UPDATE workers SET last_seen_ms = ?2 WHERE id = ?1"));
      t.bind(1, w.id).bind(2, now_ms);
      KILN_RETURN_IF_ERROR(t.run());
      KILN_RETURN_IF_ERROR(txn.commit());
      if (again) *again = true;
      return w;
    }
  }
  std::string id;
  for (;;) {  // see submit(): a collision is all but impossible, but cheap to rule out
    KILN_ASSIGN_OR_RETURN(id, internal::new_worker_id());
    KILN_ASSIGN_OR_RETURN(Query q, db.query("SELECT 1 FROM workers WHERE id = ?1"));
    q.bind(1, id);
    KILN_ASSIGN_OR_RETURN(bool taken, q.next());
    if (!taken) break;
  }
  {
    KILN_ASSIGN_OR_RETURN(Query q, db.query(R"sql(
INSERT INTO workers (id, pid, host, slots, registered_ms, last_seen_ms, alive, registration_key)
VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1, ?6))sql"));
    q.bind(1, id).bind(2, pid).bind(3, host).bind(4, slots).bind(5, now_ms).bind(6,
                                                                                 registration_key);
    KILN_RETURN_IF_ERROR(q.run());
  }
  KILN_RETURN_IF_ERROR(txn.commit());
  WorkerInfo w;
  w.id = id;
  w.pid = pid;
  w.host = host;
  w.slots = slots;
  w.registered_ms = w.last_seen_ms = now_ms;
  return w;
}

Status JobStore::touch_worker(const std::string& worker_id, int64_t now_ms) {
  MutexLock lock(&impl_->mu);
  KILN_ASSIGN_OR_RETURN(
      Query q,
      impl_->db->query("UPDATE workers SET last_seen_ms = ?2 WHERE id = ?1 AND alive = 1"));
  q.bind(1, worker_id).bind(2, now_ms);
  KILN_RETURN_IF_ERROR(q.run());
  // A worker declared gone has lost its leases; it must register again
  // rather than carry on as if nothing happened.
  if (q.changes() == 0) return not_found("worker '" + worker_id + "' is not registered or gone");
  return Status::ok();
}

Status JobStore::worker_gone(const std::string& worker_id, int64_t now_ms,
                             std::vector<Task>* released) {
  MutexLock lock(&impl_->mu);
  internal::Database& db = *impl_->db;
  KILN_ASSIGN_OR_RETURN(Transaction txn, Transaction::begin(db));
  {
    KILN_ASSIGN_OR_RETURN(Query q, db.query("UPDATE workers SET alive = 0 WHERE id = ?1"));
    q.bind(1, worker_id);
    KILN_RETURN_IF_ERROR(q.run());
    if (q.changes() == 0) return not_found("worker '" + worker_id + "' is not registered");
  }
  std::vector<Task> held;
  {
    KILN_ASSIGN_OR_RETURN(Query q,
                          db.query(select_tasks("WHERE worker_id = ?1 AND state = 'LEASED'")));
    q.bind(1, worker_id);
    KILN_ASSIGN_OR_RETURN(held, impl_->read_tasks(q));
  }
  // Not counted as lease expiries: nothing lapsed, the executor saw the
  // process end and there is no point waiting out the lease.
  for (const Task& t : held) KILN_RETURN_IF_ERROR(impl_->release_lease(t, now_ms));
  KILN_RETURN_IF_ERROR(txn.commit());
  if (released) *released = std::move(held);
  return Status::ok();
}

Result<std::vector<WorkerInfo>> JobStore::workers(bool alive_only) {
  MutexLock lock(&impl_->mu);
  KILN_ASSIGN_OR_RETURN(Query q, impl_->db->query(R"sql(
SELECT w.id, w.pid, w.host, w.slots, w.registered_ms, w.last_seen_ms, w.alive,
       (SELECT COUNT(*) FROM tasks t WHERE t.worker_id = w.id AND t.state = 'LEASED')
  FROM workers w
 WHERE ?1 = 0 OR w.alive = 1
 ORDER BY w.registered_ms, w.id)sql"));
  q.bind(1, alive_only ? 1 : 0);
  std::vector<WorkerInfo> out;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, q.next());
    if (!row) break;
    WorkerInfo w = identity_of(q);
    w.last_seen_ms = q.int64(5);
    w.alive = q.int64(6) != 0;
    w.busy = static_cast<int>(q.int64(7));
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace kiln::store
