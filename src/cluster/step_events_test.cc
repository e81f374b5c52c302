// StepEvents and the waits built on it (CoreStepService::wait, the
// shutdown's Scheduler::wait_for_leases), and the scheduler's own thread.
// A waiting thread is ended by an event or by advancing the ManualClock,
// never by real time passing; the assertions are on what it returns.
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "cluster/test_cluster.h"

namespace kiln::cluster {
namespace {

using store::StepState;
using namespace std::chrono_literals;

// Whether the future has a result already (it must not, before its event).
template <typename T>
bool ready(const std::future<T>& f) {
  return f.wait_for(0ms) == std::future_status::ready;
}

// A generous bound on real time for a result that an event has already
// made due: only a hang reaches it.
constexpr auto kHang = 30s;

// --- StepEvents ------------------------------------------------------------------------

TEST(StepEventsTest, WaitForChangeWakesOnNotify) {
  ManualClock clock;
  StepEvents events(clock);
  const uint64_t seen = events.version();
  auto waiter = std::async(std::launch::async,
                           [&] { return events.wait_for_change(seen, clock.now_ms() + 60'000); });
  EXPECT_FALSE(ready(waiter)) << "returned with nothing changed and the deadline far";
  events.notify();
  ASSERT_EQ(waiter.wait_for(kHang), std::future_status::ready);
  EXPECT_EQ(waiter.get(), seen + 1);
  EXPECT_EQ(events.version(), seen + 1);
}

TEST(StepEventsTest, WaitForChangeReturnsTheSameVersionAtTheDeadline) {
  ManualClock clock;
  StepEvents events(clock);
  const uint64_t seen = events.version();
  const int64_t deadline = clock.now_ms() + 5000;
  auto waiter =
      std::async(std::launch::async, [&] { return events.wait_for_change(seen, deadline); });
  clock.advance(4999);
  EXPECT_FALSE(ready(waiter)) << "returned before the deadline";
  clock.advance(1);
  ASSERT_EQ(waiter.wait_for(kHang), std::future_status::ready);
  EXPECT_EQ(waiter.get(), seen);
  // A deadline already passed returns at once.
  EXPECT_EQ(events.wait_for_change(seen, clock.now_ms()), seen);
}

TEST(StepEventsTest, AChangeSinceSeenReturnsWithoutWaiting) {
  ManualClock clock;
  StepEvents events(clock);
  const uint64_t seen = events.version();
  events.notify();
  events.notify();
  EXPECT_EQ(events.wait_for_change(seen, clock.now_ms() + 60'000), seen + 2);
}

TEST(StepEventsTest, CloseEndsEveryWaitForGood) {
  ManualClock clock;
  StepEvents events(clock);
  const uint64_t seen = events.version();
  auto w1 = std::async(std::launch::async,
                       [&] { return events.wait_for_change(seen, clock.now_ms() + 60'000); });
  auto w2 = std::async(std::launch::async,
                       [&] { return events.wait_for_change(seen, clock.now_ms() + 60'000); });
  EXPECT_FALSE(events.closed());
  events.close();
  ASSERT_EQ(w1.wait_for(kHang), std::future_status::ready);
  ASSERT_EQ(w2.wait_for(kHang), std::future_status::ready);
  EXPECT_EQ(w1.get(), seen);
  EXPECT_EQ(w2.get(), seen);
  EXPECT_TRUE(events.closed());
  EXPECT_EQ(events.wait_for_change(seen, clock.now_ms() + 60'000), seen) << "waited after close";
}

TEST(StepEventsTest, ListenersRunOnEveryNotify) {
  ManualClock clock;
  StepEvents events(clock);
  int calls = 0;
  events.add_listener([&] { ++calls; });
  events.add_listener([&] { calls += 10; });
  events.notify();
  events.notify();
  EXPECT_EQ(calls, 22);
}

TEST(StepEventsTest, SubscribersAreToldOfNotifyAndCloseUntilUnsubscribed) {
  ManualClock clock;
  StepEvents events(clock);
  int a = 0, b = 0;
  const uint64_t ia = events.subscribe([&] { ++a; });
  const uint64_t ib = events.subscribe([&] { ++b; });
  EXPECT_NE(ia, ib);
  events.notify();
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 1);
  events.unsubscribe(ia);
  events.notify();
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 2);
  events.close();  // a waiter must also learn of the shutdown
  EXPECT_EQ(b, 3);
  events.unsubscribe(ib);
  events.notify();
  EXPECT_EQ(b, 3);
}

// --- CoreStepService::wait ---------------------------------------------------------------

TEST_F(ClusterTest, WaitReturnsTheEndedStepWhenAnotherThreadCompletesIt) {
  planner_.set_summary(1, 100);
  store::Step s = submit(staging());
  scheduler_->pass();
  std::string w = register_worker();
  EXPECT_TRUE(complete_ok(w, lease_one(w)));
  LeasedTask commit = lease_one(w);

  // The clock never reaches the timeout: only the completion can end it.
  auto waiter =
      std::async(std::launch::async, [&] { return steps_->wait(staging(), s.id, 30'000); });
  EXPECT_FALSE(ready(waiter)) << "returned a RUNNING step before its timeout";
  std::thread worker([&] { complete_ok(w, commit, {{"version", 3}, {"tiles", 100}}); });
  worker.join();
  ASSERT_EQ(waiter.wait_for(kHang), std::future_status::ready);
  auto got = waiter.get();
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  EXPECT_EQ(got->state, StepState::kCompleted);
  EXPECT_EQ(got->version, 3);
}

TEST_F(ClusterTest, WaitReturnsTheStepAsItIsAtTheTimeoutOnTheClock) {
  store::Step s = submit(staging());
  scheduler_->pass();
  const uint64_t waits = clock_.waits();
  auto waiter =
      std::async(std::launch::async, [&] { return steps_->wait(staging(), s.id, 10'000); });
  // Its timeout counts from when it began: only move the clock once it waits.
  ASSERT_TRUE(clock_.await_wait(waits));
  // Unrelated events wake it; it looks again and keeps waiting.
  submit(production(), "other");
  clock_.advance(9'999);
  events_->notify();
  EXPECT_FALSE(ready(waiter)) << "returned before its timeout";
  clock_.advance(1);
  ASSERT_EQ(waiter.wait_for(kHang), std::future_status::ready);
  auto got = waiter.get();
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->state, StepState::kRunning);

  // An ended step answers at once, whatever the timeout.
  ASSERT_TRUE(steps_->cancel(staging(), s.id, "TERM").is_ok());
  scheduler_->pass();
  auto ended = steps_->wait(staging(), s.id, 60'000);
  ASSERT_TRUE(ended.is_ok());
  EXPECT_EQ(ended->state, StepState::kCancelled);
}

TEST_F(ClusterTest, WaitReturnsOnceShutdownClosesTheEvents) {
  store::Step s = submit(staging());
  auto waiter =
      std::async(std::launch::async, [&] { return steps_->wait(staging(), s.id, 60'000); });
  events_->close();
  ASSERT_EQ(waiter.wait_for(kHang), std::future_status::ready);
  auto got = waiter.get();
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->state, StepState::kPending);
}

// --- Scheduler::wait_for_leases ---------------------------------------------------------------

TEST_F(ClusterTest, WaitForLeasesReturnsWhenTheLastLeasedTaskReports) {
  store::Step s = submit(staging());
  scheduler_->pass();
  std::string w = register_worker();
  std::vector<LeasedTask> held = lease(w, 2);
  ASSERT_EQ(held.size(), 2u);
  ASSERT_TRUE(lifecycle_.begin_stopping());

  auto waiter = std::async(std::launch::async,
                           [&] { return scheduler_->wait_for_leases(clock_.now_ms() + 60'000); });
  EXPECT_TRUE(complete_ok(w, held[0]));
  EXPECT_FALSE(ready(waiter)) << "returned with a task still leased";
  EXPECT_TRUE(complete_ok(w, held[1]));
  ASSERT_EQ(waiter.wait_for(kHang), std::future_status::ready);
  EXPECT_EQ(waiter.get(), 0);
  EXPECT_EQ(state(staging(), s.id), StepState::kRunning);
}

TEST_F(ClusterTest, WaitForLeasesGivesUpAtTheDeadlineNamingWhatIsStillLeased) {
  submit(staging());
  scheduler_->pass();
  std::string w = register_worker();
  ASSERT_EQ(lease(w, 2).size(), 2u);
  const int64_t deadline = clock_.now_ms() + 30'000;
  auto waiter =
      std::async(std::launch::async, [&] { return scheduler_->wait_for_leases(deadline); });
  clock_.advance(29'999);
  EXPECT_FALSE(ready(waiter)) << "gave up before its deadline";
  clock_.advance(1);
  ASSERT_EQ(waiter.wait_for(kHang), std::future_status::ready);
  EXPECT_EQ(waiter.get(), 2);
  EXPECT_EQ(scheduler_->wait_for_leases(clock_.now_ms()), 2);
}

// --- the scheduler's thread ---------------------------------------------------------------------

// Counts the scheduler's passes through its tick hooks, so the test can wait
// for "a whole pass after X" instead of for a stretch of time.
class PassCounter {
 public:
  void hook(bool stopping_hook) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++(stopping_hook ? while_stopping_ : normal_);
    }
    cv_.notify_all();
  }
  int normal() const {
    std::lock_guard<std::mutex> lock(mu_);
    return normal_;
  }
  int while_stopping() const {
    std::lock_guard<std::mutex> lock(mu_);
    return while_stopping_;
  }
  // Until the hook marked while_stopping has run `n` times in all. The
  // scheduler waits for its period on the (manual) clock or for a kick:
  // `kick` is called until then, each call starting one more pass.
  template <typename Kick>
  bool await_while_stopping(int n, Kick kick) const {
    const auto end = std::chrono::steady_clock::now() + kHang;
    std::unique_lock<std::mutex> lock(mu_);
    while (while_stopping_ < n) {
      if (std::chrono::steady_clock::now() >= end) return false;
      lock.unlock();
      kick();
      lock.lock();
      cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return while_stopping_ >= n; });
    }
    return true;
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  int normal_ = 0;
  int while_stopping_ = 0;
};

TEST_F(ClusterTest, SchedulerThreadStartsASubmittedStepAndRunsItsTickHooks) {
  PassCounter passes;
  scheduler_->add_tick([&](int64_t) { passes.hook(false); }, /*while_stopping=*/false);
  scheduler_->add_tick([&](int64_t) { passes.hook(true); }, /*while_stopping=*/true);
  scheduler_->start();
  auto kick = [this] { scheduler_->kick(); };

  // The submit's event kicks the thread. Two more passes after it have
  // certainly begun after the submit: by then the step runs, without this
  // thread calling pass().
  store::Step s = submit(staging());
  const int after_submit = passes.while_stopping();
  ASSERT_TRUE(passes.await_while_stopping(after_submit + 2, kick));
  EXPECT_EQ(state(staging(), s.id), StepState::kRunning);
  EXPECT_NE(log_of(s.id).find("step RUNNING"), std::string::npos);
  EXPECT_GE(passes.normal(), 1);

  // Once stopping, hooks marked so still run and the others do not (the
  // pass under way may finish with them, once).
  ASSERT_TRUE(lifecycle_.begin_stopping());
  const int normal_then = passes.normal();
  const int stopping_then = passes.while_stopping();
  ASSERT_TRUE(passes.await_while_stopping(stopping_then + 2, kick));
  EXPECT_LE(passes.normal(), normal_then + 1);

  // Every pass from here on began stopping: a PENDING step stays so.
  // Submitted through the store, since the service refuses while stopping.
  store::NewStep ns;
  ns.environment = "production";
  ns.name = "late";
  ns.action_on_failure = "CONTINUE";
  ns.layer = "late";
  ns.partitions = 1;
  auto late = store_->submit(ns, clock_.now_ms());
  ASSERT_TRUE(late.is_ok());
  scheduler_->kick();
  const int after_late = passes.while_stopping();
  ASSERT_TRUE(passes.await_while_stopping(after_late + 2, kick));
  EXPECT_EQ(state(production(), late->id), StepState::kPending) << "a step started while stopping";

  scheduler_->stop();
  scheduler_->stop();  // idempotent
}

}  // namespace
}  // namespace kiln::cluster
