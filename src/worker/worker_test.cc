// The worker against a real HTTP peer that speaks the worker protocol
// (docs/cluster.md) and real task processes: small /bin/sh programs that
// behave like `kiln task run` (progress and result lines, an error line, a
// crash, a task that only stops when signalled). Tests of grace periods,
// heartbeats and the outage limit run the worker on a ManualClock they
// advance; the others on the system clock.
#include "worker/worker.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/process.h"
#include "common/sandbox.h"
#include "worker/task_process.h"

namespace kiln::worker {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;

constexpr char kToken[] = "worker-token";

// Behaves like `kiln task run --spec FILE` according to the spec's "mode".
constexpr char kTaskScript[] = R"sh(
spec="$2"
mode=$(sed -n 's/.*"mode":"\([a-z]*\)".*/\1/p' "$spec")
echo "task $mode starting" >&2
case "$mode" in
  ok)
    echo '{"tiles_done":5,"bytes_read":10,"bytes_written":20}'
    echo '{"result":{"answer":42}}' ;;
  error)
    echo '{"error":{"reason":"SOURCE_ERROR","message":"cannot open a.tif","permanent":true}}'
    exit 3 ;;
  crash)
    kill -9 $$ ;;
  slow)
    echo '{"tiles_done":7,"bytes_read":1,"bytes_written":2}'
    exec sleep 30 ;;
  graceful)
    trap 'echo "{\"error\":{\"reason\":\"CANCELLED\",\"message\":\"stopped by its trap\"}}"
          exit 130' TERM
    echo '{"tiles_done":3,"bytes_read":0,"bytes_written":0}'
    while :; do sleep 30 & wait $!; done ;;
  stubborn)
    trap '' TERM
    echo '{"tiles_done":1,"bytes_read":0,"bytes_written":0}'
    exec sleep 30 ;;
esac
)sh";

// The server side of the worker protocol, with a queue of tasks to hand out
// and a record of what the worker said.
class ProtocolServer {
 public:
  explicit ProtocolServer(std::string log_dir, int lease_seconds = 15)
      : log_dir_(std::move(log_dir)), lease_seconds_(lease_seconds) {
    auto route = [this](const char* path, json (ProtocolServer::*handler)(const json&)) {
      server_.Post(path, [this, handler](const httplib::Request& req, httplib::Response& res) {
        if (req.get_header_value("Authorization") != std::string("Bearer ") + kToken) {
          res.status = 401;
          res.set_content(R"({"error":{"code":"unauthorized","message":"bad token"}})",
                          "application/json");
          return;
        }
        json body = json::parse(req.body);
        MutexLock lock(&mu_);
        reply_status_ = 200;
        res.set_content((this->*handler)(body).dump(), "application/json");
        res.status = reply_status_;
      });
    };
    route("/internal/v1/register", &ProtocolServer::on_register);
    route("/internal/v1/lease", &ProtocolServer::on_lease);
    route("/internal/v1/heartbeat", &ProtocolServer::on_heartbeat);
    route("/internal/v1/complete", &ProtocolServer::on_complete);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // The port is bound already, so a worker could connect now; this only
    // waits for listen() so that stop() cannot come before it.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!server_.is_running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    EXPECT_TRUE(server_.is_running()) << "the protocol server did not start";
  }
  ~ProtocolServer() { stop(); }

  void stop() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  int64_t add_task(const std::string& mode) {
    MutexLock lock(&mu_);
    const int64_t id = next_id_++;
    queue_.push_back({{"task_id", id},
                      {"attempt", 1},
                      {"step_id", "s-WORKERTEST001"},
                      {"spec", {{"mode", mode}}},
                      {"log_path", log_dir_ + "/s-WORKERTEST001.log"}});
    return id;
  }
  void cancel(int64_t id, const std::string& sig) {
    MutexLock lock(&mu_);
    cancel_[id] = sig;
  }
  void disown(int64_t id) {
    MutexLock lock(&mu_);
    unknown_.insert(id);
  }
  std::map<int64_t, json> completions() {
    MutexLock lock(&mu_);
    return completions_;
  }
  // The latest progress a heartbeat carried for each task, and whether the
  // last heartbeat listed it.
  std::map<int64_t, json> progress() {
    MutexLock lock(&mu_);
    return progress_;
  }
  std::set<int64_t> last_heartbeat_tasks() {
    MutexLock lock(&mu_);
    return last_heartbeat_;
  }
  int heartbeats() {
    MutexLock lock(&mu_);
    return heartbeats_;
  }
  json registration() {
    MutexLock lock(&mu_);
    return registration_;
  }
  // Every attempt to register, taken or not.
  std::vector<json> registrations() {
    MutexLock lock(&mu_);
    return registrations_;
  }
  // The next `n` attempts to register get a 503, as from a server too
  // busy to answer.
  void refuse_registrations(int n) {
    MutexLock lock(&mu_);
    refuse_registrations_ = n;
  }
  // Notes the time of each attempt to register on `clock`.
  void stamp_registrations(const Clock* clock) {
    MutexLock lock(&mu_);
    stamp_clock_ = clock;
  }
  std::vector<int64_t> registration_times() {
    MutexLock lock(&mu_);
    return registration_times_;
  }

 private:
  // Called with mu_ held (route() takes it).
  json on_register(const json& body) REQUIRES(mu_) {
    registrations_.push_back(body);
    if (stamp_clock_) registration_times_.push_back(stamp_clock_->now_ms());
    if (refuse_registrations_ > 0) {
      --refuse_registrations_;
      reply_status_ = 503;
      return {{"error", {{"code", "unavailable"}, {"message", "busy"}}}};
    }
    registration_ = body;
    return {{"worker_id", "w-test"}, {"lease_seconds", lease_seconds_}, {"heartbeat_seconds", 1}};
  }
  json on_lease(const json& body) REQUIRES(mu_) {
    json tasks = json::array();
    for (int n = body.at("free_slots").get<int>(); n > 0 && !queue_.empty(); --n) {
      tasks.push_back(queue_.front());
      queue_.pop_front();
    }
    return {{"tasks", tasks}};
  }
  json on_heartbeat(const json& body) REQUIRES(mu_) {
    ++heartbeats_;
    last_heartbeat_.clear();
    json cancel = json::array();
    json unknown = json::array();
    for (const json& t : body.at("tasks")) {
      const int64_t id = t.at("task_id").get<int64_t>();
      last_heartbeat_.insert(id);
      progress_[id] = t;
      if (auto it = cancel_.find(id); it != cancel_.end())
        cancel.push_back({{"task_id", id}, {"signal", it->second}});
      if (unknown_.count(id)) unknown.push_back(id);
    }
    return {{"cancel", cancel}, {"unknown", unknown}};
  }
  json on_complete(const json& body) REQUIRES(mu_) {
    completions_[body.at("task_id").get<int64_t>()] = body;
    return json::object();
  }

  const std::string log_dir_;
  const int lease_seconds_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  Mutex mu_;
  int64_t next_id_ GUARDED_BY(mu_) = 1;
  std::deque<json> queue_ GUARDED_BY(mu_);
  std::map<int64_t, std::string> cancel_ GUARDED_BY(mu_);
  std::set<int64_t> unknown_ GUARDED_BY(mu_);
  std::map<int64_t, json> completions_ GUARDED_BY(mu_);
  std::map<int64_t, json> progress_ GUARDED_BY(mu_);
  std::set<int64_t> last_heartbeat_ GUARDED_BY(mu_);
  int heartbeats_ GUARDED_BY(mu_) = 0;
  json registration_ GUARDED_BY(mu_);
  std::vector<json> registrations_ GUARDED_BY(mu_);
  int refuse_registrations_ GUARDED_BY(mu_) = 0;
  const Clock* stamp_clock_ GUARDED_BY(mu_) = nullptr;
  std::vector<int64_t> registration_times_ GUARDED_BY(mu_);
  int reply_status_ GUARDED_BY(mu_) = 200;  // set by a handler for its answer
};

// run_worker on a thread of its own.
class WorkerThread {
 public:
  // `clock`: the ManualClock in options.clock, if any; advanced at teardown
  // so that a worker waiting out a grace period on it can end.
  explicit WorkerThread(WorkerOptions o, ManualClock* clock = nullptr)
      : options_(std::move(o)), clock_(clock) {
    thread_ = std::thread([this] {
      result_ = run_worker(options_, stop_);
      done_ = true;
    });
  }
  ~WorkerThread() {
    stop_.cancel();
    if (clock_) {
      const auto deadline = std::chrono::steady_clock::now() + 30s;
      while (!done_ && std::chrono::steady_clock::now() < deadline) {
        clock_->advance(1000);
        std::this_thread::sleep_for(5ms);
      }
    }
    if (thread_.joinable()) thread_.join();
  }
  void stop() { stop_.cancel(); }
  bool done() const { return done_; }
  // Joins; the worker must have ended or be ending.
  Status join() {
    thread_.join();
    return result_;
  }

 private:
  WorkerOptions options_;
  ManualClock* clock_;
  CancelToken stop_;
  Status result_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// Polls `done` until it holds or `limit` (real time) passes.
template <typename Pred>
bool wait_for(Pred done, std::chrono::milliseconds limit = 15s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

// Advances `clock` by `step_ms` between polls of `done` until it holds or
// 15 s (real time) pass: time moves for the worker (heartbeats, lease
// polls) only while the test waits for something that needs it.
template <typename Pred>
bool advance_until(ManualClock& clock, int64_t step_ms, Pred done) {
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    clock.advance(step_ms);
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

// A lease so long that a test advancing a ManualClock never reaches the
// worker's outage limit by accident.
constexpr int kLongLeaseSeconds = 3600;

class WorkerTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() / ("kiln_worker_test_" + std::to_string(::getpid()) + "_" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  WorkerOptions options(const ProtocolServer& server, int slots = 2) {
    WorkerOptions o;
    o.server_url = server.url();
    o.token = kToken;
    o.slots = slots;
    o.task_command = {"/bin/sh", "-c", kTaskScript, "kiln-task"};
    o.idle_poll = 50ms;
    o.cancel_grace = 500ms;
    o.shutdown_grace = 2s;
    return o;
  }
  // The same, on clock_.
  WorkerOptions manual_options(const ProtocolServer& server, int slots = 2) {
    WorkerOptions o = options(server, slots);
    o.clock = &clock_;
    return o;
  }

  // A lease of kTaskScript in `mode` (attempt 1, the test step's log).
  LeasedTask lease(int64_t task_id, const std::string& mode) const {
    LeasedTask lt;
    lt.task_id = task_id;
    lt.attempt = 1;
    lt.step_id = "s-WORKERTEST001";
    lt.spec = {{"mode", mode}};
    lt.log_path = (dir_ / "logs" / "s-WORKERTEST001.log").string();
    return lt;
  }
  // lt's task started as the worker starts one, on clock_; null (and a
  // failed expectation naming why) when it cannot start.
  std::unique_ptr<TaskProcess> start_task(const LeasedTask& lt) {
    auto started = TaskProcess::start(lt, {"/bin/sh", "-c", kTaskScript, "kiln-task"},
                                      dir_.string(), &os::posix_launcher(), &clock_);
    EXPECT_TRUE(started.is_ok()) << started.status().to_string();
    return started.is_ok() ? std::move(started).value() : nullptr;
  }

  std::string step_log() const {
    std::ifstream in(dir_ / "logs" / "s-WORKERTEST001.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  fs::path dir_;
  ManualClock clock_;
};

// A task that ignores SIGTERM is killed exactly when its grace period has
// passed on the clock, not before.
TEST_F(WorkerTest, TaskProcessEscalatesToSigkillAtTheEndOfTheGrace) {
  std::unique_ptr<TaskProcess> started = start_task(lease(7, "stubborn"));
  ASSERT_NE(started, nullptr);
  TaskProcess& t = *started;
  // Its progress line comes once its trap is set.
  ASSERT_TRUE(wait_for([&] {
    t.read_output();
    return t.progress().tiles_done == 1;
  }));
  EXPECT_FALSE(t.kill_deadline().has_value());

  const int64_t t0 = clock_.now_ms();
  t.signal(SIGTERM, StopCause::kCancel, 500ms);
  ASSERT_TRUE(t.kill_deadline().has_value());
  EXPECT_EQ(*t.kill_deadline(), t0 + 500);
  EXPECT_FALSE(t.escalate(t0 + 499));
  EXPECT_FALSE(t.poll_exit().has_value()) << "SIGTERM is ignored: it runs on";
  EXPECT_TRUE(t.escalate(t0 + 500));
  EXPECT_FALSE(t.escalate(t0 + 501)) << "killed once";
  std::optional<os::ExitStatus> exit;
  ASSERT_TRUE(wait_for([&] { return (exit = t.poll_exit()).has_value(); }));
  EXPECT_TRUE(exit->signaled);
  EXPECT_EQ(exit->signal, SIGKILL);
  const Completion c = t.completion();
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.reason, "CANCELLED");
}

// Slurm signals every process of a job it preempts or cancels, the task
// too, and the task may end before its worker sees its own signal: a stop
// signal the worker did not send is told apart from a crash.
TEST_F(WorkerTest, TaskProcessTellsAStopFromOutsideFromACrashOrItsOwnStop) {
  auto wait_exit = [&](TaskProcess& t) {
    std::optional<os::ExitStatus> exit;
    EXPECT_TRUE(wait_for([&] { return (exit = t.poll_exit()).has_value(); }));
    return exit;
  };
  auto progressed = [](TaskProcess& t) {
    return wait_for([&] {
      t.read_output();
      return t.progress().tiles_done == 7;
    });
  };

  auto outside = start_task(lease(1, "slow"));
  ASSERT_NE(outside, nullptr);
  ASSERT_TRUE(progressed(*outside));
  // A task runs 9 nice levels below its worker: heartbeats come first.
  EXPECT_EQ(::getpriority(PRIO_PROCESS, static_cast<id_t>(outside->pid())),
            task_nice_for(::getpriority(PRIO_PROCESS, 0)));
  EXPECT_EQ(task_nice_for(10), 19);
  EXPECT_EQ(task_nice_for(1), 10);
  EXPECT_EQ(task_nice_for(0), 0) << "executor.nice = 0: no separation";
  ASSERT_EQ(::kill(outside->pid(), SIGTERM), 0);
  ASSERT_TRUE(wait_exit(*outside).has_value());
  EXPECT_TRUE(outside->stopped_from_outside());

  auto crash = start_task(lease(2, "crash"));
  ASSERT_NE(crash, nullptr);
  ASSERT_TRUE(wait_exit(*crash).has_value());
  EXPECT_FALSE(crash->stopped_from_outside()) << "SIGKILL is a crash, not a polite stop";

  auto own = start_task(lease(3, "slow"));
  ASSERT_NE(own, nullptr);
  ASSERT_TRUE(progressed(*own));
  own->signal(SIGTERM, StopCause::kCancel, 500ms);
  ASSERT_TRUE(wait_exit(*own).has_value());
  EXPECT_FALSE(own->stopped_from_outside()) << "the worker's own cancel";
  EXPECT_EQ(own->completion().reason, "CANCELLED");
}

// Sandboxed, the pid the worker holds is bwrap's, which passes no signal
// on: a drain's SIGTERM still reaches the task, whose own stop handling
// runs and says why it ended, exactly as unsandboxed.
TEST_F(WorkerTest, SandboxedTaskStopsGracefullyOnSigterm) {
  LeasedTask lt = lease(4, "graceful");
  lt.spec = {{"mode", "graceful"},
             {"definition",
              {{"layer", "graceful"},
               {"output", {{"catalog", (dir_ / "catalog").string()}, {"environment", "test"}}}}}};
  lt.sandbox = sandbox::policy_to_json(sandbox::Policy{});
  lt.sandbox["source_roots"] = json::array();
  std::unique_ptr<TaskProcess> started = start_task(lt);
  ASSERT_NE(started, nullptr);
  TaskProcess& t = *started;
  ASSERT_TRUE(wait_for([&] {
    t.read_output();
    return t.progress().tiles_done == 3;
  })) << "its progress line comes once its trap is set";
  EXPECT_EQ(::getpriority(PRIO_PROCESS, static_cast<id_t>(t.pid())),
            task_nice_for(::getpriority(PRIO_PROCESS, 0)))
      << "the sandbox, and all it runs, at the task's nice level";

  t.signal(SIGTERM, StopCause::kShutdown, 10s);
  std::optional<os::ExitStatus> exit;
  ASSERT_TRUE(wait_for([&] { return (exit = t.poll_exit()).has_value(); }));
  EXPECT_FALSE(exit->signaled) << exit->describe();
  EXPECT_EQ(exit->code, 130) << "the task's own exit status, through bwrap";
  const Completion c = t.completion();
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.reason, "WORKER_STOPPED");
  EXPECT_EQ(c.message, "stopped by its trap") << "the task's own error line";
  EXPECT_FALSE(t.escalate(clock_.now_ms() + 10000)) << "nothing left to kill";
}

TEST_F(WorkerTest, RunsTasksAndReportsHowEachEnded) {
  ProtocolServer server((dir_ / "logs").string());
  const int64_t ok = server.add_task("ok");
  const int64_t error = server.add_task("error");
  const int64_t crash = server.add_task("crash");
  WorkerThread worker(options(server));
  ASSERT_TRUE(wait_for([&] { return server.completions().size() == 3; }))
      << server.completions().size() << " completions";
  EXPECT_EQ(server.registration()["pid"], ::getpid());
  EXPECT_EQ(server.registration()["slots"], 2);

  auto c = server.completions();
  EXPECT_EQ(c[ok]["worker_id"], "w-test");
  EXPECT_EQ(c[ok]["attempt"], 1);
  EXPECT_EQ(c[ok]["ok"], true);
  // The task's result, plus its last progress line (the finished task's
  // share of the step's progress).
  EXPECT_EQ(c[ok]["result"],
            json({{"answer", 42}, {"tiles_done", 5}, {"bytes_read", 10}, {"bytes_written", 20}}));
  EXPECT_EQ(c[error]["ok"], false);
  EXPECT_EQ(c[error]["error"]["reason"], "SOURCE_ERROR");
  EXPECT_EQ(c[error]["error"]["message"], "cannot open a.tif");
  // The task said its failure would repeat: the server is told so.
  EXPECT_EQ(c[error]["error"]["permanent"], true);
  EXPECT_EQ(c[crash]["ok"], false);
  EXPECT_EQ(c[crash]["error"]["reason"], "TASK_CRASHED");
  EXPECT_EQ(c[crash]["error"]["permanent"], false);
  EXPECT_NE(c[crash]["error"]["message"].get<std::string>().find("signal 9"), std::string::npos)
      << c[crash];

  // Each task's stderr was appended to the step's log.
  const std::string log = step_log();
  for (const char* mode : {"ok", "error", "crash"}) {
    EXPECT_NE(log.find(std::string("task ") + mode + " starting"), std::string::npos) << log;
  }

  worker.stop();
  Status st = worker.join();
  EXPECT_TRUE(st.is_ok()) << st.to_string();
}

TEST_F(WorkerTest, HeartbeatsCarryProgressAndCancelStopsTheTask) {
  ProtocolServer server((dir_ / "logs").string(), kLongLeaseSeconds);
  const int64_t slow = server.add_task("slow");
  const int64_t stubborn = server.add_task("stubborn");
  constexpr int64_t kGraceMs = 60'000;
  WorkerOptions o = manual_options(server);
  o.cancel_grace = std::chrono::milliseconds(kGraceMs);
  WorkerThread worker(o, &clock_);
  // The stubborn task prints its progress once its trap is set.
  ASSERT_TRUE(advance_until(clock_, 250, [&] {
    auto p = server.progress();
    return p.count(slow) && p[slow]["tiles_done"] == 7 && p.count(stubborn) &&
           p[stubborn]["tiles_done"] == 1;
  })) << json(server.progress()).dump();
  EXPECT_EQ(server.progress()[slow]["bytes_written"], 2);
  EXPECT_TRUE(server.completions().empty());

  // TERM: the task ends at once. One that ignores it runs on until the
  // grace period has passed on the clock, then is killed (the boundary is
  // checked to the millisecond in TaskProcessEscalatesToSigkillAtTheEndOfTheGrace).
  server.cancel(slow, "TERM");
  server.cancel(stubborn, "TERM");
  const int64_t cancelled_at = clock_.now_ms();
  ASSERT_TRUE(advance_until(clock_, 250, [&] { return server.completions().count(slow) == 1; }));
  ASSERT_LT(clock_.now_ms() - cancelled_at, kGraceMs) << "the grace period passed meanwhile";
  EXPECT_EQ(server.completions().count(stubborn), 0u) << "killed before its grace period";
  clock_.advance(kGraceMs);
  ASSERT_TRUE(wait_for([&] { return server.completions().size() == 2; }));
  auto c = server.completions();
  EXPECT_EQ(c[slow]["ok"], false);
  EXPECT_EQ(c[slow]["error"]["reason"], "CANCELLED");
  EXPECT_NE(c[slow]["error"]["message"].get<std::string>().find("signal 15"), std::string::npos)
      << c[slow];
  EXPECT_EQ(c[stubborn]["error"]["reason"], "CANCELLED");
  EXPECT_NE(c[stubborn]["error"]["message"].get<std::string>().find("signal 9"), std::string::npos)
      << c[stubborn];
}

TEST_F(WorkerTest, KillIsImmediate) {
  ProtocolServer server((dir_ / "logs").string(), kLongLeaseSeconds);
  const int64_t stubborn = server.add_task("stubborn");
  WorkerOptions o = manual_options(server);
  o.cancel_grace = 60s;
  WorkerThread worker(o, &clock_);
  ASSERT_TRUE(advance_until(clock_, 250, [&] {
    auto p = server.progress();
    return p.count(stubborn) && p[stubborn]["tiles_done"] == 1;
  }));
  server.cancel(stubborn, "KILL");
  // The clock moves only as far as the next heartbeats, far short of the
  // 60 s grace: only the KILL itself can end the task.
  const int64_t cancelled_at = clock_.now_ms();
  ASSERT_TRUE(advance_until(clock_, 250, [&] { return server.completions().size() == 1; }));
  ASSERT_LT(clock_.now_ms() - cancelled_at, 60'000) << "the grace period passed meanwhile";
  EXPECT_NE(server.completions()[stubborn]["error"]["message"].get<std::string>().find("signal 9"),
            std::string::npos);
}

TEST_F(WorkerTest, DisownedTasksAreKilledWithoutACompletion) {
  ProtocolServer server((dir_ / "logs").string());
  const int64_t slow = server.add_task("slow");
  WorkerThread worker(options(server, 1));
  ASSERT_TRUE(wait_for([&] { return server.last_heartbeat_tasks().count(slow) == 1; }));
  server.disown(slow);
  ASSERT_TRUE(wait_for([&] { return server.last_heartbeat_tasks().empty(); }));
  // Its slot is free again: the next task runs.
  const int64_t ok = server.add_task("ok");
  ASSERT_TRUE(wait_for([&] { return server.completions().count(ok) == 1; }));
  EXPECT_EQ(server.completions().count(slow), 0u);
}

TEST_F(WorkerTest, StopEndsRunningTasksAndReportsThem) {
  ProtocolServer server((dir_ / "logs").string(), kLongLeaseSeconds);
  const int64_t slow = server.add_task("slow");
  WorkerThread worker(manual_options(server), &clock_);
  ASSERT_TRUE(
      advance_until(clock_, 250, [&] { return server.last_heartbeat_tasks().count(slow) == 1; }));
  // The slow task ends on SIGTERM, so the worker ends without waiting out
  // its shutdown grace: the clock does not move from here on.
  worker.stop();
  ASSERT_TRUE(wait_for([&] { return worker.done(); }))
      << "the worker waited for the shutdown grace although its task had ended";
  Status st = worker.join();
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  auto c = server.completions();
  ASSERT_EQ(c.count(slow), 1u);
  EXPECT_EQ(c[slow]["error"]["reason"], "WORKER_STOPPED");
}

TEST_F(WorkerTest, GivesUpWhenTheServerIsGoneForALease) {
  ProtocolServer server((dir_ / "logs").string(), /*lease_seconds=*/1);
  const int64_t slow = server.add_task("slow");
  WorkerThread worker(manual_options(server), &clock_);
  ASSERT_TRUE(
      advance_until(clock_, 250, [&] { return server.last_heartbeat_tasks().count(slow) == 1; }));
  server.stop();
  // Heartbeats fail from now on; once the clock has moved a lease past the
  // last answer, the worker gives up.
  ASSERT_TRUE(advance_until(clock_, 250, [&] { return worker.done(); }));
  Status st = worker.join();
  EXPECT_EQ(st.code(), StatusCode::kIOError) << st.to_string();
  EXPECT_NE(st.message().find("has not answered"), std::string::npos) << st.message();
}

// A server too busy to answer (a fleet of hundreds registering at once):
// the worker asks again, spread out, with the key it drew once, so that an
// attempt the server took after all is the registration the retry gets.
TEST_F(WorkerTest, RegistrationRetriesCarryTheProcesssOneKey) {
  ProtocolServer server((dir_ / "logs").string(), kLongLeaseSeconds);
  server.refuse_registrations(3);
  server.stamp_registrations(&clock_);
  WorkerThread worker(manual_options(server), &clock_);
  ASSERT_TRUE(advance_until(clock_, 50, [&] { return server.heartbeats() > 0; }));
  const std::vector<json> attempts = server.registrations();
  ASSERT_EQ(attempts.size(), 4u);
  // The waits double from 0.5 s, each at least half its nominal length.
  const std::vector<int64_t> at = server.registration_times();
  ASSERT_EQ(at.size(), 4u);
  EXPECT_GE(at[1] - at[0], 250);
  EXPECT_GE(at[2] - at[1], 500);
  EXPECT_GE(at[3] - at[2], 1000);
  const std::string key = attempts[0].value("registration_key", "");
  EXPECT_GE(key.size(), 8u);
  EXPECT_LE(key.size(), 64u);
  EXPECT_EQ(key.find_first_not_of("0123456789abcdefghijklmnopqrstuvwxyz-"), std::string::npos)
      << key;
  for (const json& a : attempts) EXPECT_EQ(a.value("registration_key", ""), key);

  // Another worker process draws another key.
  ProtocolServer other((dir_ / "logs").string(), kLongLeaseSeconds);
  WorkerThread second(manual_options(other), &clock_);
  ASSERT_TRUE(advance_until(clock_, 250, [&] { return other.heartbeats() > 0; }));
  EXPECT_NE(other.registration().value("registration_key", ""), key);
}

TEST_F(WorkerTest, ARefusedTokenEndsTheWorker) {
  ProtocolServer server((dir_ / "logs").string());
  WorkerOptions o = options(server);
  o.token = "wrong";
  Status st = run_worker(o, CancelToken());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find("401"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace kiln::worker
