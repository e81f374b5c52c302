// The simulation on tiny inputs whose outcome can be worked out by hand:
// event order, the per-request arithmetic, demand sizing, a burst the
// autoscaler must scale out for and back in after, spot interruptions that
// cost re-done work but no step, and determinism.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "sim/demand.h"
#include "sim/event_queue.h"
#include "sim/per_request.h"
#include "sim/scratch_test_dir.h"
#include "sim/simulator.h"

namespace kiln::sim {
namespace {

namespace fs = std::filesystem;

TEST(EventQueueTest, EarliestFirstAndTiesInPushOrder) {
  EventQueue q;
  q.push({30, EventKind::kReconcile, 1});
  q.push({10, EventKind::kArrival, 2});
  q.push({30, EventKind::kTaskDone, 3});
  q.push({10, EventKind::kChart, 4});
  q.push({20, EventKind::kNodeReady, 5});
  q.push({30, EventKind::kArrival, 6});
  std::vector<int64_t> order;
  int64_t last = 0;
  while (!q.empty()) {
    const Event e = q.pop();
    EXPECT_GE(e.t_ms, last);
    last = e.t_ms;
    order.push_back(e.a);
  }
  EXPECT_EQ(order, (std::vector<int64_t>{2, 4, 5, 1, 3, 6}));
}

class SimulatorTest : public ScratchDirTest {
 protected:
  Scenario load(const std::string& toml) {
    auto sc = load_scenario(write("s.toml", toml), "", "");
    EXPECT_TRUE(sc.is_ok()) << sc.status().message();
    return sc.is_ok() ? *sc : Scenario();
  }
  static const StrategyResult& strategy(const Report& r, const std::string& name) {
    for (const StrategyResult& s : r.strategies)
      if (s.name == name) return s;
    ADD_FAILURE() << "no strategy " << name;
    return r.strategies.front();
  }
};

// A 2-slot on-demand core at 1.00/h and a spot group of up to 10 2-slot
// nodes at 0.25/h that boot in 30 s, scaled by target tracking; tasks run
// at 100 tiles per slot-second, 2,000 tiles per partition (20 s), 1 s commit.
constexpr const char* kBurstScenario = R"(
[[group]]
name = "core"
core = true
slots_per_node = 2
price_per_hour = 1.0
bootstrap_seconds = 0
[[group]]
name = "spot"
market = "spot"
max_nodes = 10
slots_per_node = 2
price_per_hour = 0.25
bootstrap_seconds = 30
[autoscaling]
period_seconds = 10
drain_timeout_seconds = 60
[[autoscaling.target]]
group = "spot"
free_slot_pct = 0
idle_timeout_seconds = 60
scale_in_cooldown_seconds = 0
[simulation]
workload = "w.csv"
tiles_per_slot_second = 100
tiles_per_partition = 2000
commit_seconds = 1
per_request_bootstrap_seconds = 600
per_request_nodes = 1
demand_window_seconds = 60
chart_bucket_seconds = 60
)";

TEST_F(SimulatorTest, PerRequestPaysBootstrapAndRunsInWaves) {
  // 4,000 tiles: 2 partitions, one wave on a 2-slot node: 600 + 20 + 1 s.
  // 10,000 tiles: 5 partitions, three waves: 600 + 60 + 1 s.
  write("w.csv", "arrival_s,environment,tiles\n0,production,4000\n100,production,10000\n");
  const Scenario sc = load(kBurstScenario);
  const StrategyResult r = run_per_request(sc);
  EXPECT_EQ(r.steps, 2);
  EXPECT_EQ(r.completed, 2);
  EXPECT_DOUBLE_EQ(r.wait_p50_s, 600);
  EXPECT_DOUBLE_EQ(r.wait_p99_s, 600);
  EXPECT_NEAR(r.cost, (621.0 + 661.0) / 3600 * 1.0, 1e-9);
  EXPECT_NEAR(r.node_hours_on_demand, (621.0 + 661.0) / 3600, 1e-9);
  EXPECT_NEAR(r.makespan_h, (100 + 661.0) / 3600, 1e-9);
  EXPECT_EQ(r.peak_nodes, 2);  // the two clusters overlap
  EXPECT_EQ(r.interruptions, 0);
  ASSERT_FALSE(r.series.empty());
  EXPECT_NEAR(r.series.back().cost, r.cost, 1e-9);
}

TEST_F(SimulatorTest, DemandIsAveragedOverWindows) {
  // One step of 8,000 tiles at t=0: 4 slots for 20 s, then 1 for 1 s; in a
  // 60 s window that is (80 + 1) / 60 slots. A lone small step in another
  // window: 2,000 tiles, 1 slot for 20 s + 1 s: 21 / 60; two of them in a
  // third window: 42 / 60.
  write("w.csv",
        "arrival_s,environment,tiles\n0,production,8000\n300,production,2000\n"
        "600,production,2000\n610,production,2000\n");
  const Scenario sc = load(kBurstScenario);
  const std::vector<double> w = windowed_demand(sc, 60 * 1000);
  ASSERT_EQ(w.size(), 11u);
  EXPECT_NEAR(w[0], 81.0 / 60, 1e-9);
  EXPECT_NEAR(w[5], 21.0 / 60, 1e-9);
  EXPECT_NEAR(w[10], 42.0 / 60, 1e-9);
  EXPECT_EQ(w[3], 0);
  const DemandSizing d = size_for_demand(sc, 1);
  EXPECT_NEAR(d.peak_slots, 81.0 / 60, 1e-9);
  EXPECT_EQ(d.peak_nodes, 2);
  // Work-weighted: of 144 slot-seconds, 21 + 42 run in windows up to
  // 42/60 busy (less than half), 81 in the busiest: the median is 81/60.
  EXPECT_NEAR(d.median_slots, 81.0 / 60, 1e-9);
  EXPECT_NEAR(d.work_slot_hours, 144.0 / 3600, 1e-12);
  EXPECT_EQ(d.tasks, 4 + 1 + 3 * 2);
}

TEST_F(SimulatorTest, ABurstScalesTheSpotGroupOutAndBackIn) {
  // Ten 4,000-tile steps at t=60 s: 20 partitions at once.
  std::string trace = "arrival_s,environment,tiles\n";
  for (int i = 0; i < 10; ++i) trace += "60,production,4000\n";
  write("w.csv", trace);
  const Scenario sc = load(kBurstScenario);
  auto r = simulate(sc);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  ASSERT_EQ(r->strategies.size(), 4u);
  for (const StrategyResult& s : r->strategies) EXPECT_EQ(s.completed, 10) << s.name;

  const StrategyResult& a = strategy(*r, "autoscaled");
  // Out: the core and ten spot nodes were up at once.
  EXPECT_EQ(a.peak_nodes, 11);
  EXPECT_GT(a.node_hours_spot, 0);
  // The pending work was seen by the round at 70 s at the latest, the nodes
  // were ready 30 s later: nobody waited longer than that.
  EXPECT_LE(a.wait_p99_s, 10 + 10 + 30);
  EXPECT_GT(a.wait_p99_s, 0);  // the core alone could not start them all
  // In: once idle for 60 s the spot nodes went, and the run ended with
  // only the core's slots ready.
  ASSERT_FALSE(a.series.empty());
  EXPECT_EQ(a.series.back().spot_slots, 0);
  EXPECT_EQ(a.series.back().on_demand_slots, 2);
  double most_spot = 0;
  for (const Point& p : a.series) most_spot = std::max(most_spot, p.spot_slots);
  EXPECT_EQ(most_spot, 20);
  // Each spot node lived at most: launch at <= 70 s, work over by ~130 s,
  // 60 s idle, a round to notice: well under 5 minutes.
  EXPECT_LT(a.node_hours_spot, 10 * 300.0 / 3600);
  EXPECT_NEAR(a.cost_spot, a.node_hours_spot * 0.25, 1e-9);
  EXPECT_EQ(a.interruptions, 0);
  EXPECT_EQ(a.redone_task_seconds, 0);

  // A fixed cluster sized for the peak window: 20 x 20 s + 10 x 1 s of
  // work in the 60 s window = 6.83 slots -> 4 two-slot nodes.
  EXPECT_EQ(r->peak_nodes, 4);
  EXPECT_EQ(strategy(*r, "fixed-peak").peak_nodes, 4);
  EXPECT_EQ(strategy(*r, "fixed-peak").node_hours_spot, 0);
  // Per request: every step waits its cluster's bootstrap.
  EXPECT_EQ(strategy(*r, "per-request").wait_p50_s, 600);
}

TEST_F(SimulatorTest, SpotInterruptionsCostRedoneWorkButNoStep) {
  // Long partitions (200 s) on spot nodes interrupted ~6 times an hour
  // with a 30 s notice: many are cut short and run again elsewhere.
  std::string trace = "arrival_s,environment,tiles\n";
  for (int i = 0; i < 20; ++i) trace += std::to_string(60 + i * 30) + ",production,80000\n";
  write("w.csv", trace);
  std::string toml = kBurstScenario;
  toml +=
      "tiles_per_partition = 20000\nspot_interruptions_per_node_hour = 6\n"
      "spot_notice_seconds = 30\nseed = 3\n";
  toml.replace(toml.find("tiles_per_partition = 2000\n"), 27, "");
  const Scenario sc = load(toml);
  auto r = simulate(sc);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  const StrategyResult& a = strategy(*r, "autoscaled");
  EXPECT_EQ(a.completed, 20);
  EXPECT_GT(a.interruptions, 0);
  EXPECT_GT(a.redone_task_seconds, 0);
  // On-demand clusters are never interrupted.
  EXPECT_EQ(strategy(*r, "fixed-peak").interruptions, 0);
  EXPECT_EQ(strategy(*r, "fixed-peak").redone_task_seconds, 0);
  // Another seed draws other interruptions.
  Scenario other = sc;
  other.settings.seed = 4;
  auto r2 = simulate(other);
  ASSERT_TRUE(r2.is_ok()) << r2.status().message();
  EXPECT_EQ(strategy(*r2, "autoscaled").completed, 20);
  EXPECT_NE(report_json(*r2).dump(), report_json(*r).dump());
}

TEST_F(SimulatorTest, SameInputsAndSeedGiveTheSameBytes) {
  std::string trace = "arrival_s,environment,tiles\n";
  for (int i = 0; i < 40; ++i) {
    trace += std::to_string(i * 37 % 900) + (i % 3 ? ",production," : ",staging,") +
             std::to_string(1000 + i * 977 % 9000) + "\n";
  }
  write("w.csv", trace);
  std::string toml = kBurstScenario;
  toml +=
      "spot_interruptions_per_node_hour = 4\n"
      "[[simulation.environment]]\nname = \"production\"\npriority = 10\n"
      "[[simulation.environment]]\nname = \"staging\"\nconcurrency = 2\n";
  const Scenario sc = load(toml);
  SimulateOptions one, two;
  one.threads = 1;
  two.threads = 3;
  auto a = simulate(sc, one);
  auto b = simulate(sc, two);
  ASSERT_TRUE(a.is_ok()) << a.status().message();
  ASSERT_TRUE(b.is_ok()) << b.status().message();
  EXPECT_EQ(report_json(*a).dump(), report_json(*b).dump());
  EXPECT_EQ(report_table(*a), report_table(*b));
  EXPECT_EQ(report_svg(*a), report_svg(*b));
  for (const StrategyResult& s : a->strategies) EXPECT_EQ(s.completed, 40) << s.name;
}

}  // namespace
}  // namespace kiln::sim
