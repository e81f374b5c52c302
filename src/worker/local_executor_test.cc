// The local executor with real child processes standing in for workers
// (/bin/sleep, /bin/sh): started with the token in their environment and
// their output in the worker log, restarted after they die, reported, and
// stopped with a grace period. Backoffs and grace periods run on a
// ManualClock the tests advance; a worker that must be signalled only once
// it is ready says so in a file, and so does one that got its SIGTERM.
#include "worker/local_executor.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/clock.h"
#include "common/mutex.h"

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

// Polls `done` every few milliseconds until it holds or 10 s (real time)
// pass.
template <typename Pred>
bool poll_until(Pred done) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

// Calls tick() until `done` holds or 10 s (real time) pass.
template <typename Pred>
bool tick_until(LocalExecutor& ex, Pred done) {
  return poll_until([&] {
    ex.tick();
    return done();
  });
}

class LocalExecutorTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() / ("kiln_executor_test_" + std::to_string(::getpid()) + "_" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
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
    o.clock = &clock_;
    o.on_worker_exit = [this](int64_t pid) {
      MutexLock lock(&mu_);
      exited_.push_back(pid);
    };
    return o;
  }

  // A worker that does not stop on SIGTERM: it writes a line to
  // <dir>/<node>.ready once its trap is set, and one to <dir>/<node>.term
  // for each SIGTERM it gets. Only SIGKILL ends it. (The loop runs short
  // sleeps in the foreground because sh runs a trap only between commands.)
  std::string stubborn_worker() const {
    const std::string d = dir_.string();
    return "trap 'echo term >> \"" + d + "/$4.term\"' TERM; echo ready >> \"" + d +
           "/$4.ready\"; while :; do /bin/sleep 0.05; done";
  }
  bool has_line(const std::string& node, const std::string& what) const {
    return !read_file(dir_ / (node + "." + what)).empty();
  }

  std::vector<int64_t> exited() {
    MutexLock lock(&mu_);
    return exited_;
  }

  static std::vector<int64_t> pids(const LocalExecutor& ex) {
    std::vector<int64_t> out;
    for (const NodeProcess& n : ex.status().nodes)
      if (n.pid != 0) out.push_back(n.pid);
    return out;
  }

  // stop(grace) on a thread, which must end without the clock moving (the
  // workers stop on SIGTERM). If it does not, the clock is advanced past
  // the grace so the test fails instead of hanging.
  void stop_without_advancing(LocalExecutor& ex, std::chrono::milliseconds grace) {
    std::atomic<bool> done{false};
    std::thread stopper([&] {
      ex.stop(grace);
      done = true;
    });
    const bool in_time = poll_until([&] { return done.load(); });
    if (!in_time) clock_.advance(grace.count());
    stopper.join();
    EXPECT_TRUE(in_time) << "stop() waited for the grace period although the workers ended";
  }

  fs::path dir_;
  ManualClock clock_;
  Mutex mu_;
  std::vector<int64_t> exited_ GUARDED_BY(mu_);
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
  ASSERT_TRUE(tick_until(ex, [&] { return exited().size() == 1; }));
  EXPECT_EQ(exited(), std::vector<int64_t>{victim});
  // Reported at once, started again only after the backoff.
  ex.tick();
  EXPECT_EQ(ex.status().restarts, 0);
  EXPECT_EQ(pids(ex), std::vector<int64_t>{survivor});
  clock_.advance(100);
  ex.tick();
  EXPECT_EQ(ex.status().restarts, 1);
  running = pids(ex);
  ASSERT_EQ(running.size(), 2u);
  EXPECT_EQ(std::count(running.begin(), running.end(), victim), 0);
  EXPECT_EQ(std::count(running.begin(), running.end(), survivor), 1) << "left alone";
  for (int64_t pid : running) EXPECT_TRUE(alive(pid)) << pid;

  stop_without_advancing(ex, 2s);
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
  stop_without_advancing(ex, 2s);
}

TEST_F(LocalExecutorTest, TerminateNodeStopsItForGoodKillingItAfterTheGrace) {
  LocalExecutor ex(options(stubborn_worker()));
  ASSERT_TRUE(ex.start().is_ok());
  ASSERT_TRUE(ex.launch_node("spot-1", 2).is_ok());
  ASSERT_TRUE(ex.launch_node("core-1", 2).is_ok());
  ASSERT_TRUE(poll_until([&] { return has_line("spot-1", "ready"); }));
  const int64_t spot = ex.status().nodes[0].pid;

  ASSERT_TRUE(ex.terminate_node("spot-1", 300ms).is_ok());
  ASSERT_TRUE(poll_until([&] { return has_line("spot-1", "term"); })) << "no SIGTERM arrived";
  // Within the grace it is left running (only SIGKILL ends it).
  clock_.advance(299);
  ex.tick();
  EXPECT_TRUE(alive(spot));
  ASSERT_EQ(ex.status().nodes.size(), 2u);
  EXPECT_TRUE(ex.status().nodes[0].stopping);
  EXPECT_TRUE(exited().empty());
  // Then killed, reported, and forgotten.
  clock_.advance(1);
  ASSERT_TRUE(tick_until(ex, [&] { return ex.status().nodes.size() == 1; }));
  EXPECT_FALSE(alive(spot));
  EXPECT_EQ(exited(), std::vector<int64_t>{spot});
  EXPECT_EQ(ex.status().nodes[0].node_id, "core-1");
  EXPECT_EQ(ex.status().restarts, 0) << "a terminated node is not restarted";
  EXPECT_EQ(ex.terminate_node("spot-1", 0ms).code(), StatusCode::kNotFound);
  EXPECT_FALSE(has_line("core-1", "term")) << "the other node was left alone";

  // The stubborn core-1 is killed once stop()'s grace has passed.
  std::thread stopper([&] { ex.stop(300ms); });
  ASSERT_TRUE(poll_until([&] { return has_line("core-1", "term"); }));
  clock_.advance(300);
  stopper.join();
  EXPECT_EQ(exited().size(), 2u);
}

TEST_F(LocalExecutorTest, StopKillsWorkersThatIgnoreSigtermOnceTheGraceHasPassed) {
  LocalExecutor ex(options(stubborn_worker()));
  ASSERT_TRUE(ex.start().is_ok());
  ASSERT_TRUE(ex.launch_node("core-1", 1).is_ok());
  ASSERT_TRUE(ex.launch_node("core-2", 1).is_ok());
  const std::vector<int64_t> before = pids(ex);
  ASSERT_TRUE(
      poll_until([&] { return has_line("core-1", "ready") && has_line("core-2", "ready"); }));

  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    ex.stop(300ms);
    stopped = true;
  });
  // Both got their SIGTERM (and stop() set its deadline before sending it);
  // until the clock passes the grace, stop() waits and they live.
  ASSERT_TRUE(poll_until([&] { return has_line("core-1", "term") && has_line("core-2", "term"); }));
  clock_.advance(299);
  for (int64_t pid : before) EXPECT_TRUE(alive(pid)) << pid;
  EXPECT_FALSE(stopped.load());
  clock_.advance(1);
  stopper.join();
  for (int64_t pid : before) EXPECT_FALSE(alive(pid)) << pid;
  EXPECT_EQ(exited().size(), 2u);
}

TEST_F(LocalExecutorTest, BackoffGrowsWhileWorkersDieYoungAndResetsAfterALongLife) {
  // Dies at once, unless <dir>/stay exists.
  LocalExecutor ex(
      options("[ -e '" + (dir_ / "stay").string() + "' ] && exec /bin/sleep 1000; exit 1"));
  ASSERT_TRUE(ex.start().is_ok());
  ASSERT_TRUE(ex.launch_node("core-1", 1).is_ok());

  // Each restart waits exactly its backoff: 100, 200, 400, then 400 ms (the
  // maximum). The fourth start finds <dir>/stay and lives.
  int64_t restarts = 0;
  for (int64_t backoff : {100, 200, 400, 400}) {
    ASSERT_TRUE(tick_until(ex, [&] { return exited().size() == size_t(restarts + 1); }))
        << "start " << restarts << " did not end";
    if (backoff == 400 && restarts == 3) std::ofstream(dir_ / "stay") << "stay\n";
    clock_.advance(backoff - 1);
    ex.tick();
    EXPECT_EQ(ex.status().restarts, restarts) << "restarted before its " << backoff << " ms";
    clock_.advance(1);
    ex.tick();
    EXPECT_EQ(ex.status().restarts, ++restarts) << "not restarted after " << backoff << " ms";
  }
  // A worker that lived longer than `young` (10 s) and then died waits the
  // minimum again.
  ASSERT_EQ(pids(ex).size(), 1u);
  clock_.advance(10'000);
  ASSERT_EQ(::kill(static_cast<pid_t>(pids(ex)[0]), SIGKILL), 0);
  ASSERT_TRUE(tick_until(ex, [&] { return exited().size() == 5; }));
  clock_.advance(99);
  ex.tick();
  EXPECT_EQ(ex.status().restarts, 4);
  clock_.advance(1);
  ex.tick();
  EXPECT_EQ(ex.status().restarts, 5);
  stop_without_advancing(ex, 1s);
}

// `kiln serve` launches its warm core in one go (500 one-slot nodes in
// issue 14's fleet target): every node gets its own worker, started at the
// nice level asked from the start, so that the burst of starting workers
// yields the CPU to the server answering their registrations.
TEST_F(LocalExecutorTest, ABurstOfLaunchesStartsEveryNodesWorkerAtTheNiceLevelAsked) {
  const int ours = ::getpriority(PRIO_PROCESS, 0);
  const int nice = ours < 10 ? 10 : 19;
  LocalExecutorOptions o = options("exec /bin/sleep 1000");
  o.nice = nice;
  LocalExecutor ex(o);
  ASSERT_TRUE(ex.start().is_ok());
  constexpr int kNodes = 100;
  for (int i = 1; i <= kNodes; ++i)
    ASSERT_TRUE(ex.launch_node("core-" + std::to_string(i), 1).is_ok()) << i;
  const ExecutorStatus st = ex.status();
  ASSERT_EQ(st.nodes.size(), static_cast<size_t>(kNodes));
  std::vector<int64_t> seen;
  for (const NodeProcess& n : st.nodes) {
    ASSERT_NE(n.pid, 0) << n.node_id;
    EXPECT_TRUE(alive(n.pid)) << n.node_id;
    errno = 0;
    EXPECT_EQ(::getpriority(PRIO_PROCESS, static_cast<id_t>(n.pid)), nice) << n.node_id;
    EXPECT_EQ(errno, 0);
    EXPECT_TRUE(fs::exists(dir_ / "logs" / ("worker-" + n.node_id + ".log"))) << n.node_id;
    seen.push_back(n.pid);
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(std::unique(seen.begin(), seen.end()), seen.end()) << "one worker per node";
  ex.tick();
  EXPECT_EQ(ex.status().restarts, 0);
  stop_without_advancing(ex, 0ms);
  for (int64_t pid : seen) EXPECT_FALSE(alive(pid)) << pid;
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
