// StepWaiters: long polls answered by step events, deadlines and shutdown,
// over a StepService whose steps the test moves between states. Waits end
// by an event or by advancing the ManualClock, never by real time passing.
#include "server/step_waiters.h"

#include <chrono>
#include <future>
#include <map>

#include <gtest/gtest.h>

namespace kiln::server {
namespace {

using namespace std::chrono_literals;
using store::StepState;

constexpr auto kHang = 30s;  // only a hang reaches it

// Steps whose state the test sets; counts the reads.
class SettableSteps final : public StepService {
 public:
  void set(const std::string& id, StepState state) {
    MutexLock lock(&mu_);
    states_[id] = state;
  }
  // Blocks (bounded) until get() has been called at least n times.
  bool wait_reads(int n) {
    MutexLock lock(&mu_);
    const int64_t deadline = system_clock().now_ms() + 30'000;
    while (reads_ < n) {
      if (!read_.wait_until(&mu_, system_clock(), deadline)) return false;
    }
    return true;
  }

  Result<store::Step> get(const EnvironmentConfig& env, const std::string& id) override {
    MutexLock lock(&mu_);
    ++reads_;
    read_.notify_all();
    auto it = states_.find(id);
    if (it == states_.end()) return not_found("step '" + id + "' not found");
    store::Step s;
    s.id = id;
    s.environment = env.name;
    s.state = it->second;
    return s;
  }
  Result<store::Step> submit(const EnvironmentConfig&, const SubmitRequest&) override {
    return internal_error("unused");
  }
  Result<std::vector<store::Step>> submit_all(const EnvironmentConfig&,
                                              const std::vector<SubmitRequest>&, size_t*) override {
    return internal_error("unused");
  }
  Result<store::ListPage> list(const EnvironmentConfig&, store::ListQuery) override {
    return internal_error("unused");
  }
  Result<store::Step> cancel(const EnvironmentConfig&, const std::string&,
                             const std::string&) override {
    return internal_error("unused");
  }
  Result<ClusterInfo> cluster(const EnvironmentConfig&) override {
    return internal_error("unused");
  }
  Status set_concurrency(const EnvironmentConfig&, int64_t) override {
    return internal_error("unused");
  }
  std::string log_location(const std::string&) const override { return ""; }

 private:
  Mutex mu_;
  CondVar read_;
  std::map<std::string, StepState> states_ GUARDED_BY(mu_);
  int reads_ GUARDED_BY(mu_) = 0;
};

class StepWaitersTest : public testing::Test {
 protected:
  StepWaitersTest() : events_(clock_), waiters_(steps_, events_, clock_) {
    env_.name = "production";
  }

  // Registers a wait; the future gets the answer.
  std::future<Result<store::Step>> wait(const std::string& id, int64_t timeout_ms) {
    auto promise = std::make_shared<std::promise<Result<store::Step>>>();
    auto future = promise->get_future();
    waiters_.add(
        env_, id, clock_.now_ms() + timeout_ms,
        [promise](Result<store::Step> s) { promise->set_value(std::move(s)); }, nullptr);
    return future;
  }

  ManualClock clock_;
  SettableSteps steps_;
  cluster::StepEvents events_;
  EnvironmentConfig env_;
  StepWaiters waiters_;
};

TEST_F(StepWaitersTest, AnEventAnswersTheWaitersOfAStepThatEnded) {
  steps_.set("s-1", StepState::kRunning);
  steps_.set("s-2", StepState::kRunning);
  auto a = wait("s-1", 60'000);
  auto b = wait("s-1", 60'000);
  auto c = wait("s-2", 60'000);
  ASSERT_TRUE(steps_.wait_reads(2));  // each step read once when registered
  EXPECT_EQ(a.wait_for(0s), std::future_status::timeout) << "answered while RUNNING";
  steps_.set("s-1", StepState::kCompleted);
  events_.notify();
  ASSERT_EQ(a.wait_for(kHang), std::future_status::ready);
  ASSERT_EQ(b.wait_for(kHang), std::future_status::ready);
  EXPECT_EQ(a.get()->state, StepState::kCompleted);
  EXPECT_EQ(b.get()->state, StepState::kCompleted);
  // s-2 has not ended: it waits on.
  EXPECT_EQ(c.wait_for(0s), std::future_status::timeout);
  steps_.set("s-2", StepState::kFailed);
  events_.notify();
  ASSERT_EQ(c.wait_for(kHang), std::future_status::ready);
  EXPECT_EQ(c.get()->state, StepState::kFailed);
  EXPECT_EQ(waiters_.pending(), 0u);
}

TEST_F(StepWaitersTest, TheDeadlineAnswersWithTheStepAsItIs) {
  steps_.set("s-1", StepState::kPending);
  auto a = wait("s-1", 10'000);
  auto b = wait("s-1", 20'000);
  ASSERT_TRUE(steps_.wait_reads(1));
  clock_.advance(10'000);
  ASSERT_EQ(a.wait_for(kHang), std::future_status::ready);
  EXPECT_EQ(a.get()->state, StepState::kPending);
  EXPECT_EQ(b.wait_for(0s), std::future_status::timeout) << "answered before its deadline";
  clock_.advance(10'000);
  ASSERT_EQ(b.wait_for(kHang), std::future_status::ready);
  EXPECT_EQ(b.get()->state, StepState::kPending);
}

TEST_F(StepWaitersTest, AStepAlreadyEndedOrMissingIsAnsweredAtOnce) {
  steps_.set("s-1", StepState::kCancelled);
  auto a = wait("s-1", 60'000);
  auto missing = wait("s-404", 60'000);
  ASSERT_EQ(a.wait_for(kHang), std::future_status::ready);
  EXPECT_EQ(a.get()->state, StepState::kCancelled);
  ASSERT_EQ(missing.wait_for(kHang), std::future_status::ready);
  Result<store::Step> m = missing.get();
  ASSERT_FALSE(m.is_ok());
  EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
}

TEST_F(StepWaitersTest, ShutdownAnswersEveryWaiter) {
  steps_.set("s-1", StepState::kRunning);
  auto a = wait("s-1", 60'000);
  ASSERT_TRUE(steps_.wait_reads(1));
  events_.close();
  ASSERT_EQ(a.wait_for(kHang), std::future_status::ready);
  EXPECT_EQ(a.get()->state, StepState::kRunning);
}

}  // namespace
}  // namespace kiln::server
