// The simulator on tiny inputs: trace parsing and its errors, the
// per-request arithmetic, and a small trace where the autoscaled cluster
// must grow for a burst and finish every step.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "sim/simulator.h"

namespace kiln::sim {
namespace {

namespace fs = std::filesystem;

class SimTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() / ("kiln_sim_test_" + std::to_string(::getpid()) + "_" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  fs::path dir_;
};

TEST_F(SimTest, TracesParseSortedAndErrorsNameFileAndLine) {
  auto w = read_workload(write("w.csv",
                               "arrival_s,environment,tiles\n# note\n60,prod,100\n"
                               "0.5,staging,2000\n"));
  ASSERT_TRUE(w.is_ok()) << w.status().message();
  ASSERT_EQ(w->size(), 2u);
  EXPECT_EQ((*w)[0].t_ms, 500);
  EXPECT_EQ((*w)[1].environment, "prod");
  auto bad = read_workload(write("b.csv", "arrival_s,environment,tiles\n1,p,10\n2,p\n"));
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("b.csv:3"), std::string::npos) << bad.status().message();
  auto neg = read_workload(write("n.csv", "h\n-1,p,10\n"));
  EXPECT_NE(neg.status().message().find("n.csv:2"), std::string::npos);
  EXPECT_EQ(read_workload((dir_ / "none.csv").string()).status().code(), StatusCode::kNotFound);

  auto s = read_spot_trace(write("s.csv", "t_s,price,rate\n3600,0.2,0.5\n0,0.1\n"));
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  EXPECT_DOUBLE_EQ(spot_prices(*s).at(4000 * 1000), 0.2);
  EXPECT_DOUBLE_EQ(interruption_rate(*s, 10), 0.0);
  EXPECT_DOUBLE_EQ(interruption_rate(*s, 3600 * 1000), 0.5);
}

TEST_F(SimTest, ABurstScalesTheSpotGroupAndEveryStrategyFinishes) {
  // Ten 4,000-tile steps at t=60 s: each 2 partitions of 2,000 tiles at
  // 100 tiles/slot-s = 20 s, then a 1 s commit.
  std::string trace = "arrival_s,environment,tiles\n";
  for (int i = 0; i < 10; ++i) trace += "60,production,4000\n";
  write("w.csv", trace);
  const std::string scenario = write("s.toml", R"(
[[group]]
name = "core"
core = true
slots_per_node = 2
price_per_hour = 1.0
[[group]]
name = "spot"
market = "spot"
max_nodes = 10
slots_per_node = 2
price_per_hour = 0.25
bootstrap_seconds = 30
[autoscaling]
period_seconds = 10
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
)");
  auto sc = load_scenario(scenario, "", "");
  ASSERT_TRUE(sc.is_ok()) << sc.status().message();
  auto r = simulate(*sc);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  ASSERT_EQ(r->strategies.size(), 4u);
  EXPECT_EQ(r->peak_nodes, 10);  // 20 partitions at once on 2-slot nodes
  const StrategyResult& pr = r->strategies[0];
  EXPECT_EQ(pr.name, "per-request");
  // One 2-slot node per step: bootstrap 600 s + one wave of 20 s + 1 s commit.
  EXPECT_DOUBLE_EQ(pr.wait_p95_s, 600);
  EXPECT_NEAR(pr.cost, 10 * 621.0 / 3600 * 1.0, 1e-9);
  for (const StrategyResult& s : r->strategies) {
    EXPECT_EQ(s.completed, 10) << s.name;
  }
  const StrategyResult& auto_ = r->strategies[3];
  EXPECT_EQ(auto_.name, "autoscaled");
  EXPECT_GT(auto_.node_hours_spot, 0) << "the burst did not scale the spot group out";
  // The spot nodes came up within a period plus their bootstrap: no step
  // waited longer than that.
  EXPECT_LE(auto_.wait_p99_s, 10 + 30 + 1);
  // Sized for the peak, nothing waits.
  EXPECT_EQ(r->strategies[1].name, "fixed-peak");
  EXPECT_EQ(r->strategies[1].wait_p99_s, 0);
  // Deterministic.
  auto again = simulate(*sc);
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(report_json(*again).dump(), report_json(*r).dump());
}

}  // namespace
}  // namespace kiln::sim
