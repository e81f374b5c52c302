// Every step transition of docs/cluster.md ("Steps"), driven through the
// core's own entry points (StepService, Scheduler, WorkerProtocol) on a
// ManualClock:
//   PENDING --start--> RUNNING --commit task done--> COMPLETED
//      |                  |--task out of attempts--> FAILED
//      |                  '--cancel--> CANCEL_PENDING --no live lease--> CANCELLED
//      '--cancel--> CANCELLED
//   PENDING/RUNNING of an environment no longer configured --> INTERRUPTED
//   FAILED with CANCEL_AND_WAIT: the environment's PENDING steps --> CANCELLED
#include "cluster/test_cluster.h"

namespace kiln::cluster {
namespace {

using store::StepState;
using store::TaskState;

// --- PENDING -> RUNNING ---------------------------------------------------------

TEST_F(ClusterTest, PassStartsPendingStepsInOrderUpToTheConcurrency) {
  store::Step a = submit(staging(), "a"), b = submit(staging(), "b"), c = submit(staging(), "c");
  for (const auto& s : {a, b, c}) EXPECT_EQ(s.state, StepState::kPending);
  EXPECT_TRUE(contains(log_of(a.id), "kiln-serve: step 'a' submitted in environment staging"));

  clock_.advance(2000);
  scheduler_->pass();
  // staging's concurrency is 1: the oldest starts, the others wait.
  store::Step started = get(staging(), a.id);
  EXPECT_EQ(started.state, StepState::kRunning);
  EXPECT_EQ(started.started_ms, clock_.now_ms());
  EXPECT_EQ(state(staging(), b.id), StepState::kPending);
  EXPECT_EQ(state(staging(), c.id), StepState::kPending);
  EXPECT_TRUE(contains(log_of(a.id), "kiln-serve: step RUNNING"));
  EXPECT_FALSE(contains(log_of(b.id), "step RUNNING"));
  EXPECT_EQ(start_latencies_, std::vector<double>{2.0});

  scheduler_->pass();
  EXPECT_EQ(state(staging(), b.id), StepState::kPending) << "a second pass must not exceed 1";

  // Raised at run time: the next pass starts the rest, in submission order.
  ASSERT_TRUE(steps_->set_concurrency(staging(), 3).is_ok());
  auto info = steps_->cluster(staging());
  ASSERT_TRUE(info.is_ok());
  EXPECT_EQ(info->concurrency, 3);
  scheduler_->pass();
  EXPECT_EQ(state(staging(), b.id), StepState::kRunning);
  EXPECT_EQ(state(staging(), c.id), StepState::kRunning);

  // Lowered again: running steps are left alone, a new one waits for room.
  ASSERT_TRUE(steps_->set_concurrency(staging(), 2).is_ok());
  store::Step d = submit(staging(), "d");
  scheduler_->pass();
  EXPECT_EQ(state(staging(), a.id), StepState::kRunning);
  EXPECT_EQ(state(staging(), c.id), StepState::kRunning);
  EXPECT_EQ(state(staging(), d.id), StepState::kPending);
}

TEST_F(ClusterTest, EachEnvironmentHasItsOwnConcurrency) {
  store::Step s1 = submit(staging(), "s1"), s2 = submit(staging(), "s2");
  store::Step p1 = submit(production(), "p1");
  scheduler_->pass();
  EXPECT_EQ(state(staging(), s1.id), StepState::kRunning);
  EXPECT_EQ(state(staging(), s2.id), StepState::kPending);
  // staging being full does not hold production back.
  EXPECT_EQ(state(production(), p1.id), StepState::kRunning);
}

TEST_F(ClusterTest, PendingStepsStayPendingOnceShutdownHasBegun) {
  store::Step s = submit(staging());
  ASSERT_TRUE(lifecycle_.begin_stopping());
  scheduler_->pass();
  EXPECT_EQ(state(staging(), s.id), StepState::kPending);
}

// --- RUNNING -> COMPLETED -------------------------------------------------------

TEST_F(ClusterTest, StepCompletesWhenItsPartitionsThenItsCommitTaskAreDone) {
  store::Step s = submit(staging(), "dem");
  scheduler_->pass();
  std::string w = register_worker("core-1", 4);

  // Four free slots, but only the two partitions are runnable: the commit
  // task waits for them.
  std::vector<LeasedTask> parts = lease(w, 4);
  ASSERT_EQ(parts.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(parts[i].step_id, s.id);
    EXPECT_EQ(parts[i].attempt, 1);
    EXPECT_EQ(parts[i].spec["kind"], "partition");
    EXPECT_EQ(parts[i].spec["index"], i);
    EXPECT_EQ(parts[i].spec["definition"]["output"]["catalog"], staging().catalog);
    EXPECT_EQ(parts[i].log_path, log_->path(s.id));
  }
  EXPECT_TRUE(contains(log_of(s.id), "partition task 0 attempt 1 leased by " + w));

  EXPECT_TRUE(complete_ok(w, parts[0], {{"tiles_done", 120}}));
  EXPECT_TRUE(lease(w, 4).empty()) << "commit leased before every partition was done";
  EXPECT_EQ(state(staging(), s.id), StepState::kRunning);
  EXPECT_TRUE(complete_ok(w, parts[1], {{"tiles_done", 80}}));

  LeasedTask commit = lease_one(w);
  EXPECT_EQ(commit.spec["kind"], "commit");
  EXPECT_EQ(commit.spec["index"], -1);
  EXPECT_TRUE(contains(log_of(s.id), "commit task attempt 1 leased by " + w));
  EXPECT_EQ(state(staging(), s.id), StepState::kRunning);

  clock_.advance(500);
  EXPECT_TRUE(complete_ok(w, commit, {{"version", 1}, {"tiles", 200}, {"layer", "dem"}}));
  store::Step done = get(staging(), s.id);
  EXPECT_EQ(done.state, StepState::kCompleted);
  EXPECT_EQ(done.layer, "dem");
  EXPECT_EQ(done.version, 1);
  EXPECT_EQ(done.ended_ms, clock_.now_ms());
  EXPECT_FALSE(done.failure.has_value());
  EXPECT_EQ(done.progress.tasks_done, done.progress.tasks_total);
  EXPECT_EQ(done.progress.tiles_done, 200);
  EXPECT_EQ(workers_->tiles_written(), 200);
  EXPECT_TRUE(contains(log_of(s.id), "task " + std::to_string(commit.task_id) + " attempt 1 done"));
  EXPECT_TRUE(lease(w, 4).empty());
}

// --- RUNNING -> FAILED ----------------------------------------------------------

TEST_F(ClusterTest, TaskOutOfAttemptsFailsItsStepAfterBackingOffBetweenAttempts) {
  planner_.set_summary(1, 100);
  store::Step s = submit(staging(), "dem");
  scheduler_->pass();
  std::string w = register_worker();
  // Something was written to staging before the failure.
  stage_tile(staging(), s);

  // docs/cluster.md: the retry after attempt n waits min(30 s, 1 s * 2^(n-1)).
  const int64_t backoff_ms[] = {1000, 2000};
  for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
    LeasedTask t = lease_one(w);
    ASSERT_EQ(t.attempt, attempt);
    EXPECT_TRUE(complete_failed(w, t, "TASK_CRASHED", "ended (killed by SIGSEGV)"));
    if (attempt == kMaxAttempts) break;
    EXPECT_EQ(state(staging(), s.id), StepState::kRunning);
    EXPECT_EQ(task(s.id, 0).state, TaskState::kPending);
    EXPECT_TRUE(lease(w).empty()) << "leased at once after attempt " << attempt;
    clock_.advance(backoff_ms[attempt - 1] - 1);
    EXPECT_TRUE(lease(w).empty()) << "leased 1 ms before its backoff after attempt " << attempt;
    clock_.advance(1);
  }

  store::Step failed = get(staging(), s.id);
  EXPECT_EQ(failed.state, StepState::kFailed);
  ASSERT_TRUE(failed.failure.has_value());
  EXPECT_EQ(failed.failure->reason, "TASK_CRASHED");
  EXPECT_TRUE(contains(failed.failure->message, "attempt 3 of 3")) << failed.failure->message;
  EXPECT_TRUE(contains(failed.failure->message, "ended (killed by SIGSEGV)"));
  EXPECT_EQ(failed.ended_ms, clock_.now_ms());
  EXPECT_EQ(task(s.id, 0).state, TaskState::kFailed);
  EXPECT_EQ(task(s.id, -1).state, TaskState::kCancelled);
  EXPECT_EQ(stats().task_retries, 2);
  EXPECT_TRUE(contains(log_of(s.id), "attempt 3 failed: TASK_CRASHED: ended (killed by SIGSEGV)"));
  EXPECT_TRUE(lease(w).empty());

  // The next pass removes the staging: no partial output stays behind.
  scheduler_->pass();
  EXPECT_FALSE(std::filesystem::exists(staging_dir(staging(), failed)));
  EXPECT_FALSE(std::filesystem::exists(staging_owner(staging(), failed)));
}

TEST_F(ClusterTest, PermanentTaskFailureFailsItsStepWithoutARetry) {
  planner_.set_summary(2, 100);
  store::Step s = submit(staging(), "dem");
  scheduler_->pass();
  std::string w = register_worker();
  stage_tile(staging(), s);

  LeasedTask t = lease_one(w);
  ASSERT_EQ(t.attempt, 1);
  const std::string why =
      "source '/data/cut.tif': cannot decode bands 1 rows 0-511, columns 0-511: "
      "TIFFReadEncodedTile() failed at block 3";
  EXPECT_TRUE(complete_failed(w, t, "SOURCE_ERROR", why, /*permanent=*/true));

  store::Step failed = get(staging(), s.id);
  EXPECT_EQ(failed.state, StepState::kFailed);
  ASSERT_TRUE(failed.failure.has_value());
  EXPECT_EQ(failed.failure->reason, "SOURCE_ERROR");
  EXPECT_TRUE(contains(failed.failure->message, "attempt 1 of 3; not retried"))
      << failed.failure->message;
  EXPECT_TRUE(contains(failed.failure->message, "/data/cut.tif"));
  EXPECT_TRUE(contains(failed.failure->message, "block 3"));
  EXPECT_EQ(stats().task_retries, 0);
  EXPECT_TRUE(contains(log_of(s.id), "attempt 1 failed: SOURCE_ERROR: " + why));
  clock_.advance(60'000);
  EXPECT_TRUE(lease(w).empty()) << "a task of a step failed for good was leased";

  scheduler_->pass();
  EXPECT_FALSE(std::filesystem::exists(staging_dir(staging(), failed)));
}

TEST_F(ClusterTest, FailedStepWithContinueLetsTheNextStepOfItsEnvironmentStart) {
  planner_.set_summary(1, 100);
  store::Step first = submit(staging(), "first"), next = submit(staging(), "next");
  scheduler_->pass();
  std::string w = register_worker();
  for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
    LeasedTask t = lease_one(w);
    ASSERT_EQ(t.step_id, first.id);
    EXPECT_TRUE(complete_failed(w, t));
    clock_.advance(30'000);
  }
  EXPECT_EQ(state(staging(), first.id), StepState::kFailed);
  EXPECT_EQ(state(staging(), next.id), StepState::kPending);
  scheduler_->pass();
  EXPECT_EQ(state(staging(), next.id), StepState::kRunning);
}

// --- FAILED with CANCEL_AND_WAIT -------------------------------------------------

TEST_F(ClusterTest, CancelAndWaitFailureCancelsOnlyItsEnvironmentsPendingSteps) {
  planner_.set_summary(1, 100);
  store::Step a = submit(staging(), "a", "CANCEL_AND_WAIT");
  store::Step b = submit(staging(), "b"), c = submit(staging(), "c");
  scheduler_->pass();
  ASSERT_EQ(state(staging(), a.id), StepState::kRunning);
  std::string w = register_worker();
  LeasedTask t = lease_one(w);
  // Submitted while `a` runs; no pass starts it before `a` fails.
  store::Step p = submit(production(), "p");

  for (int attempt = 1;; ++attempt) {
    ASSERT_EQ(t.step_id, a.id);
    EXPECT_TRUE(complete_failed(w, t, "TASK_FAILED", "exit 1"));
    if (attempt == kMaxAttempts) break;
    clock_.advance(30'000);
    // Production's step is not RUNNING, so only `a`'s task is leasable.
    t = lease_one(w);
  }

  EXPECT_EQ(state(staging(), a.id), StepState::kFailed);
  for (const auto& pending : {b, c}) {
    store::Step got = get(staging(), pending.id);
    EXPECT_EQ(got.state, StepState::kCancelled);
    ASSERT_TRUE(got.failure.has_value());
    EXPECT_EQ(got.failure->reason, "CANCELLED_BY_EARLIER_FAILURE");
    EXPECT_TRUE(contains(got.failure->message, a.id)) << got.failure->message;
    EXPECT_EQ(task(pending.id, 0).state, TaskState::kCancelled);
  }
  EXPECT_EQ(state(production(), p.id), StepState::kPending);
  scheduler_->pass();
  EXPECT_EQ(state(production(), p.id), StepState::kRunning);
  EXPECT_EQ(state(staging(), b.id), StepState::kCancelled) << "a pass revived a cancelled step";
}

// --- RUNNING -> CANCEL_PENDING -> CANCELLED ------------------------------------------

TEST_F(ClusterTest, CancelledRunningStepEndsOnceNoLeaseIsLive) {
  store::Step s = submit(staging(), "dem");
  scheduler_->pass();
  std::string w = register_worker();
  std::vector<LeasedTask> held = lease(w, 2);
  ASSERT_EQ(held.size(), 2u);
  stage_tile(staging(), s);

  auto cancelled = steps_->cancel(staging(), s.id, "KILL");
  ASSERT_TRUE(cancelled.is_ok()) << cancelled.status().to_string();
  EXPECT_EQ(cancelled->state, StepState::kCancelPending);
  EXPECT_EQ(cancelled->cancel_signal, "KILL");
  EXPECT_TRUE(contains(log_of(s.id), "cancel requested (KILL); state CANCEL_PENDING"));

  // The worker learns it on its next heartbeat, with the signal asked for.
  auto hb = workers_->heartbeat(w, {beat(held[0]), beat(held[1])});
  ASSERT_TRUE(hb.is_ok());
  using Cancel = std::pair<int64_t, std::string>;
  EXPECT_EQ(hb->cancel,
            (std::vector<Cancel>{{held[0].task_id, "KILL"}, {held[1].task_id, "KILL"}}));
  EXPECT_TRUE(hb->unknown.empty());

  // Two leases live, then one: still CANCEL_PENDING.
  scheduler_->pass();
  EXPECT_EQ(state(staging(), s.id), StepState::kCancelPending);
  EXPECT_TRUE(complete_failed(w, held[0], "CANCELLED", "killed by SIGKILL"));
  EXPECT_EQ(task(s.id, 0).state, TaskState::kCancelled);
  scheduler_->pass();
  EXPECT_EQ(state(staging(), s.id), StepState::kCancelPending);
  EXPECT_TRUE(std::filesystem::exists(staging_dir(staging(), s)))
      << "staging removed while a task still writes into it";

  EXPECT_TRUE(complete_failed(w, held[1], "CANCELLED", "killed by SIGKILL"));
  clock_.advance(100);
  scheduler_->pass();
  store::Step ended = get(staging(), s.id);
  EXPECT_EQ(ended.state, StepState::kCancelled);
  EXPECT_EQ(ended.ended_ms, clock_.now_ms());
  EXPECT_EQ(task(s.id, -1).state, TaskState::kCancelled);
  EXPECT_TRUE(contains(log_of(s.id), "kiln-serve: step CANCELLED"));
  EXPECT_FALSE(std::filesystem::exists(staging_dir(staging(), s)));
  EXPECT_FALSE(std::filesystem::exists(staging_owner(staging(), s)));
  EXPECT_TRUE(lease(w, 2).empty());
}

TEST_F(ClusterTest, CancelledStepWhoseWorkerVanishedEndsWhenTheLeaseLapses) {
  store::Step s = submit(staging(), "dem");
  scheduler_->pass();
  std::string w = register_worker();
  LeasedTask t = lease_one(w);
  auto cancelled = steps_->cancel(staging(), s.id, "TERM");
  ASSERT_TRUE(cancelled.is_ok());
  EXPECT_EQ(cancelled->state, StepState::kCancelPending);

  auto hb = workers_->heartbeat(w, {beat(t)});
  ASSERT_TRUE(hb.is_ok());
  ASSERT_EQ(hb->cancel.size(), 1u);
  EXPECT_EQ(hb->cancel[0], std::make_pair(t.task_id, std::string("TERM")));

  // The worker never answers again: its lease (renewed by that heartbeat)
  // is held to the last millisecond, then lapses and the step ends.
  clock_.advance(kLeaseSeconds * 1000);
  scheduler_->pass();
  EXPECT_EQ(state(staging(), s.id), StepState::kCancelPending);
  clock_.advance(1);
  scheduler_->pass();
  EXPECT_EQ(state(staging(), s.id), StepState::kCancelled);
  EXPECT_EQ(task(s.id, 0).state, TaskState::kCancelled);
}

TEST_F(ClusterTest, CommitThatLandsWhileCancellingCompletesTheStep) {
  planner_.set_summary(1, 100);
  store::Step s = submit(staging(), "dem");
  scheduler_->pass();
  std::string w = register_worker();
  EXPECT_TRUE(complete_ok(w, lease_one(w)));
  LeasedTask commit = lease_one(w);
  ASSERT_EQ(commit.spec["kind"], "commit");
  ASSERT_TRUE(steps_->cancel(staging(), s.id, "TERM").is_ok());
  // The version is published: a CANCELLED step must never have output.
  EXPECT_TRUE(complete_ok(w, commit, {{"version", 4}, {"tiles", 100}, {"layer", "dem"}}));
  scheduler_->pass();
  store::Step got = get(staging(), s.id);
  EXPECT_EQ(got.state, StepState::kCompleted);
  EXPECT_EQ(got.version, 4);
}

// --- PENDING -> CANCELLED -------------------------------------------------------

TEST_F(ClusterTest, CancelledPendingStepEndsAtOnceAndNeverStarts) {
  store::Step first = submit(staging(), "first"), waiting = submit(staging(), "waiting");
  store::Step after = submit(staging(), "after");
  scheduler_->pass();
  ASSERT_EQ(state(staging(), waiting.id), StepState::kPending);

  auto cancelled = steps_->cancel(staging(), waiting.id, "TERM");
  ASSERT_TRUE(cancelled.is_ok()) << cancelled.status().to_string();
  EXPECT_EQ(cancelled->state, StepState::kCancelled);
  EXPECT_EQ(cancelled->ended_ms, clock_.now_ms());
  EXPECT_TRUE(contains(log_of(waiting.id), "cancel requested (TERM); state CANCELLED"));
  for (const store::Task& t : tasks(waiting.id)) EXPECT_EQ(t.state, TaskState::kCancelled);

  // Cancelling again answers the step as it is.
  auto again = steps_->cancel(staging(), waiting.id, "KILL");
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->state, StepState::kCancelled);

  // When `first` is cancelled too, its room goes to `after`, not `waiting`.
  ASSERT_TRUE(steps_->cancel(staging(), first.id, "TERM").is_ok());
  EXPECT_EQ(state(staging(), first.id), StepState::kCancelPending);
  // The pass starts steps before it finishes cancellations: a CANCEL_PENDING
  // step still holds its room, so `after` waits one more pass.
  scheduler_->pass();
  EXPECT_EQ(state(staging(), first.id), StepState::kCancelled);
  EXPECT_EQ(state(staging(), after.id), StepState::kPending);
  scheduler_->pass();
  EXPECT_EQ(state(staging(), after.id), StepState::kRunning);
  EXPECT_EQ(state(staging(), waiting.id), StepState::kCancelled);
}

TEST_F(ClusterTest, CancelRefusesASignalOtherThanTermOrKill) {
  store::Step s = submit(staging());
  auto r = steps_->cancel(staging(), s.id, "HUP");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(r.status().message(), "signal")) << r.status().message();
  EXPECT_EQ(state(staging(), s.id), StepState::kPending);
}

TEST_F(ClusterTest, CancellingACompletedStepLeavesItCompleted) {
  planner_.set_summary(1, 100);
  store::Step s = submit(staging());
  scheduler_->pass();
  std::string w = register_worker();
  EXPECT_TRUE(complete_ok(w, lease_one(w)));
  EXPECT_TRUE(complete_ok(w, lease_one(w), {{"version", 1}, {"tiles", 100}}));
  auto r = steps_->cancel(staging(), s.id, "KILL");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->state, StepState::kCompleted);
  EXPECT_EQ(r->version, 1);
}

// --- INTERRUPTED at start-up, and what recover() does with leases -------------------

TEST_F(ClusterTest, RecoverInterruptsStepsOfAnEnvironmentNoLongerConfigured) {
  // The previous server knew an environment "retired" as well.
  const config::EnvironmentConfig retired = environment("retired", 0);
  std::vector<config::EnvironmentConfig> before = config_.environments;
  before.push_back(retired);
  Policies old_policies(before);
  Scheduler previous(SchedulerOptions{}, before, store_.get(), log_.get(), &old_policies,
                     events_.get(), &lifecycle_, clock_);
  store::Step running = submit(retired, "r1"), pending = submit(retired, "r2");
  store::Step kept = submit(staging(), "kept");
  previous.pass();
  ASSERT_EQ(state(retired, running.id), StepState::kRunning);
  ASSERT_EQ(state(retired, pending.id), StepState::kPending);
  ASSERT_EQ(state(staging(), kept.id), StepState::kRunning);

  // This server's config has staging and production only.
  clock_.advance(60'000);
  ASSERT_TRUE(scheduler_->recover(/*workers_outlive_server=*/false).is_ok());
  for (const auto& s : {running, pending}) {
    store::Step got = get(retired, s.id);
    EXPECT_EQ(got.state, StepState::kInterrupted);
    EXPECT_EQ(got.ended_ms, clock_.now_ms());
    ASSERT_TRUE(got.failure.has_value());
    EXPECT_TRUE(contains(got.failure->message, "retired")) << got.failure->message;
  }
  EXPECT_EQ(state(staging(), kept.id), StepState::kRunning);
  // And they stay so: no pass starts or leases them.
  scheduler_->pass();
  EXPECT_EQ(state(retired, pending.id), StepState::kInterrupted);
  std::string w = register_worker("core-1", 8);
  for (const LeasedTask& t : lease(w, 8)) EXPECT_EQ(t.step_id, kept.id);
}

TEST_F(ClusterTest, RecoverReturnsTheLeasesOfLocalWorkersThatDiedWithTheServer) {
  store::Step s = submit(staging());
  scheduler_->pass();
  std::string old_worker = register_worker("core-1", 2, 4001);
  std::vector<LeasedTask> held = lease(old_worker, 2);
  ASSERT_EQ(held.size(), 2u);

  // A restart well within the lease: the leases come back at once anyway.
  clock_.advance(1000);
  ASSERT_TRUE(scheduler_->recover(/*workers_outlive_server=*/false).is_ok());
  for (int64_t i = 0; i < 2; ++i) EXPECT_EQ(task(s.id, i).state, TaskState::kPending);
  auto info = steps_->cluster(staging());
  ASSERT_TRUE(info.is_ok());
  EXPECT_TRUE(info->workers.empty()) << "the old worker is still listed as alive";
  EXPECT_EQ(stats().lease_expiries, 0) << "nothing lapsed: the leases were returned";

  std::string fresh = register_worker("core-1", 2, 4002);
  std::vector<LeasedTask> again = lease(fresh, 2);
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0].attempt, 2);
  // The old worker is gone for good: it must register again.
  EXPECT_FALSE(complete_ok(old_worker, held[0]));
  auto l = workers_->lease(old_worker, 1);
  EXPECT_EQ(l.status().code(), StatusCode::kNotFound);
}

TEST_F(ClusterTest, RecoverExtendsTheLeasesOfBatchWorkersThatOutliveTheServer) {
  store::Step s = submit(staging());
  scheduler_->pass();
  std::string batch = register_worker("core-1", 1, 4001);
  LeasedTask t = lease_one(batch);  // held until now + 15 s

  clock_.advance(10'000);
  ASSERT_TRUE(scheduler_->recover(/*workers_outlive_server=*/true).is_ok());
  // Past the original expiry, within two lease periods of the restart.
  clock_.advance(2 * kLeaseSeconds * 1000);
  scheduler_->pass();
  EXPECT_EQ(task(s.id, 0).state, TaskState::kLeased);
  EXPECT_EQ(task(s.id, 0).attempt, 1);
  EXPECT_TRUE(complete_ok(batch, t));
  EXPECT_EQ(task(s.id, 0).state, TaskState::kDone);

  // An extended lease still lapses when its holder never reports.
  LeasedTask other = lease_one(batch);
  ASSERT_EQ(other.spec["index"], 1);
  ASSERT_TRUE(scheduler_->recover(/*workers_outlive_server=*/true).is_ok());
  clock_.advance(2 * kLeaseSeconds * 1000 + 1);
  scheduler_->pass();
  EXPECT_EQ(task(s.id, 1).state, TaskState::kPending);
}

}  // namespace
}  // namespace kiln::cluster
