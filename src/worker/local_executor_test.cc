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

  // `script` runs under /bin/sh -c; the node arguments the executor appends
  // ("--slots N --node ID") become its $1..$4.
  LocalExecutorOptions options(const std::string& script) {
    LocalExecutorOptions o;
    o.server_url = "http://127.0.0.1:1";
    o.token = "s3cret-token";
    o.state_dir = dir_.string();
    o.command = {"/bin/sh", "-c", script, "worker"};
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

  static std::vector<int64_t> pids(const LocalExecutor& ex) {
    std::vector<int64_t> out;
    for (const NodeProcess& n : ex.status().nodes)
      if (n.pid != 0) out.push_back(n.pid);
    return out;
  }

  fs::path dir_;
  std::mutex mu_;
  std::vector<int64_t> exited_;
};

TEST_F(LocalExecutorTest, RestartsACrashedNodeWorkerAndReportsIt) {
  LocalExecutor ex(options("exec /bin/sleep 1000"));
  ASSERT_TRUE(ex.start().is_ok());
  ASSERT_TRUE(ex.launch_node("core-1", 3).is_ok());
  ASSERT_TRUE(ex.launch_node("core-2", 3).is_ok());
  ExecutorStatus st = ex.status();
  EXPECT_EQ(st.kind, "local");
  ASSERT_EQ(st.nodes.size(), 2u);
  EXPECT_EQ(st.nodes[0].node_id, "core-1");
  EXPECT_EQ(st.nodes[0].slots, 3);
  std::vector<int64_t> running = pids(ex);
  ASSERT_EQ(running.size(), 2u);
  for (int64_t pid : running) EXPECT_TRUE(alive(pid)) << pid;

  const int64_t victim = running[0];
  const int64_t survivor = running[1];
  ASSERT_EQ(::kill(static_cast<pid_t>(victim), SIGKILL), 0);
  ASSERT_TRUE(tick_until(ex, [&] { return ex.status().restarts == 1 && pids(ex).size() == 2; }))
      << "the killed worker was not started again";
  EXPECT_EQ(exited(), std::vector<int64_t>{victim});
  running = pids(ex);
  EXPECT_EQ(std::count(running.begin(), running.end(), victim), 0);
  EXPECT_EQ(std::count(running.begin(), running.end(), survivor), 1) << "left alone";
  for (int64_t pid : running) EXPECT_TRUE(alive(pid)) << pid;

  ex.stop(2s);
  EXPECT_TRUE(pids(ex).empty());
  EXPECT_EQ(exited().size(), 3u);  // the victim, then both at stop
  // stop() reaped them: no zombie is left to find.
  for (int64_t pid : exited()) EXPECT_FALSE(alive(pid)) << pid;
  ex.tick();  // does nothing once stopped
  EXPECT_TRUE(pids(ex).empty());
}

TEST_F(LocalExecutorTest, WorkersGetTheTokenTheirNodeAndLogToTheStateDir) {
  LocalExecutor ex(
      options("echo token=$KILN_WORKER_TOKEN args=\"$*\"; echo oops >&2; "
              "exec /bin/sleep 1000"));
  ASSERT_TRUE(ex.start().is_ok());
  ASSERT_TRUE(ex.launch_node("core-1", 2).is_ok());
  ASSERT_TRUE(ex.launch_node("spot-4", 8).is_ok());
  const fs::path log1 = dir_ / "logs" / "worker-core-1.log";
  const fs::path log2 = dir_ / "logs" / "worker-spot-4.log";
  ASSERT_TRUE(tick_until(ex, [&] {
    return read_file(log1).find("oops") != std::string::npos &&
           read_file(log2).find("oops") != std::string::npos;
  }));
  EXPECT_NE(read_file(log1).find("token=s3cret-token args=--slots 2 --node core-1\n"),
            std::string::npos)
      << read_file(log1);
  EXPECT_NE(read_file(log2).find("args=--slots 8 --node spot-4\n"), std::string::npos)
      << read_file(log2);
  EXPECT_EQ(ex.launch_node("core-1", 2).code(), StatusCode::kInvalidArgument) << "id in use";
  ex.stop(2s);
}

TEST_F(LocalExecutorTest, TerminateNodeStopsItForGoodKillingItAfterTheGrace) {
  // `exec` keeps the ignored SIGTERM across into sleep.
  LocalExecutor ex(options("trap '' TERM; exec /bin/sleep 1000"));
  ASSERT_TRUE(ex.start().is_ok());
  ASSERT_TRUE(ex.launch_node("spot-1", 2).is_ok());
  ASSERT_TRUE(ex.launch_node("core-1", 2).is_ok());
  std::this_thread::sleep_for(200ms);  // let sh set the trap before the signal
  const int64_t spot = ex.status().nodes[0].pid;
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(ex.terminate_node("spot-1", 300ms).is_ok());
  ASSERT_TRUE(tick_until(ex, [&] { return ex.status().nodes.size() == 1; }));
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 300ms) << "killed before the grace period";
  EXPECT_FALSE(alive(spot));
  EXPECT_EQ(exited(), std::vector<int64_t>{spot});
  EXPECT_EQ(ex.status().nodes[0].node_id, "core-1");
  EXPECT_EQ(ex.status().restarts, 0) << "a terminated node is not restarted";
  EXPECT_EQ(ex.terminate_node("spot-1", 0ms).code(), StatusCode::kNotFound);
  ex.stop(300ms);
  EXPECT_EQ(exited().size(), 2u);
}

TEST_F(LocalExecutorTest, StopKillsWorkersThatIgnoreSigterm) {
  LocalExecutor ex(options("trap '' TERM; exec /bin/sleep 1000"));
  ASSERT_TRUE(ex.start().is_ok());
  ASSERT_TRUE(ex.launch_node("core-1", 1).is_ok());
  ASSERT_TRUE(ex.launch_node("core-2", 1).is_ok());
  const std::vector<int64_t> before = pids(ex);
  std::this_thread::sleep_for(200ms);  // let sh set the trap before the signal
  const auto t0 = std::chrono::steady_clock::now();
  ex.stop(300ms);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 300ms) << "stop gave up before the grace period";
  EXPECT_LT(took, 5s);
  for (int64_t pid : before) EXPECT_FALSE(alive(pid)) << pid;
  EXPECT_EQ(exited().size(), 2u);
}

TEST_F(LocalExecutorTest, BackoffGrowsWhileWorkersDieYoung) {
  LocalExecutor ex(options("exit 1"));
  ASSERT_TRUE(ex.start().is_ok());
  ASSERT_TRUE(ex.launch_node("core-1", 1).is_ok());
  // 100, 200, 400, 400 ms: four restarts take at least 1.1 s.
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(tick_until(ex, [&] { return ex.status().restarts >= 4; }));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 1100ms);
  EXPECT_GE(exited().size(), 4u);
  ex.stop(1s);
}

TEST_F(LocalExecutorTest, LaunchFailsForAMissingProgramAndKeepsNothing) {
  LocalExecutorOptions o = options("");
  o.command = {"/nonexistent/kiln", "worker"};
  LocalExecutor ex(o);
  ASSERT_TRUE(ex.start().is_ok());
  Status st = ex.launch_node("core-1", 2);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("/nonexistent/kiln"), std::string::npos) << st.message();
  EXPECT_TRUE(ex.status().nodes.empty());
}

}  // namespace
}  // namespace kiln::worker
