#include "cluster/scheduler.h"

#include <filesystem>

#include "common/log.h"
#include "config/limits.h"

namespace kiln::cluster {

namespace fs = std::filesystem;

Scheduler::Scheduler(SchedulerOptions options,
                     const std::vector<config::EnvironmentConfig>& environments,
                     store::JobStore* store, StepLog* log, Policies* policies, StepEvents* events,
                     Lifecycle* lifecycle, const Clock& clock)
    : options_(options),
      environments_(environments),
      store_(store),
      log_(log),
      policies_(policies),
      events_(events),
      lifecycle_(lifecycle),
      clock_(clock) {}

Scheduler::~Scheduler() { stop(); }

Status Scheduler::recover(bool workers_outlive_server) {
  const int64_t now = clock_.now_ms();
  std::vector<std::string> known;
  for (const auto& e : environments_) known.push_back(e.name);
  KILN_ASSIGN_OR_RETURN(int64_t interrupted, store_->interrupt_unknown_environments(known, now));
  if (interrupted) {
    log::warn("interrupted " + std::to_string(interrupted) +
              " step(s) of environments no longer configured");
  }
  if (workers_outlive_server) {
    // Batch jobs outlive the server: their tasks keep running and report
    // in once it is back. Their leases get time for that instead of
    // lapsing over the restart.
    KILN_ASSIGN_OR_RETURN(int64_t held,
                          store_->extend_leases(now + 2 * options_.lease_seconds * 1000LL));
    if (held > 0) {
      log::info("re-attaching: " + std::to_string(held) +
                " task(s) leased by batch jobs of the previous run keep their leases");
    }
  } else {
    // Local workers die with the server that started them
    // (PR_SET_PDEATHSIG): whatever they held goes back to the queue now,
    // not at lease expiry.
    KILN_ASSIGN_OR_RETURN(auto old_workers, store_->workers(/*alive_only=*/true));
    for (const auto& w : old_workers) KILN_RETURN_IF_ERROR(store_->worker_gone(w.id, now));
    if (!old_workers.empty()) {
      log::info("recovered: " + std::to_string(old_workers.size()) +
                " worker(s) of the previous run gone, their tasks requeued");
    }
  }
  return Status::ok();
}

void Scheduler::add_tick(TickHook hook, bool while_stopping) {
  hooks_.push_back({std::move(hook), while_stopping});
}

void Scheduler::clean_staging(const store::Step& step) const {
  const config::EnvironmentConfig* env = nullptr;
  for (const auto& e : environments_) {
    if (e.name == step.environment) env = &e;
  }
  if (!env || step.layer.empty()) return;
  const fs::path staging =
      fs::path(env->catalog) / step.environment / step.layer / ".staging" / step.id;
  std::error_code ec;
  fs::remove_all(staging, ec);
  if (ec) log::warn("cannot remove " + staging.string() + ": " + ec.message());
  // The catalog's record of who owns that staging directory goes with it.
  const fs::path owner = staging.parent_path() / ("." + step.id + ".owner");
  fs::remove(owner, ec);
  if (ec) log::warn("cannot remove " + owner.string() + ": " + ec.message());
}

void Scheduler::observe_start_latency(const std::vector<std::string>& started) {
  // Latency from submission to RUNNING, per step.
  if (!options_.on_start_latency) return;
  for (const auto& e : environments_) {
    store::ListQuery q;
    q.environment = e.name;
    q.ids = started;
    q.limit = config::kMaxListLimit;
    q.with_action = false;
    auto page = store_->list(q);
    if (!page.is_ok()) {
      log::warn("start latency of environment " + e.name + ": " + page.status().message());
      continue;
    }
    for (const auto& st : page->steps) {
      options_.on_start_latency(static_cast<double>(st.started_ms - st.created_ms) / 1000.0);
    }
  }
}

void Scheduler::pass() {
  const int64_t now = clock_.now_ms();
  bool changed = false;
  std::vector<store::Task> lapsed;
  auto expired = store_->expire_leases(now, &lapsed);
  if (!expired.is_ok()) {
    log::error("scheduler: expiring leases: " + expired.status().message());
  } else if (*expired > 0) {
    log::warn(std::to_string(*expired) + " lease(s) lapsed; tasks requeued");
    for (const store::Task& t : lapsed) {
      log_->append(t.step_id, StepLog::task_name(t) + " back in the queue: its lease lapsed (" +
                                  t.worker_id + " stopped reporting)");
    }
    changed = true;
  }
  const bool stopping = lifecycle_->stopping();
  if (!stopping) {
    auto started = store_->start_steps(policies_->snapshot(), now);
    if (!started.is_ok()) {
      log::error("scheduler: starting steps: " + started.status().message());
    } else if (!started->empty()) {
      changed = true;
      for (const auto& id : *started) log_->append(id, "step RUNNING");
      observe_start_latency(*started);
    }
  }
  auto cancelled = store_->finish_cancellations(now);
  if (!cancelled.is_ok()) {
    log::error("scheduler: finishing cancellations: " + cancelled.status().message());
  } else {
    for (const auto& st : *cancelled) {
      changed = true;
      log_->append(st.id, "step CANCELLED");
    }
  }
  auto to_clean = store_->steps_to_clean();
  if (!to_clean.is_ok()) {
    log::error("scheduler: finding staging to clean: " + to_clean.status().message());
  } else {
    for (const auto& st : *to_clean) {
      clean_staging(st);
      Status s = store_->mark_cleaned(st.id);
      if (!s.is_ok()) log::error("scheduler: step " + st.id + ": mark_cleaned: " + s.message());
    }
  }
  if (changed) events_->notify();
  for (const Hook& h : hooks_) {
    if (!stopping || h.while_stopping) h.fn(clock_.now_ms());
  }
  passes_++;
}

void Scheduler::loop() {
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (stopped_) return;
    }
    pass();
    MutexLock lock(&mu_);
    const int64_t next = clock_.now_ms() + options_.period_ms;
    while (!kicked_ && !stopped_ && wake_.wait_until(&mu_, clock_, next)) {
    }
    kicked_ = false;
  }
}

void Scheduler::start() {
  thread_ = std::thread([this] { loop(); });
}

void Scheduler::kick() {
  {
    MutexLock lock(&mu_);
    kicked_ = true;
  }
  wake_.notify_all();
}

void Scheduler::stop() {
  {
    MutexLock lock(&mu_);
    stopped_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int64_t Scheduler::wait_for_leases(int64_t deadline_ms) {
  uint64_t seen = events_->version();
  for (;;) {
    auto st = store_->stats();
    if (!st.is_ok()) {
      log::error("shutdown: cannot count leased tasks: " + st.status().message());
      return -1;
    }
    if (st->tasks_leased == 0 || clock_.now_ms() >= deadline_ms) return st->tasks_leased;
    seen = events_->wait_for_change(seen, deadline_ms);
  }
}

}  // namespace kiln::cluster
