// The worker protocol (docs/cluster.md, "Worker protocol"): what each call
// answers a worker or a batch task, and what it does to the queue.
#include "cluster/test_cluster.h"

namespace kiln::cluster {
namespace {

using store::StepState;
using store::TaskState;
using Outcome = ClaimReply::Outcome;

size_t count_of(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

// --- register --------------------------------------------------------------------

TEST_F(ClusterTest, RegisterRefusesFewerThanOneSlotNamingSlots) {
  for (int slots : {0, -1}) {
    auto r = workers_->register_worker(4000, "core-1", slots);
    ASSERT_FALSE(r.is_ok()) << slots;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(contains(r.status().message(), "slots")) << r.status().message();
  }
  auto info = steps_->cluster(staging());
  ASSERT_TRUE(info.is_ok());
  EXPECT_TRUE(info->workers.empty());
}

TEST_F(ClusterTest, RegisterAnswersTheWorkersIdAndTimings) {
  auto r = workers_->register_worker(4000, "core-1", 2);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->worker_id.rfind("w-", 0), 0u) << r->worker_id;
  EXPECT_EQ(r->lease_seconds, kLeaseSeconds);
  EXPECT_EQ(r->heartbeat_seconds, 2);
  EXPECT_EQ(r->cancel_grace_seconds, 10);
  auto second = workers_->register_worker(4001, "core-2", 3);
  ASSERT_TRUE(second.is_ok());
  EXPECT_NE(second->worker_id, r->worker_id);

  auto info = steps_->cluster(staging());
  ASSERT_TRUE(info.is_ok());
  ASSERT_EQ(info->workers.size(), 2u);
  for (const store::WorkerInfo& wi : info->workers) {
    const bool first = wi.id == r->worker_id;
    EXPECT_EQ(wi.host, first ? "core-1" : "core-2");
    EXPECT_EQ(wi.pid, first ? 4000 : 4001);
    EXPECT_EQ(wi.slots, first ? 2 : 3);
    EXPECT_TRUE(wi.alive);
  }
  EXPECT_EQ(info->slots_total, 5);
  EXPECT_EQ(info->slots_busy, 0);
}

// A worker whose registration answer was lost (its read timed out while
// the server was busy) asks again with its key: the server answers the
// registration it made, and one worker stands for the node, not two.
TEST_F(ClusterTest, ARetriedRegistrationIsTheSameWorkerNotASecondOne) {
  auto first = workers_->register_worker(4000, "core-1", 1, "k-retry-test-0001");
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  clock_.advance(5000);
  auto retry = workers_->register_worker(4000, "core-1", 1, "k-retry-test-0001");
  ASSERT_TRUE(retry.is_ok()) << retry.status().to_string();
  EXPECT_EQ(retry->worker_id, first->worker_id);
  EXPECT_EQ(retry->lease_seconds, first->lease_seconds);
  auto info = steps_->cluster(staging());
  ASSERT_TRUE(info.is_ok());
  ASSERT_EQ(info->workers.size(), 1u);
  EXPECT_EQ(info->slots_total, 1);

  // The process exits: its one registration goes, and none is left behind.
  workers_->worker_exited(4000);
  info = steps_->cluster(staging());
  ASSERT_TRUE(info.is_ok());
  EXPECT_TRUE(info->workers.empty());

  // Its restart is a new process with a key of its own: a new worker.
  auto restarted = workers_->register_worker(4100, "core-1", 1, "k-retry-test-0002");
  ASSERT_TRUE(restarted.is_ok());
  EXPECT_NE(restarted->worker_id, first->worker_id);
  // A key sent by another process is refused, naming the key.
  auto stolen = workers_->register_worker(4200, "core-2", 1, "k-retry-test-0002");
  ASSERT_FALSE(stolen.is_ok());
  EXPECT_EQ(stolen.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(stolen.status().message(), "registration_key")) << stolen.status().message();
}

// A warm core of hundreds of nodes takes a while to launch; the first
// workers register meanwhile, on request threads. Their registration must
// not wait for the last launch (issue 14: it did, timed out, and the
// workers registered again).
TEST_F(ClusterTest, WorkersRegisterWhileTheWarmCoreIsStillLaunching) {
  FakeExecutor executor;
  ElasticControl elastic(config_, store_.get(), &executor);
  std::vector<std::future<void>> registrations;
  std::vector<bool> in_time;
  executor.on_launch = [&](const std::string& node) {
    // The node's worker registers from another thread while the launch
    // of the rest goes on.
    registrations.push_back(std::async(std::launch::async, [&elastic, node, this] {
      elastic.worker_registered("w-" + node, node, clock_.now_ms());
    }));
    in_time.push_back(registrations.back().wait_for(std::chrono::seconds(10)) ==
                      std::future_status::ready);
  };
  ASSERT_TRUE(elastic.start(clock_.now_ms()).is_ok());
  registrations.clear();  // joins any that waited for the launches to end
  ASSERT_EQ(in_time.size(), static_cast<size_t>(config_.autoscaler.groups[0].min_nodes));
  for (bool ok : in_time) EXPECT_TRUE(ok) << "a registration waited for the launches to end";
  const nlohmann::json j = elastic.to_json(clock_.now_ms());
  ASSERT_EQ(j["nodes"].size(), in_time.size());
  for (const auto& n : j["nodes"]) EXPECT_EQ(n["state"], "ready") << n.dump();
}

// --- lease -------------------------------------------------------------------------

TEST_F(ClusterTest, LeaseHandsOutAtMostTheFreeSlotsAndNothingWhenIdle) {
  std::string w = register_worker("core-1", 2);
  EXPECT_TRUE(lease(w, 2).empty()) << "leased with no step at all";
  store::Step s = submit(staging());
  EXPECT_TRUE(lease(w, 2).empty()) << "leased a task of a PENDING step";
  scheduler_->pass();
  EXPECT_TRUE(lease(w, 0).empty());
  std::vector<LeasedTask> one = lease(w, 1);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].spec["step_id"], s.id);
  EXPECT_EQ(one[0].spec["task_id"], one[0].task_id);
  EXPECT_EQ(one[0].spec["attempt"], 1);
  EXPECT_EQ(one[0].spec["plan"]["threads"], plan_threads_for(config_));
  EXPECT_EQ(one[0].spec["definition"]["layer"], "dem");

  auto info = steps_->cluster(staging());
  ASSERT_TRUE(info.is_ok());
  EXPECT_EQ(info->slots_busy, 1);
  EXPECT_EQ(info->queued_tasks, 2) << "partition 1 and the commit task wait";
}

TEST_F(ClusterTest, UnknownWorkerIsNotFoundOnEveryCall) {
  store::Step s = submit(staging());
  scheduler_->pass();
  EXPECT_EQ(workers_->lease("w-NOSUCHWORKER", 1).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(workers_->heartbeat("w-NOSUCHWORKER", {}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(workers_->claim("w-NOSUCHWORKER", s.id, 0).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(workers_->leave("w-NOSUCHWORKER").code(), StatusCode::kNotFound);
  EXPECT_EQ(task(s.id, 0).state, TaskState::kPending);
}

// --- heartbeat -----------------------------------------------------------------------

TEST_F(ClusterTest, HeartbeatNamesTheLeasesTheWorkerNoLongerHolds) {
  store::Step s = submit(staging());
  scheduler_->pass();
  std::string w = register_worker();
  LeasedTask t = lease_one(w);
  LeasedTask stale = t;
  stale.attempt = 0;  // an attempt the server never granted
  LeasedTask never;
  never.task_id = 999'999;
  never.attempt = 1;
  auto hb = workers_->heartbeat(w, {beat(t, 5), beat(stale), beat(never)});
  ASSERT_TRUE(hb.is_ok()) << hb.status().to_string();
  EXPECT_EQ(hb->unknown, (std::vector<int64_t>{t.task_id, never.task_id}));
  EXPECT_TRUE(hb->cancel.empty());
  EXPECT_EQ(get(staging(), s.id).progress.tiles_done, 5);
}

// --- complete ------------------------------------------------------------------------

TEST_F(ClusterTest, CompleteAnnouncesTheChangeAndLogsIt) {
  store::Step s = submit(staging());
  scheduler_->pass();
  std::string w = register_worker();
  LeasedTask t = lease_one(w);
  const uint64_t before = events_->version();
  // A worker from before "permanent" does not say: the failure is retried.
  EXPECT_TRUE(complete_failed(w, t, "SOURCE_ERROR", "band 4 missing"));
  EXPECT_GT(events_->version(), before);
  EXPECT_TRUE(contains(log_of(s.id), "task " + std::to_string(t.task_id) +
                                         " attempt 1 failed: SOURCE_ERROR: band 4 missing"));
  store::Task after = task(s.id, 0);
  EXPECT_EQ(after.state, TaskState::kPending);
  EXPECT_TRUE(contains(after.last_error, "band 4 missing"));
  // Reporting the same attempt twice: the second is ignored.
  EXPECT_FALSE(complete_failed(w, t));
  // So is a task the server never handed out.
  LeasedTask never = t;
  never.task_id = 999'999;
  EXPECT_FALSE(complete_ok(w, never));
  EXPECT_EQ(stats().task_retries, 1);
}

// --- claim -----------------------------------------------------------------------------

TEST_F(ClusterTest, ClaimAnswersLeasedWaitDoneOrGone) {
  store::Step s = submit(staging());
  scheduler_->pass();
  std::string a = register_worker("core-1", 1, 4001);
  std::string b = register_worker("core-2", 1, 4002);

  // leased: the named partition, whatever the queue's order.
  auto c1 = workers_->claim(a, s.id, 1);
  ASSERT_TRUE(c1.is_ok()) << c1.status().to_string();
  ASSERT_EQ(c1->outcome, Outcome::kLeased);
  ASSERT_TRUE(c1->task.has_value());
  EXPECT_EQ(c1->task->spec["index"], 1);
  EXPECT_EQ(c1->task->attempt, 1);
  EXPECT_TRUE(contains(log_of(s.id), "partition task 1 attempt 1 leased by " + a));

  // Its own claim again (a lost reply): the same attempt.
  auto again = workers_->claim(a, s.id, 1);
  ASSERT_TRUE(again.is_ok());
  ASSERT_EQ(again->outcome, Outcome::kLeased);
  EXPECT_EQ(again->task->attempt, 1);

  // wait: another worker holds it.
  auto held = workers_->claim(b, s.id, 1);
  ASSERT_TRUE(held.is_ok());
  EXPECT_EQ(held->outcome, Outcome::kWait);
  EXPECT_GT(held->retry_after_ms, 0);
  EXPECT_LE(held->retry_after_ms, kLeaseSeconds * 1000 + 1);
  EXPECT_TRUE(contains(held->why, a)) << held->why;

  // wait: the commit task before its partitions are done.
  auto early = workers_->claim(b, s.id, -1);
  ASSERT_TRUE(early.is_ok());
  EXPECT_EQ(early->outcome, Outcome::kWait);
  EXPECT_GT(early->retry_after_ms, 0);
  EXPECT_TRUE(contains(early->why, "not done")) << early->why;

  // wait: a failed attempt's backoff, told how long is left.
  auto c0 = workers_->claim(b, s.id, 0);
  ASSERT_TRUE(c0.is_ok());
  ASSERT_EQ(c0->outcome, Outcome::kLeased);
  EXPECT_TRUE(complete_failed(b, *c0->task));
  clock_.advance(400);
  auto backoff = workers_->claim(b, s.id, 0);
  ASSERT_TRUE(backoff.is_ok());
  EXPECT_EQ(backoff->outcome, Outcome::kWait);
  EXPECT_EQ(backoff->retry_after_ms, 600);
  clock_.advance(600);
  auto retried = workers_->claim(b, s.id, 0);
  ASSERT_TRUE(retried.is_ok());
  ASSERT_EQ(retried->outcome, Outcome::kLeased);
  EXPECT_EQ(retried->task->attempt, 2);

  // done: nothing to run.
  EXPECT_TRUE(complete_ok(b, *retried->task));
  auto done = workers_->claim(b, s.id, 0);
  ASSERT_TRUE(done.is_ok());
  EXPECT_EQ(done->outcome, Outcome::kDone);
  EXPECT_FALSE(done->task.has_value());

  // gone: the step was cancelled.
  ASSERT_TRUE(steps_->cancel(staging(), s.id, "TERM").is_ok());
  auto gone = workers_->claim(b, s.id, -1);
  ASSERT_TRUE(gone.is_ok());
  EXPECT_EQ(gone->outcome, Outcome::kGone);
  EXPECT_TRUE(contains(gone->why, "CANCEL_PENDING")) << gone->why;

  // Unknown step or index: not found.
  EXPECT_EQ(workers_->claim(b, "s-0000000000000", 0).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(workers_->claim(b, s.id, 7).status().code(), StatusCode::kNotFound);
}

// --- leave, worker_exited ----------------------------------------------------------------

TEST_F(ClusterTest, LeaveReturnsTheWorkersLeasesAtOnce) {
  store::Step s = submit(staging());
  scheduler_->pass();
  std::string leaving = register_worker("core-1", 2, 4001);
  std::vector<LeasedTask> held = lease(leaving, 2);
  ASSERT_EQ(held.size(), 2u);
  const uint64_t before = events_->version();

  ASSERT_TRUE(workers_->leave(leaving).is_ok());
  EXPECT_GT(events_->version(), before);
  // No clock movement, no pass: the tasks are back in the queue now.
  EXPECT_EQ(task(s.id, 0).state, TaskState::kPending);
  EXPECT_EQ(task(s.id, 1).state, TaskState::kPending);
  EXPECT_EQ(stats().lease_expiries, 0);
  EXPECT_EQ(workers_->lease(leaving, 1).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(complete_ok(leaving, held[0]));

  std::string other = register_worker("core-2", 2, 4002);
  std::vector<LeasedTask> again = lease(other, 2);
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0].attempt, 2);
}

TEST_F(ClusterTest, WorkerExitedRequeuesItsTasksAndLeavesOthersAlone) {
  ASSERT_TRUE(steps_->set_concurrency(staging(), 2).is_ok());
  store::Step s = submit(staging(), "a"), other_step = submit(staging(), "b");
  scheduler_->pass();
  std::string crashed = register_worker("core-1", 2, 4001);
  std::string healthy = register_worker("core-2", 2, 4002);
  std::vector<LeasedTask> lost = lease(crashed, 2);
  std::vector<LeasedTask> kept = lease(healthy, 2);
  ASSERT_EQ(lost.size(), 2u);
  ASSERT_EQ(kept.size(), 2u);

  workers_->worker_exited(9999);  // not a worker's pid: nothing happens
  EXPECT_EQ(task(s.id, 0).state, TaskState::kLeased);

  const uint64_t before = events_->version();
  workers_->worker_exited(4001);
  EXPECT_GT(events_->version(), before);
  EXPECT_EQ(task(s.id, 0).state, TaskState::kPending);
  EXPECT_EQ(task(s.id, 1).state, TaskState::kPending);
  for (const LeasedTask& t : kept) {
    EXPECT_EQ(task(t.step_id, t.spec["index"].get<int64_t>()).state, TaskState::kLeased);
    EXPECT_EQ(task(t.step_id, t.spec["index"].get<int64_t>()).worker_id, healthy);
  }
  EXPECT_EQ(other_step.id, kept[0].step_id);
  auto info = steps_->cluster(staging());
  ASSERT_TRUE(info.is_ok());
  ASSERT_EQ(info->workers.size(), 1u);
  EXPECT_EQ(info->workers[0].id, healthy);
  // A second report of the same pid changes nothing.
  workers_->worker_exited(4001);
  EXPECT_EQ(task(other_step.id, 0).state, TaskState::kLeased);
}

// WorkerProtocol's contract (worker_protocol.h): "Every lease, completion
// and departure is logged in the step's log". A user reading `kiln step
// logs` after a worker left must see why the task was leased again.
TEST_F(ClusterTest, DepartureIsLoggedInTheLogOfEachStepWhoseTaskItHeld) {
  store::Step s = submit(staging());
  scheduler_->pass();
  std::string leaving = register_worker("core-1", 1, 4001);
  std::string exiting = register_worker("core-2", 1, 4002);
  lease_one(leaving);
  lease_one(exiting);
  const size_t leaving_lines = count_of(log_of(s.id), leaving);
  const size_t exiting_lines = count_of(log_of(s.id), exiting);
  ASSERT_EQ(leaving_lines, 1u);  // "partition task 0 attempt 1 leased by <leaving>"
  ASSERT_EQ(exiting_lines, 1u);

  ASSERT_TRUE(workers_->leave(leaving).is_ok());
  EXPECT_GT(count_of(log_of(s.id), leaving), leaving_lines)
      << "leave() returned a task of step " << s.id << " to the queue without a line in its log:\n"
      << log_of(s.id);
  workers_->worker_exited(4002);
  EXPECT_GT(count_of(log_of(s.id), exiting), exiting_lines)
      << "worker_exited() returned a task of step " << s.id
      << " to the queue without a line in its log:\n"
      << log_of(s.id);
}

}  // namespace
}  // namespace kiln::cluster
