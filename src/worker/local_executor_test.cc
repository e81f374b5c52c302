// The local executor with real child processes standing in for workers
// (/bin/sleep, /bin/sh): started with the token in their environment and
// their output in the worker log, restarted after they die, reported, and
// stopped with a grace period.
#include "worker/local_executor.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace kiln::worker {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

bool alive(int64_t pid) { return ::kill(static_cast<pid_t>(pid), 0) == 0; }

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Calls tick() until `done` holds or 10 s pass.
template <typename Pred>
bool tick_until(LocalExecutor& ex, Pred done) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    ex.tick();
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

class LocalExecutorTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() / ("kiln_executor_test_" + std::to_string(::getpid()) + "_" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  LocalExecutorOptions options(std::vector<std::string> command) {
    LocalExecutorOptions o;
    o.server_url = "http://127.0.0.1:1";
    o.token = "s3cret-token";
    o.workers = 2;
    o.slots_per_worker = 3;
    o.state_dir = dir_.string();
    o.command = std::move(command);
    o.min_backoff = 100ms;
    o.max_backoff = 400ms;
    o.on_worker_exit = [this](int64_t pid) {
      std::lock_guard<std::mutex> lock(mu_);
      exited_.push_back(pid);
    };
    return o;
  }

  std::vector<int64_t> exited() {
    std::lock_guard<std::mutex> lock(mu_);
    return exited_;
  }

  fs::path dir_;
  std::mutex mu_;
  std::vector<int64_t> exited_;
};

TEST_F(LocalExecutorTest, RestartsAWorkerThatDiesAndReportsIt) {
  LocalExecutor ex(options({"/bin/sleep", "1000"}));
  ASSERT_TRUE(ex.start().is_ok());
  ExecutorStatus st = ex.status();
  EXPECT_EQ(st.kind, "local");
  EXPECT_EQ(st.workers_wanted, 2);
  EXPECT_EQ(st.workers_running, 2);
  EXPECT_EQ(st.slots_per_worker, 3);
  ASSERT_EQ(st.pids.size(), 2u);
  for (int64_t pid : st.pids) EXPECT_TRUE(alive(pid)) << pid;

  const int64_t victim = st.pids[0];
  const int64_t survivor = st.pids[1];
  ASSERT_EQ(::kill(static_cast<pid_t>(victim), SIGKILL), 0);
  ASSERT_TRUE(tick_until(ex, [&] {
    ExecutorStatus now = ex.status();
    return now.restarts == 1 && now.workers_running == 2;
  })) << "the killed worker was not started again";
  EXPECT_EQ(exited(), std::vector<int64_t>{victim});
  st = ex.status();
  EXPECT_EQ(std::count(st.pids.begin(), st.pids.end(), victim), 0);
  EXPECT_EQ(std::count(st.pids.begin(), st.pids.end(), survivor), 1) << "left alone";
  const std::vector<int64_t> running = st.pids;
  for (int64_t pid : running) EXPECT_TRUE(alive(pid)) << pid;

  ex.stop(2s);
  st = ex.status();
  EXPECT_EQ(st.workers_running, 0);
  EXPECT_TRUE(st.pids.empty());
  EXPECT_EQ(exited().size(), 3u);  // the victim, then both at stop
  // stop() reaped them: no zombie is left to find.
  for (int64_t pid : exited()) EXPECT_FALSE(alive(pid)) << pid;
  ex.tick();  // does nothing once stopped
  EXPECT_EQ(ex.status().workers_running, 0);
}

TEST_F(LocalExecutorTest, WorkersGetTheTokenAndLogToTheStateDir) {
  LocalExecutor ex(options({"/bin/sh", "-c",
                            "echo token=$KILN_WORKER_TOKEN; echo oops >&2; "
                            "exec /bin/sleep 1000"}));
  ASSERT_TRUE(ex.start().is_ok());
  const fs::path log1 = dir_ / "logs" / "worker-1.log";
  const fs::path log2 = dir_ / "logs" / "worker-2.log";
  ASSERT_TRUE(tick_until(ex, [&] {
    return read_file(log1).find("oops") != std::string::npos &&
           read_file(log2).find("oops") != std::string::npos;
  }));
  EXPECT_NE(read_file(log1).find("token=s3cret-token\n"), std::string::npos) << read_file(log1);
  ex.stop(2s);
}

TEST_F(LocalExecutorTest, StopKillsWorkersThatIgnoreSigterm) {
  // `exec` keeps the ignored SIGTERM across into sleep.
  LocalExecutor ex(options({"/bin/sh", "-c", "trap '' TERM; exec /bin/sleep 1000"}));
  ASSERT_TRUE(ex.start().is_ok());
  const std::vector<int64_t> pids = ex.status().pids;
  std::this_thread::sleep_for(200ms);  // let sh set the trap before the signal
  const auto t0 = std::chrono::steady_clock::now();
  ex.stop(300ms);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 300ms) << "stop gave up before the grace period";
  EXPECT_LT(took, 5s);
  for (int64_t pid : pids) EXPECT_FALSE(alive(pid)) << pid;
  EXPECT_EQ(exited().size(), 2u);
}

TEST_F(LocalExecutorTest, BackoffGrowsWhileWorkersDieYoung) {
  LocalExecutorOptions o = options({"/bin/false"});
  o.workers = 1;
  LocalExecutor ex(o);
  ASSERT_TRUE(ex.start().is_ok());
  // 100, 200, 400, 400 ms: four restarts take at least 1.1 s.
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(tick_until(ex, [&] { return ex.status().restarts >= 4; }));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 1100ms);
  EXPECT_GE(exited().size(), 4u);
  ex.stop(1s);
}

TEST_F(LocalExecutorTest, StartFailsForAMissingProgram) {
  LocalExecutor ex(options({"/nonexistent/kiln", "worker"}));
  Status st = ex.start();
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("/nonexistent/kiln"), std::string::npos) << st.message();
  EXPECT_EQ(ex.status().workers_running, 0);
}

}  // namespace
}  // namespace kiln::worker
