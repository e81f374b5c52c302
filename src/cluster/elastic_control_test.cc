// ElasticControl launches worker processes without its lock held, while an
// HTTP thread may terminate a node (a spot notice, `kiln cluster
// interrupt`): whatever the order, the executor must never run a process
// for a node the fleet lists as terminated (issue 14: an orphan worker ran
// tasks for a node that no longer existed).
#include <future>

#include "cluster/test_cluster.h"

namespace kiln::cluster {
namespace {

// An executor whose node counts as started only once launch_node()
// returns, as a real process start takes a while: a terminate_node() that
// comes during the launch finds nothing to stop (kNotFound). during_launch
// runs inside launch_node(), without this fake's lock, while the node's
// process is being started. Every call is recorded, in order, as it takes
// effect: "launch core-1 2" when the launch returns, "terminate core-1".
class StartingExecutor final : public worker::Executor {
 public:
  std::function<void(const std::string& node_id)> during_launch;

  Status start() override { return Status::ok(); }
  Status launch_node(const std::string& node_id, int slots) override EXCLUDES(mu_) {
    if (during_launch) during_launch(node_id);
    MutexLock lock(&mu_);
    if (!running_.insert(node_id).second) return invalid_argument("node " + node_id + " in use");
    calls_.push_back("launch " + node_id + " " + std::to_string(slots));
    return Status::ok();
  }
  Status terminate_node(const std::string& node_id, std::chrono::milliseconds) override
      EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    if (running_.erase(node_id) == 0) return not_found("no node " + node_id);
    calls_.push_back("terminate " + node_id);
    return Status::ok();
  }
  void tick() override {}
  void stop(std::chrono::milliseconds) override {}
  worker::ExecutorStatus status() const override EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    worker::ExecutorStatus s;
    s.kind = "starting";
    for (const std::string& n : running_) s.nodes.push_back({n, 2, 0, false});
    return s;
  }
  std::vector<std::string> calls() const EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return calls_;
  }
  std::set<std::string> running() const EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return running_;
  }

 private:
  mutable Mutex mu_;
  std::vector<std::string> calls_ GUARDED_BY(mu_);
  std::set<std::string> running_ GUARDED_BY(mu_);
};

class ElasticLaunchTest : public ClusterTest {
 protected:
  // The nodes `kiln cluster status` lists (not gone), with their states.
  static std::map<std::string, std::string> fleet_nodes(const ElasticControl& elastic,
                                                        int64_t now_ms) {
    std::map<std::string, std::string> out;
    const nlohmann::json status = elastic.to_json(now_ms);
    for (const auto& n : status["nodes"]) {
      out[n["id"].get<std::string>()] = n["state"].get<std::string>();
    }
    return out;
  }
  // Every process the executor runs stands for a node the fleet lists,
  // and every node the fleet lists has its process.
  void expect_executor_matches_fleet(const StartingExecutor& executor,
                                     const ElasticControl& elastic) {
    std::set<std::string> listed;
    for (const auto& [id, state] : fleet_nodes(elastic, clock_.now_ms())) listed.insert(id);
    EXPECT_EQ(executor.running(), listed);
  }
  // An interrupt from another thread, as the HTTP door sends it; waited
  // for, so the order of events is the test's.
  Status interrupt_from_http(ElasticControl* elastic, const std::string& node) {
    return std::async(std::launch::async,
                      [elastic, node, this] {
                        return elastic->interrupt(node, /*notice_ms=*/-1, clock_.now_ms());
                      })
        .get();
  }
  WorkerProtocolOptions protocol_options() const {
    WorkerProtocolOptions wo;
    wo.lease_seconds = config_.lease_seconds;
    wo.heartbeat_seconds = config_.heartbeat_seconds;
    wo.cancel_grace_seconds = config_.cancel_grace_seconds;
    wo.starvation_seconds = config_.starvation_seconds;
    return wo;
  }
};

// The warm core is core-1 then core-2. A spot notice for core-2 (still
// booting: terminated at once) comes while core-1's process is starting:
// core-2 must not be started afterwards.
TEST_F(ElasticLaunchTest, ANodeTerminatedBeforeItsLaunchBeganIsNeverStarted) {
  StartingExecutor executor;
  ElasticControl elastic(config_, store_.get(), &executor);
  Status interrupted = internal_error("not called");
  executor.during_launch = [&](const std::string& node) {
    if (node == "core-1") interrupted = interrupt_from_http(&elastic, "core-2");
  };
  ASSERT_TRUE(elastic.start(clock_.now_ms()).is_ok());
  ASSERT_TRUE(interrupted.is_ok()) << interrupted.to_string();

  EXPECT_EQ(executor.calls(), (std::vector<std::string>{"launch core-1 2"}));
  EXPECT_EQ(fleet_nodes(elastic, clock_.now_ms()),
            (std::map<std::string, std::string>{{"core-1", "booting"}}));
  expect_executor_matches_fleet(executor, elastic);
  // The next rounds do not start it either.
  clock_.advance(1000);
  elastic.tick(clock_.now_ms());
  EXPECT_EQ(executor.running(), (std::set<std::string>{"core-1"}));
}

// The same through tick(): launches delayed by a group's bootstrap time
// are started by the scheduler's tick, with the same race.
TEST_F(ElasticLaunchTest, ANodeTerminatedBeforeItsDelayedLaunchBeganIsNeverStarted) {
  config_.autoscaler.groups[0].bootstrap_ms = 5000;
  StartingExecutor executor;
  ElasticControl elastic(config_, store_.get(), &executor);
  Status interrupted = internal_error("not called");
  executor.during_launch = [&](const std::string& node) {
    if (node == "core-1") interrupted = interrupt_from_http(&elastic, "core-2");
  };
  ASSERT_TRUE(elastic.start(clock_.now_ms()).is_ok());
  EXPECT_TRUE(executor.calls().empty()) << "launched before the bootstrap delay";
  clock_.advance(5000);
  elastic.tick(clock_.now_ms());
  ASSERT_TRUE(interrupted.is_ok()) << interrupted.to_string();

  EXPECT_EQ(executor.calls(), (std::vector<std::string>{"launch core-1 2"}));
  EXPECT_EQ(fleet_nodes(elastic, clock_.now_ms()),
            (std::map<std::string, std::string>{{"core-1", "booting"}}));
  expect_executor_matches_fleet(executor, elastic);
}

// The notice for core-1 comes while core-1's own process is starting, and
// its worker registers after that: once the launch returns, the process is
// stopped and the worker is gone from the cluster, and core-2 starts as
// planned.
TEST_F(ElasticLaunchTest, ANodeTerminatedDuringItsLaunchIsStoppedOnceTheLaunchReturns) {
  StartingExecutor executor;
  ElasticControl elastic(config_, store_.get(), &executor);
  WorkerProtocol protocol(protocol_options(), store_.get(), &elastic, log_.get(), policies_.get(),
                          events_.get(), &lifecycle_, clock_);
  Status interrupted = internal_error("not called");
  std::string late_worker;
  executor.during_launch = [&](const std::string& node) {
    if (node != "core-1") return;
    interrupted = interrupt_from_http(&elastic, "core-1");
    // The process was started all the same; its worker registers.
    auto r = std::async(std::launch::async, [&] {
               return protocol.register_worker(4001, "core-1", 2);
             }).get();
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    late_worker = r->worker_id;
  };
  ASSERT_TRUE(elastic.start(clock_.now_ms()).is_ok());
  ASSERT_TRUE(interrupted.is_ok()) << interrupted.to_string();
  ASSERT_FALSE(late_worker.empty());

  EXPECT_EQ(executor.calls(),
            (std::vector<std::string>{"launch core-1 2", "terminate core-1", "launch core-2 2"}));
  EXPECT_EQ(fleet_nodes(elastic, clock_.now_ms()),
            (std::map<std::string, std::string>{{"core-2", "booting"}}));
  expect_executor_matches_fleet(executor, elastic);
  auto info = steps_->cluster(staging());
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  for (const store::WorkerInfo& w : info->workers) {
    EXPECT_NE(w.id, late_worker) << "the worker of terminated core-1 is still in the cluster";
  }
  EXPECT_EQ(info->slots_total, 0);
}

// Once its launch is over, a node is terminated the ordinary way, at once:
// nothing of the launch is left to defer the terminate to.
TEST_F(ElasticLaunchTest, ANodeTerminatedAfterItsLaunchIsStoppedAtOnce) {
  StartingExecutor executor;
  ElasticControl elastic(config_, store_.get(), &executor);
  ASSERT_TRUE(elastic.start(clock_.now_ms()).is_ok());
  ASSERT_EQ(executor.running(), (std::set<std::string>{"core-1", "core-2"}));

  ASSERT_TRUE(interrupt_from_http(&elastic, "core-1").is_ok());
  EXPECT_EQ(executor.calls(),
            (std::vector<std::string>{"launch core-1 2", "launch core-2 2", "terminate core-1"}));
  EXPECT_EQ(fleet_nodes(elastic, clock_.now_ms()),
            (std::map<std::string, std::string>{{"core-2", "booting"}}));
  expect_executor_matches_fleet(executor, elastic);
}

}  // namespace
}  // namespace kiln::cluster
