// Tasks and leases (docs/cluster.md, "Tasks and leases"): lapsed leases,
// heartbeats, late completions, the order tasks go to free slots
// (priority, starvation), draining nodes and shutdown.
#include <algorithm>

#include "cluster/test_cluster.h"

namespace kiln::cluster {
namespace {

using store::StepState;
using store::TaskState;

TEST_F(ClusterTest, LapsedLeaseRequeuesItsTaskForAnotherWorker) {
  store::Step s = submit(staging());
  scheduler_->pass();
  std::string lost = register_worker("core-1", 2, 4001);
  LeasedTask t = lease_one(lost);
  ASSERT_EQ(t.attempt, 1);

  // Held until lease_seconds have passed, to the millisecond.
  clock_.advance(kLeaseSeconds * 1000);
  scheduler_->pass();
  EXPECT_EQ(task(s.id, 0).state, TaskState::kLeased);
  EXPECT_EQ(stats().lease_expiries, 0);

  clock_.advance(1);
  const uint64_t before = events_->version();
  scheduler_->pass();
  EXPECT_EQ(task(s.id, 0).state, TaskState::kPending);
  EXPECT_EQ(stats().lease_expiries, 1);
  EXPECT_GT(events_->version(), before) << "a lapsed lease was not announced";
  EXPECT_EQ(state(staging(), s.id), StepState::kRunning);

  std::string other = register_worker("core-2", 2, 4002);
  LeasedTask again = lease_one(other);
  EXPECT_EQ(again.task_id, t.task_id);
  EXPECT_EQ(again.attempt, 2);
  EXPECT_TRUE(contains(log_of(s.id), "partition task 0 attempt 2 leased by " + other));

  // The first worker was only slow: the server tells it the lease is gone.
  auto hb = workers_->heartbeat(lost, {beat(t, 50)});
  ASSERT_TRUE(hb.is_ok());
  EXPECT_EQ(hb->unknown, std::vector<int64_t>{t.task_id});
  EXPECT_EQ(task(s.id, 0).worker_id, other);
}

// Scheduler's contract (scheduler.h): "Every transition it makes is logged
// in the step's log and announced on StepEvents". A user reading `kiln step
// logs` must see why partition 0 ran a second attempt.
TEST_F(ClusterTest, LapsedLeaseIsLoggedInItsStepsLog) {
  store::Step s = submit(staging());
  scheduler_->pass();
  std::string w = register_worker();
  LeasedTask t = lease_one(w);
  const std::string before = log_of(s.id);
  clock_.advance(kLeaseSeconds * 1000 + 1);
  scheduler_->pass();
  ASSERT_EQ(task(s.id, 0).state, TaskState::kPending);
  const std::string after = log_of(s.id);
  EXPECT_GT(after.size(), before.size())
      << "the lease of task " << t.task_id << " attempt 1 lapsed and the task was requeued "
      << "without a line in step " << s.id << "'s log:\n"
      << after;
}

TEST_F(ClusterTest, HeartbeatsRenewLeasesAndRecordProgress) {
  store::Step s = submit(staging());
  scheduler_->pass();
  std::string w = register_worker();
  LeasedTask t = lease_one(w);

  for (int i = 1; i <= 3; ++i) {
    clock_.advance(kLeaseSeconds * 1000 - 1);
    auto hb = workers_->heartbeat(w, {beat(t, 10 * i)});
    ASSERT_TRUE(hb.is_ok());
    EXPECT_TRUE(hb->unknown.empty());
    EXPECT_TRUE(hb->cancel.empty());
    scheduler_->pass();
    EXPECT_EQ(task(s.id, 0).state, TaskState::kLeased) << "lapsed despite heartbeat " << i;
  }
  EXPECT_EQ(get(staging(), s.id).progress.tiles_done, 30);

  // Heartbeats stop: one lease period later the task is back in the queue.
  clock_.advance(kLeaseSeconds * 1000 + 1);
  scheduler_->pass();
  EXPECT_EQ(task(s.id, 0).state, TaskState::kPending);
  EXPECT_EQ(get(staging(), s.id).progress.tiles_done, 0);
}

TEST_F(ClusterTest, CompletionFromAnAttemptThatLostItsLeaseIsIgnored) {
  planner_.set_summary(1, 100);
  store::Step s = submit(staging());
  scheduler_->pass();
  std::string slow = register_worker("core-1", 2, 4001);
  std::string fast = register_worker("core-2", 2, 4002);
  EXPECT_TRUE(complete_ok(fast, lease_one(fast)));

  LeasedTask old_commit = lease_one(slow);
  ASSERT_EQ(old_commit.spec["kind"], "commit");
  clock_.advance(kLeaseSeconds * 1000 + 1);
  scheduler_->pass();
  LeasedTask new_commit = lease_one(fast);
  ASSERT_EQ(new_commit.task_id, old_commit.task_id);
  ASSERT_EQ(new_commit.attempt, 2);

  // The slow attempt reports after all, success or failure: neither counts.
  EXPECT_FALSE(complete_ok(slow, old_commit, {{"version", 7}, {"tiles", 100}}));
  EXPECT_FALSE(complete_failed(slow, old_commit));
  store::Step running = get(staging(), s.id);
  EXPECT_EQ(running.state, StepState::kRunning);
  EXPECT_EQ(task(s.id, -1).state, TaskState::kLeased);
  EXPECT_EQ(task(s.id, -1).worker_id, fast);
  EXPECT_EQ(workers_->tiles_written(), 0);
  EXPECT_FALSE(contains(log_of(s.id), "task " + std::to_string(old_commit.task_id) + " attempt 1"))
      << "an ignored report was logged as the task's outcome";
  // Nor does a report naming the right attempt from the wrong worker.
  LeasedTask forged = new_commit;
  EXPECT_FALSE(complete_ok(slow, forged, {{"version", 7}}));

  EXPECT_TRUE(complete_ok(fast, new_commit, {{"version", 1}, {"tiles", 100}}));
  store::Step done = get(staging(), s.id);
  EXPECT_EQ(done.state, StepState::kCompleted);
  EXPECT_EQ(done.version, 1);
}

TEST_F(ClusterTest, RetryBackoffDoublesFromOneSecondUpToThirty) {
  // A service whose steps get 8 attempts ([scheduler] max_attempts = 8).
  StepServiceOptions so;
  so.max_attempts = 8;
  so.plan_threads = plan_threads_for(config_);
  CoreStepService service(so, store_.get(), &planner_, log_.get(), policies_.get(), events_.get(),
                          &lifecycle_, clock_);
  planner_.set_summary(1, 100);
  SubmitRequest req;
  req.definition = definition("dem");
  auto s = service.submit(staging(), req);
  ASSERT_TRUE(s.is_ok());
  scheduler_->pass();
  std::string w = register_worker();

  // docs/cluster.md: min(30 s, 1 s * 2^(attempt-1)).
  const int64_t backoff_s[] = {1, 2, 4, 8, 16, 30, 30};
  for (int attempt = 1; attempt <= 7; ++attempt) {
    LeasedTask t = lease_one(w);
    ASSERT_EQ(t.attempt, attempt);
    EXPECT_TRUE(complete_failed(w, t));
    clock_.advance(backoff_s[attempt - 1] * 1000 - 1);
    EXPECT_TRUE(lease(w).empty()) << "retry after attempt " << attempt << " came early";
    clock_.advance(1);
  }
  LeasedTask last = lease_one(w);
  EXPECT_EQ(last.attempt, 8);
  EXPECT_TRUE(complete_failed(w, last));
  EXPECT_EQ(state(staging(), s->id), StepState::kFailed);
}

TEST_F(ClusterTest, HigherPriorityEnvironmentLeasesFirstUnlessATaskStarves) {
  store::Step low = submit(staging(), "low");  // priority 0, submitted first
  scheduler_->pass();
  clock_.advance(20'000);
  store::Step high = submit(production(), "high");  // priority 10
  scheduler_->pass();
  std::string w = register_worker("core-1", 4);

  LeasedTask first = lease_one(w);
  EXPECT_EQ(first.step_id, high.id) << "priority 10 must go before 0 however old";

  // staging's tasks have now waited 20 s + 10 s + 1 ms, past starvation_seconds
  // (30); production's remaining one only 10 s.
  clock_.advance(kStarvationSeconds * 1000 - 20'000 + 1);
  LeasedTask starving = lease_one(w);
  EXPECT_EQ(starving.step_id, low.id);
  EXPECT_EQ(starving.spec["index"], 0);
  LeasedTask next = lease_one(w);
  EXPECT_EQ(next.step_id, low.id) << "staging's other partition starves as long";
  LeasedTask last = lease_one(w);
  EXPECT_EQ(last.step_id, high.id);
}

TEST_F(ClusterTest, WithinAnEnvironmentOlderStepsAndLowerIndexesLeaseFirst) {
  ASSERT_TRUE(steps_->set_concurrency(staging(), 2).is_ok());
  store::Step older = submit(staging(), "older"), newer = submit(staging(), "newer");
  scheduler_->pass();
  std::string w = register_worker("core-1", 4);
  std::vector<LeasedTask> got = lease(w, 4);
  ASSERT_EQ(got.size(), 4u);
  const std::vector<std::pair<std::string, int>> expected = {
      {older.id, 0}, {older.id, 1}, {newer.id, 0}, {newer.id, 1}};
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].step_id, expected[i].first) << i;
    EXPECT_EQ(got[i].spec["index"], expected[i].second) << i;
  }
}

TEST_F(ClusterTest, DrainingNodesWorkerGetsNoNewLeaseButFinishesWhatItRuns) {
  ASSERT_TRUE(steps_->set_concurrency(staging(), 2).is_ok());
  submit(staging(), "a");
  submit(staging(), "b");
  scheduler_->pass();
  std::string on_core1 = register_worker("core-1", 2, 4001);
  std::string on_core2 = register_worker("core-2", 2, 4002);
  LeasedTask running = lease_one(on_core1);
  EXPECT_EQ(executor_.calls(), (std::vector<std::string>{"launch core-1 2", "launch core-2 2"}));

  // A spot notice (kiln cluster interrupt) drains core-1.
  ASSERT_TRUE(elastic_->interrupt("core-1", 60'000, clock_.now_ms()).is_ok());
  EXPECT_EQ(executor_.calls().back(), "drain core-1");
  EXPECT_TRUE(lease(on_core1, 2).empty()) << "a draining node's worker got a new task";
  EXPECT_EQ(lease(on_core2, 2).size(), 2u);

  // What it runs still counts.
  auto hb = workers_->heartbeat(on_core1, {beat(running)});
  ASSERT_TRUE(hb.is_ok());
  EXPECT_TRUE(hb->unknown.empty());
  EXPECT_TRUE(complete_ok(on_core1, running));
  EXPECT_EQ(task(running.step_id, running.spec["index"].get<int64_t>()).state, TaskState::kDone);
  EXPECT_TRUE(lease(on_core1, 2).empty());
}

TEST_F(ClusterTest, TerminatedNodesLeasesReturnToTheQueueAtOnce) {
  store::Step s = submit(staging());
  scheduler_->pass();
  std::string on_core1 = register_worker("core-1", 2, 4001);
  std::vector<LeasedTask> held = lease(on_core1, 2);
  ASSERT_EQ(held.size(), 2u);

  ASSERT_TRUE(elastic_->interrupt("core-1", 60'000, clock_.now_ms()).is_ok());
  // Its tasks keep running through the notice (heartbeats renew them)...
  clock_.advance(59'000);
  ASSERT_TRUE(workers_->heartbeat(on_core1, {beat(held[0]), beat(held[1])}).is_ok());
  elastic_->tick(clock_.now_ms());
  EXPECT_EQ(task(s.id, 0).state, TaskState::kLeased);
  // ...until the node is taken away: the leases return now, not at expiry.
  clock_.advance(1000);
  elastic_->tick(clock_.now_ms());
  std::vector<std::string> calls = executor_.calls();
  EXPECT_NE(std::find(calls.begin(), calls.end(), "terminate core-1"), calls.end());
  EXPECT_EQ(task(s.id, 0).state, TaskState::kPending);
  EXPECT_EQ(task(s.id, 1).state, TaskState::kPending);
  EXPECT_EQ(stats().lease_expiries, 0);
  EXPECT_FALSE(complete_ok(on_core1, held[0])) << "a terminated node's late report counted";

  std::string on_core2 = register_worker("core-2", 2, 4002);
  std::vector<LeasedTask> again = lease(on_core2, 2);
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0].attempt, 2);
}

TEST_F(ClusterTest, StepPaysForTheSlotTimeOfItsAttempts) {
  planner_.set_summary(1, 100);
  store::Step s = submit(staging());
  scheduler_->pass();
  std::string w = register_worker("core-1", 2);
  LeasedTask t = lease_one(w);
  clock_.advance(36'000);
  EXPECT_TRUE(complete_failed(w, t));
  clock_.advance(1000);
  LeasedTask retry = lease_one(w);
  clock_.advance(36'000);
  EXPECT_TRUE(complete_ok(w, retry));
  // 72 slot-seconds on core-1 (1.0 per node-hour, 2 slots): a failed
  // attempt used the machine too.
  store::Step got = get(staging(), s.id);
  EXPECT_DOUBLE_EQ(got.slot_seconds, 72.0);
  EXPECT_NEAR(got.cost, 72.0 / 3600.0 / 2.0, 1e-12);
}

// --- shutdown ----------------------------------------------------------------------

TEST_F(ClusterTest, OnceStoppingNoStepIsTakenAndNoTaskLeasedButRunningOnesFinish) {
  planner_.set_summary(1, 100);
  store::Step s = submit(staging());
  scheduler_->pass();
  std::string w = register_worker();
  LeasedTask running = lease_one(w);

  EXPECT_TRUE(lifecycle_.begin_stopping());
  EXPECT_FALSE(lifecycle_.begin_stopping()) << "only the first call begins it";

  auto refused = try_submit(staging(), "late");
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  auto info = steps_->cluster(staging());
  ASSERT_TRUE(info.is_ok());
  EXPECT_FALSE(info->accepting_steps);

  // The running task finishes and reports; nothing new is handed out.
  auto hb = workers_->heartbeat(w, {beat(running)});
  ASSERT_TRUE(hb.is_ok());
  EXPECT_TRUE(hb->unknown.empty());
  EXPECT_TRUE(complete_ok(w, running));
  EXPECT_TRUE(lease(w, 2).empty()) << "the commit task was leased during shutdown";
  auto claimed = workers_->claim(w, s.id, -1);
  ASSERT_TRUE(claimed.is_ok());
  EXPECT_EQ(claimed->outcome, ClaimReply::Outcome::kWait);
  EXPECT_GT(claimed->retry_after_ms, 0);
  EXPECT_TRUE(contains(claimed->why, "shutting down")) << claimed->why;
  EXPECT_EQ(task(s.id, -1).state, TaskState::kPending);
}

}  // namespace
}  // namespace kiln::cluster
