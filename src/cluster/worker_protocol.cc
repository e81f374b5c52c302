#include "cluster/worker_protocol.h"

#include <algorithm>

#include "common/log.h"

namespace kiln::cluster {

using json = nlohmann::json;

WorkerProtocol::WorkerProtocol(WorkerProtocolOptions options, store::JobStore* store,
                               ElasticControl* elastic, StepLog* log, Policies* policies,
                               StepEvents* events, Lifecycle* lifecycle, const Clock& clock)
    : options_(options),
      store_(store),
      elastic_(elastic),
      log_(log),
      policies_(policies),
      events_(events),
      lifecycle_(lifecycle),
      clock_(clock) {}

Result<Registration> WorkerProtocol::register_worker(int64_t pid, const std::string& node,
                                                     int slots,
                                                     const std::string& registration_key) {
  if (slots < 1) return invalid_argument("slots: must be at least 1");
  const int64_t now = clock_.now_ms();
  bool again = false;
  KILN_ASSIGN_OR_RETURN(store::WorkerInfo w,
                        store_->register_worker(pid, node, slots, now, registration_key, &again));
  elastic_->worker_registered(w.id, node, now);
  {
    MutexLock lock(&mu_);
    worker_by_pid_[pid] = w.id;
  }
  log::info("worker " + w.id +
            (again ? " registered again (a retry; the same worker)" : " registered") + ": pid " +
            std::to_string(pid) + ", " + std::to_string(slots) + " slot(s)");
  return Registration{w.id, options_.lease_seconds, options_.heartbeat_seconds,
                      options_.cancel_grace_seconds};
}

LeasedTask WorkerProtocol::leased_task(const store::Lease& l, const std::string& worker,
                                       int64_t now) {
  elastic_->leased(l.task.id, l.task.attempt, worker, now);
  const bool commit = l.task.kind == store::TaskKind::kCommit;
  LeasedTask t;
  t.task_id = l.task.id;
  t.attempt = l.task.attempt;
  t.step_id = l.step.id;
  t.spec = {{"step_id", l.step.id},
            {"task_id", l.task.id},
            {"attempt", l.task.attempt},
            {"kind", commit ? "commit" : "partition"},
            {"index", l.task.index},
            {"definition", l.step.action.value("ingest", json::object())},
            {"plan", l.step.action.value("plan", json{{"threads", 1}})}};
  t.log_path = log_->path(l.step.id);
  if (!options_.sandbox.is_null()) {
    t.sandbox = options_.sandbox;
    auto roots = options_.source_roots.find(l.step.environment);
    t.sandbox["source_roots"] =
        roots == options_.source_roots.end() ? std::vector<std::string>{} : roots->second;
  }
  log_->append(l.step.id, StepLog::task_name(l.task) + " leased by " + worker);
  return t;
}

Result<std::vector<LeasedTask>> WorkerProtocol::lease(const std::string& worker_id,
                                                      int free_slots) {
  const int64_t now = clock_.now_ms();
  std::vector<LeasedTask> tasks;
  // A draining node (scale-in, spot notice) finishes what it runs and
  // takes nothing new.
  if (lifecycle_->stopping() || free_slots <= 0 || !elastic_->may_lease(worker_id)) {
    KILN_RETURN_IF_ERROR(store_->touch_worker(worker_id, now));
    return tasks;
  }
  // store_->lease checks that the worker is alive and marks it seen in its
  // own transaction: an idle worker's poll (twice a second, from each of
  // hundreds of workers) costs the store one write, not two.
  KILN_ASSIGN_OR_RETURN(auto leases, store_->lease(worker_id, free_slots, policies_->snapshot(),
                                                   options_.starvation_seconds * 1000LL,
                                                   options_.lease_seconds * 1000LL, now));
  for (const auto& l : leases) tasks.push_back(leased_task(l, worker_id, now));
  return tasks;
}

Result<HeartbeatReply> WorkerProtocol::heartbeat(
    const std::string& worker_id, const std::vector<store::JobStore::Heartbeat>& beats) {
  const int64_t now = clock_.now_ms();
  KILN_RETURN_IF_ERROR(store_->touch_worker(worker_id, now));
  HeartbeatReply r;
  KILN_ASSIGN_OR_RETURN(r.unknown,
                        store_->heartbeat(worker_id, beats, options_.lease_seconds * 1000LL, now));
  KILN_ASSIGN_OR_RETURN(r.cancel, store_->cancellations(worker_id));
  return r;
}

Result<bool> WorkerProtocol::complete(const Completion& c) {
  const int64_t now = clock_.now_ms();
  KILN_ASSIGN_OR_RETURN(bool taken, store_->complete(c.worker_id, c.task_id, c.attempt, c.ok,
                                                     c.result, c.error, now));
  // The attempt ran on a node's slot: its step pays for it, whatever the
  // outcome (a failed attempt used the machine too).
  const ElasticControl::Charge charge = elastic_->charge(c.task_id, c.attempt, now);
  if (taken && !c.step_id.empty() && charge.slot_seconds > 0) {
    Status st = store_->add_cost(c.step_id, charge.slot_seconds, charge.cost);
    if (!st.is_ok()) log::warn("cost of task " + std::to_string(c.task_id) + ": " + st.message());
  }
  if (!taken) return false;
  if (c.ok && c.result.contains("version")) {
    const json& tiles = c.result.contains("tiles") ? c.result["tiles"] : json(0);
    if (tiles.is_number_integer()) tiles_written_ += tiles.get<int64_t>();
  }
  if (!c.step_id.empty()) {
    log_->append(c.step_id,
                 "task " + std::to_string(c.task_id) + " attempt " + std::to_string(c.attempt) +
                     (c.ok ? " done" : " failed: " + c.error.reason + ": " + c.error.message));
  }
  events_->notify();
  return true;
}

Result<ClaimReply> WorkerProtocol::claim(const std::string& worker_id, const std::string& step_id,
                                         int64_t index) {
  ClaimReply r;
  if (lifecycle_->stopping()) {
    r.outcome = ClaimReply::Outcome::kWait;
    r.retry_after_ms = 1000;
    r.why = "the server is shutting down";
    return r;
  }
  const int64_t now = clock_.now_ms();
  KILN_ASSIGN_OR_RETURN(store::Claim c, store_->claim(worker_id, step_id, index,
                                                      options_.lease_seconds * 1000LL, now));
  r.outcome = c.outcome;
  r.why = c.why;
  if (c.outcome == ClaimReply::Outcome::kLeased) r.task = leased_task(*c.lease, worker_id, now);
  if (c.outcome == ClaimReply::Outcome::kWait) {
    r.retry_after_ms = std::max<int64_t>(c.retry_at_ms - now, 100);
  }
  return r;
}

Status WorkerProtocol::leave(const std::string& worker_id) {
  std::vector<store::Task> released;
  KILN_RETURN_IF_ERROR(store_->worker_gone(worker_id, clock_.now_ms(), &released));
  log_->requeued(released, "worker " + worker_id + " left");
  elastic_->worker_left(worker_id);
  events_->notify();
  return Status::ok();
}

void WorkerProtocol::worker_exited(int64_t pid) {
  std::string id;
  {
    MutexLock lock(&mu_);
    auto it = worker_by_pid_.find(pid);
    if (it == worker_by_pid_.end()) return;
    id = it->second;
    worker_by_pid_.erase(it);
  }
  log::warn("worker " + id + " (pid " + std::to_string(pid) + ") exited; its tasks are requeued");
  std::vector<store::Task> released;
  Status s = store_->worker_gone(id, clock_.now_ms(), &released);
  if (!s.is_ok()) log::error("worker " + id + ": worker_gone: " + s.message());
  log_->requeued(released, "worker " + id + " (pid " + std::to_string(pid) + ") exited");
  // A restarted worker registers under a new id: this one is forgotten.
  elastic_->worker_left(id);
  events_->notify();
}

}  // namespace kiln::cluster
