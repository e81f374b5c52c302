// The cluster core wired whole for unit tests, on an in-memory job store, a
// manual clock (TestClock), a fake Executor (it records what the fleet asks of it) and a
// fake Planner (a fixed plan, or a refusal for a definition marked bad).
// Two environments, staging (priority 0) and production (priority 10); a
// core group of two nodes with two slots each; a directory of the test's
// own for the state (step logs) and the catalogs, removed afterwards.
//
// Nothing here starts a thread: tests call Scheduler::pass() themselves and
// move time with clock_.advance(). A test that starts the scheduler's
// thread stops it before the fixture goes.
#pragma once

#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "catalog/catalog.h"
#include "cluster/elastic_control.h"
#include "cluster/lifecycle.h"
#include "cluster/planner.h"
#include "cluster/policies.h"
#include "cluster/scheduler.h"
#include "cluster/step_events.h"
#include "cluster/step_log.h"
#include "cluster/step_service.h"
#include "cluster/worker_protocol.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "config/server_config.h"
#include "store/job_store.h"
#include "worker/executor.h"

namespace kiln::cluster {

// Whether `part` occurs in `text` (log lines, messages).
inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A ManualClock that also tells the test when a thread has begun waiting on
// it: every wait against a clock asks real_wait() how long to block, so
// once waits() has grown, a waiter started before has read its deadline,
// and advancing the clock ends that wait rather than racing its start.
class TestClock final : public Clock {
 public:
  int64_t now_ms() const override { return clock_.now_ms(); }
  std::chrono::milliseconds real_wait(int64_t deadline_ms) const override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++waits_;
    }
    waited_.notify_all();
    return clock_.real_wait(deadline_ms);
  }
  void advance(int64_t ms) { clock_.advance(ms); }

  uint64_t waits() const {
    std::lock_guard<std::mutex> lock(mu_);
    return waits_;
  }
  // Blocks until waits() > `seen`; false if that takes longer than
  // `give_up` of real time (a hang, not a timing assumption).
  bool await_wait(uint64_t seen,
                  std::chrono::milliseconds give_up = std::chrono::seconds(30)) const {
    std::unique_lock<std::mutex> lock(mu_);
    return waited_.wait_for(lock, give_up, [&] { return waits_ > seen; });
  }

 private:
  ManualClock clock_;
  mutable std::mutex mu_;
  mutable std::condition_variable waited_;
  mutable uint64_t waits_ = 0;
};

// The executor as the fleet sees it: every call is recorded as one line
// ("launch core-1 2", "drain core-1", "terminate core-1"), in order.
class FakeExecutor final : public worker::Executor {
 public:
  Status start() override { return Status::ok(); }
  Status launch_node(const std::string& node_id, int slots) override {
    {
      MutexLock lock(&mu_);
      calls_.push_back("launch " + node_id + " " + std::to_string(slots));
      if (!nodes_.insert(node_id).second) return invalid_argument("node " + node_id + " in use");
    }
    if (on_launch) on_launch(node_id);
    return Status::ok();
  }
  // Called (from launch_node, without this fake's lock) once a node's
  // process would be running: what its worker does meanwhile.
  std::function<void(const std::string& node_id)> on_launch;
  Status terminate_node(const std::string& node_id, std::chrono::milliseconds) override {
    MutexLock lock(&mu_);
    calls_.push_back("terminate " + node_id);
    if (nodes_.erase(node_id) == 0) return not_found("no node " + node_id);
    return Status::ok();
  }
  Status drain_node(const std::string& node_id) override {
    MutexLock lock(&mu_);
    calls_.push_back("drain " + node_id);
    return Status::ok();
  }
  void tick() override {}
  void stop(std::chrono::milliseconds) override {}
  worker::ExecutorStatus status() const override {
    MutexLock lock(&mu_);
    worker::ExecutorStatus s;
    s.kind = "fake";
    for (const auto& n : nodes_) s.nodes.push_back({n, 2, 0, false});
    return s;
  }
  std::vector<std::string> calls() const {
    MutexLock lock(&mu_);
    return calls_;
  }

 private:
  mutable Mutex mu_;
  std::vector<std::string> calls_ GUARDED_BY(mu_);
  std::set<std::string> nodes_ GUARDED_BY(mu_);
};

// Plans every definition as `summary`, except those whose layer is in
// `bad_layers`: refused with kInputError naming the first source, as
// make_plan refuses a source it cannot open. Remembers what it was asked.
class FakePlanner final : public Planner {
 public:
  Result<PlanSummary> plan(const ingest::IngestDefinition& def, int threads) override {
    MutexLock lock(&mu_);
    seen_.push_back({def, threads});
    if (bad_layers_.count(def.layer) != 0) {
      return input_error("sources[0]: cannot open '" +
                         (def.sources.empty() ? std::string() : def.sources[0].uri) +
                         "': No such file or directory");
    }
    return summary_;
  }
  void set_summary(int64_t partitions, int64_t tiles) {
    MutexLock lock(&mu_);
    summary_ = {partitions, tiles};
  }
  void refuse(const std::string& layer) {
    MutexLock lock(&mu_);
    bad_layers_.insert(layer);
  }
  std::vector<std::pair<ingest::IngestDefinition, int>> seen() const {
    MutexLock lock(&mu_);
    return seen_;
  }

 private:
  mutable Mutex mu_;
  PlanSummary summary_ GUARDED_BY(mu_) = {2, 200};
  std::set<std::string> bad_layers_ GUARDED_BY(mu_);
  std::vector<std::pair<ingest::IngestDefinition, int>> seen_ GUARDED_BY(mu_);
};

class ClusterTest : public ::testing::Test {
 protected:
  static constexpr int kLeaseSeconds = 15;
  static constexpr int kStarvationSeconds = 30;
  static constexpr int kMaxAttempts = 3;

  void SetUp() override {
    std::string tmpl =
        (std::filesystem::path(::testing::TempDir()) / "kiln-cluster-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    config_.state_dir = (dir_ / "state").string();
    std::filesystem::create_directories(dir_ / "state" / "logs");
    config_.lease_seconds = kLeaseSeconds;
    config_.heartbeat_seconds = 2;
    config_.max_attempts = kMaxAttempts;
    config_.starvation_seconds = kStarvationSeconds;
    config_.cancel_grace_seconds = 10;
    config_.environments = {environment("staging", 0), environment("production", 10)};
    elastic::GroupConfig core;
    core.name = "core";
    core.core = true;
    core.min_nodes = 2;
    core.max_nodes = 2;
    core.slots_per_node = 2;
    core.price = elastic::PriceTrace(1.0);
    config_.autoscaler.groups = {core};

    auto store = store::JobStore::open_in_memory();
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    store_ = std::move(store).value();
    log_ = std::make_unique<StepLog>((dir_ / "state" / "logs").string(), clock_);
    policies_ = std::make_unique<Policies>(config_.environments);
    events_ = std::make_unique<StepEvents>(clock_);
    elastic_ = std::make_unique<ElasticControl>(config_, store_.get(), &executor_);
    StepServiceOptions so;
    so.max_attempts = config_.max_attempts;
    so.plan_threads = plan_threads_for(config_);
    so.started_ms = clock_.now_ms();
    steps_ = std::make_unique<CoreStepService>(so, store_.get(), &planner_, log_.get(),
                                               policies_.get(), events_.get(), &lifecycle_, clock_);
    WorkerProtocolOptions wo;
    wo.lease_seconds = config_.lease_seconds;
    wo.heartbeat_seconds = config_.heartbeat_seconds;
    wo.cancel_grace_seconds = config_.cancel_grace_seconds;
    wo.starvation_seconds = config_.starvation_seconds;
    workers_ =
        std::make_unique<WorkerProtocol>(wo, store_.get(), elastic_.get(), log_.get(),
                                         policies_.get(), events_.get(), &lifecycle_, clock_);
    SchedulerOptions sched;
    sched.lease_seconds = config_.lease_seconds;
    sched.on_start_latency = [this](double s) { start_latencies_.push_back(s); };
    scheduler_ = std::make_unique<Scheduler>(sched, config_.environments, store_.get(), log_.get(),
                                             policies_.get(), events_.get(), &lifecycle_, clock_);
    Scheduler* scheduler = scheduler_.get();
    events_->add_listener([scheduler] { scheduler->kick(); });
    // The warm core: core-1 and core-2, as kiln serve launches them.
    ASSERT_TRUE(elastic_->start(clock_.now_ms()).is_ok());
  }

  void TearDown() override {
    if (scheduler_) scheduler_->stop();
    scheduler_.reset();
    workers_.reset();
    steps_.reset();
    elastic_.reset();
    events_.reset();
    policies_.reset();
    log_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  config::EnvironmentConfig environment(const std::string& name, int priority) const {
    config::EnvironmentConfig e;
    e.name = name;
    e.catalog = (dir_ / "catalogs" / name).string();
    e.concurrency = 1;
    e.priority = priority;
    // Where the tests' sources and definition files are.
    e.source_roots = {KILN_SOURCE_DIR "/data/", KILN_SOURCE_DIR "/tests/", dir_.string() + "/"};
    return e;
  }
  const config::EnvironmentConfig& staging() const { return config_.environments[0]; }
  const config::EnvironmentConfig& production() const { return config_.environments[1]; }

  // A Kiln ingest definition shaped like tests/definitions/good/*.json,
  // with an output that names another catalog and environment (the core
  // overwrites both).
  static nlohmann::json definition(const std::string& layer,
                                   const std::string& source = KILN_SOURCE_DIR
                                   "/data/olinda_dem_utm25s.tif") {
    return {{"layer", layer},
            {"sources", {{{"uri", source}}}},
            {"output",
             {{"catalog", "/somewhere/else"},
              {"environment", "someone-else"},
              {"zoom", {{"max", 12}}},
              {"encoding", {{"format", "png"}}}}}};
  }

  Result<store::Step> try_submit(const config::EnvironmentConfig& env, const std::string& layer,
                                 const std::string& action_on_failure = "CONTINUE") {
    SubmitRequest req;
    req.definition = definition(layer);
    req.action_on_failure = action_on_failure;
    return steps_->submit(env, req);
  }
  store::Step submit(const config::EnvironmentConfig& env, const std::string& layer = "dem",
                     const std::string& action_on_failure = "CONTINUE") {
    auto s = try_submit(env, layer, action_on_failure);
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    return s.is_ok() ? *s : store::Step{};
  }
  store::Step get(const config::EnvironmentConfig& env, const std::string& id) {
    auto s = steps_->get(env, id);
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    return s.is_ok() ? *s : store::Step{};
  }
  store::StepState state(const config::EnvironmentConfig& env, const std::string& id) {
    return get(env, id).state;
  }
  std::vector<store::Task> tasks(const std::string& step_id) {
    auto t = store_->tasks_of(step_id);
    EXPECT_TRUE(t.is_ok()) << t.status().to_string();
    return t.is_ok() ? *t : std::vector<store::Task>{};
  }
  store::Task task(const std::string& step_id, int64_t index) {
    for (const store::Task& t : tasks(step_id)) {
      if (t.index == index) return t;
    }
    ADD_FAILURE() << "step " << step_id << " has no task " << index;
    return {};
  }
  store::StoreStats stats() {
    auto s = store_->stats();
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    return s.is_ok() ? *s : store::StoreStats{};
  }

  // A worker standing for `node`, as `kiln worker --node` registers.
  std::string register_worker(const std::string& node = "core-1", int slots = 2,
                              int64_t pid = 4000) {
    auto r = workers_->register_worker(pid, node, slots);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? r->worker_id : "";
  }
  std::vector<LeasedTask> lease(const std::string& worker, int free_slots = 1) {
    auto l = workers_->lease(worker, free_slots);
    EXPECT_TRUE(l.is_ok()) << l.status().to_string();
    return l.is_ok() ? *l : std::vector<LeasedTask>{};
  }
  LeasedTask lease_one(const std::string& worker) {
    std::vector<LeasedTask> l = lease(worker, 1);
    EXPECT_EQ(l.size(), 1u) << "nothing to lease for " << worker;
    return l.empty() ? LeasedTask{} : l[0];
  }
  // What the worker reports when `kiln task run` exits 0.
  bool complete_ok(const std::string& worker, const LeasedTask& t,
                   nlohmann::json result = nlohmann::json::object()) {
    Completion c;
    c.worker_id = worker;
    c.step_id = t.step_id;
    c.task_id = t.task_id;
    c.attempt = t.attempt;
    c.ok = true;
    c.result = std::move(result);
    auto r = workers_->complete(c);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() && *r;
  }
  // permanent: the task says another attempt would fail the same way.
  bool complete_failed(const std::string& worker, const LeasedTask& t,
                       const std::string& reason = "TASK_CRASHED",
                       const std::string& message = "task process ended (killed by SIGKILL)",
                       bool permanent = false) {
    Completion c;
    c.worker_id = worker;
    c.step_id = t.step_id;
    c.task_id = t.task_id;
    c.attempt = t.attempt;
    c.ok = false;
    c.error = {reason, message, "", permanent};
    auto r = workers_->complete(c);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() && *r;
  }
  static store::JobStore::Heartbeat beat(const LeasedTask& t, int64_t tiles_done = 0) {
    store::JobStore::Heartbeat b;
    b.task_id = t.task_id;
    b.attempt = t.attempt;
    b.tiles_done = tiles_done;
    return b;
  }

  // The step's log as `kiln step logs` shows it.
  std::string log_of(const std::string& step_id) const {
    return log_->read(step_id, 0, 1 << 20).text;
  }
  // The staging directory a step's tasks write into.
  std::filesystem::path staging_dir(const config::EnvironmentConfig& env,
                                    const store::Step& step) const {
    return std::filesystem::path(env.catalog) / env.name / step.layer / ".staging" / step.id;
  }
  // The catalog's record of who owns that staging directory.
  std::filesystem::path staging_owner(const config::EnvironmentConfig& env,
                                      const store::Step& step) const {
    return staging_dir(env, step).parent_path() / ("." + step.id + ".owner");
  }
  // Writes a tile into the step's shared staging directory, as a partition
  // task does (catalog staging id = step id).
  void stage_tile(const config::EnvironmentConfig& env, const store::Step& step) {
    auto cat = catalog::Catalog::open(env.catalog, /*create=*/true);
    ASSERT_TRUE(cat.is_ok()) << cat.status().to_string();
    auto writer = cat->begin(env.name, step.layer, step.id);
    ASSERT_TRUE(writer.is_ok()) << writer.status().to_string();
    ASSERT_TRUE((*writer)->write_tile(12, 1, 2, "png", "not really a png").is_ok());
    ASSERT_EQ((*writer)->staging_dir(), staging_dir(env, step).string());
    ASSERT_TRUE(std::filesystem::exists(staging_owner(env, step)));
  }

  std::filesystem::path dir_;
  config::ServerConfig config_;
  TestClock clock_;
  FakeExecutor executor_;
  FakePlanner planner_;
  Lifecycle lifecycle_;
  std::unique_ptr<store::JobStore> store_;
  std::unique_ptr<StepLog> log_;
  std::unique_ptr<Policies> policies_;
  std::unique_ptr<StepEvents> events_;
  std::unique_ptr<ElasticControl> elastic_;
  std::unique_ptr<CoreStepService> steps_;
  std::unique_ptr<WorkerProtocol> workers_;
  std::unique_ptr<Scheduler> scheduler_;
  std::vector<double> start_latencies_;  // the scheduler's thread or the test's
};

}  // namespace kiln::cluster
