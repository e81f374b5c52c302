// The elastic core without processes: price traces, the autoscaler's
// policies round by round, and the fleet's node lifecycle with a recording
// provider (the unit seam; tests/e2e/test_elastic.py runs real workers).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "config/autoscaler_config.h"
#include "elastic/autoscaler.h"
#include "elastic/capacity.h"
#include "elastic/fleet.h"
#include "elastic/json.h"

namespace kiln::elastic {
namespace {

constexpr int64_t kS = 1000;

GroupConfig core_group(int slots = 2) {
  GroupConfig g;
  g.name = "core";
  g.core = true;
  g.min_nodes = g.max_nodes = 1;
  g.slots_per_node = slots;
  g.price = PriceTrace(0.40);
  return g;
}

GroupConfig spot_group(int max_nodes = 4, int slots = 2) {
  GroupConfig g;
  g.name = "spot";
  g.market = Market::kSpot;
  g.min_nodes = 0;
  g.max_nodes = max_nodes;
  g.slots_per_node = slots;
  g.price = PriceTrace(0.12);
  return g;
}

ClusterSample sample(int64_t t_ms, int64_t pending, int64_t running, int64_t slots_total) {
  ClusterSample s;
  s.t_ms = t_ms;
  s.pending_tasks = pending;
  s.running_tasks = running;
  s.slots_total = slots_total;
  s.slots_busy = std::min(running, slots_total);
  derive(&s);
  return s;
}

Node node(const std::string& id, const std::string& group, NodeState state, int slots, int busy,
          int64_t idle_since_ms, int64_t launched_ms = 0) {
  Node n;
  n.id = id;
  n.group = n.counts_for = group;
  n.state = state;
  n.slots = slots;
  n.busy = busy;
  n.idle_since_ms = idle_since_ms;
  n.launched_ms = launched_ms;
  return n;
}

TEST(PriceTrace, IntegratesAcrossPriceChanges) {
  auto t = PriceTrace::from_points({{3600 * kS, 2.0}, {0, 1.0}});
  ASSERT_TRUE(t.is_ok());
  EXPECT_DOUBLE_EQ(t->at(0), 1.0);
  EXPECT_DOUBLE_EQ(t->at(3600 * kS), 2.0);
  EXPECT_DOUBLE_EQ(t->at(-5), 1.0);  // before the first point: the first price
  // Half an hour at 1.0, then half an hour at 2.0.
  EXPECT_DOUBLE_EQ(t->cost(1800 * kS, 5400 * kS), 0.5 + 1.0);
  EXPECT_DOUBLE_EQ(t->cost(10, 10), 0);
  EXPECT_DOUBLE_EQ(PriceTrace(0.36).cost(0, 10 * kS), 0.001);
  EXPECT_FALSE(PriceTrace::from_points({}).is_ok());
  EXPECT_FALSE(PriceTrace::from_points({{0, -1.0}}).is_ok());
}

TEST(Groups, ValidationNamesTheGroupAndField) {
  EXPECT_TRUE(validate_groups({core_group(), spot_group()}).is_ok());
  GroupConfig spot_core = core_group();
  spot_core.market = Market::kSpot;
  EXPECT_NE(validate_groups({spot_core}).message().find("on demand"), std::string::npos);
  GroupConfig cold = core_group();
  cold.min_nodes = 0;
  EXPECT_NE(validate_groups({cold}).message().find("group 'core'.min_nodes"), std::string::npos);
  EXPECT_NE(validate_groups({spot_group()}).message().find("core group"), std::string::npos);
  GroupConfig bad = spot_group();
  bad.max_nodes = -1;
  EXPECT_NE(validate_groups({core_group(), bad}).message().find("group 'spot'"), std::string::npos);
  GroupConfig fb = spot_group();
  fb.fallback_group = "spot";
  EXPECT_FALSE(validate_groups({core_group(), fb}).is_ok());
}

AutoscalerConfig target_config(double free_pct = 0) {
  AutoscalerConfig c;
  c.groups = {core_group(), spot_group()};
  TargetTracking t;
  t.group = "spot";
  t.target_free_slot_pct = free_pct;
  t.scale_in_cooldown_ms = 60 * kS;
  t.idle_timeout_ms = 120 * kS;
  c.targets = {t};
  return c;
}

TEST(Groups, NodeNamesMustCoverMaxNodesAndBeUnique) {
  GroupConfig core;
  core.name = "core";
  core.core = true;
  core.min_nodes = core.max_nodes = 2;
  core.node_names = {"node1"};
  auto st = validate_groups({core});
  EXPECT_NE(st.message().find("group 'core'.nodes: 1 name(s) for max_nodes 2"), std::string::npos)
      << st.message();
  core.node_names = {"node1", "node1"};
  EXPECT_NE(validate_groups({core}).message().find("named twice"), std::string::npos);
  core.node_names = {"node1", "no de"};
  EXPECT_NE(validate_groups({core}).message().find("not a node name"), std::string::npos);
  core.node_names = {"node1", "node2"};
  EXPECT_TRUE(validate_groups({core}).is_ok());
}

TEST(Autoscaler, TargetTrackingScalesOutFromZeroInOneRound) {
  AutoscalerConfig c = target_config();
  ASSERT_TRUE(validate(c).is_ok());
  Autoscaler a(c);
  std::vector<Node> nodes = {node("core-1", "core", NodeState::kReady, 2, 2, 0)};
  // 2 running on the core, 5 waiting: 7 slots needed, the core gives 2 ->
  // 5 more slots -> 3 spot nodes of 2.
  Plan p = a.reconcile(sample(10 * kS, 5, 2, 2), nodes);
  ASSERT_EQ(p.decisions.size(), 1u);
  EXPECT_EQ(p.decisions[0].group, "spot");
  EXPECT_EQ(p.decisions[0].from, 0);
  EXPECT_EQ(p.decisions[0].to, 3);
  EXPECT_EQ(p.decisions[0].policy, "target-tracking");
  EXPECT_NE(p.decisions[0].reason.find("5 pending"), std::string::npos) << p.decisions[0].reason;
  EXPECT_EQ(p.decisions[0].sample.pending_tasks, 5);
  ASSERT_EQ(p.launch.size(), 1u);
  EXPECT_EQ(p.launch[0], (std::pair<std::string, int>{"spot", 3}));
  // Clamped to max_nodes.
  Autoscaler b(c);
  EXPECT_EQ(b.reconcile(sample(0, 100, 2, 2), nodes).desired["spot"], 4);
}

TEST(Autoscaler, ScalesInOnlyNodesIdleForTheTimeoutAndIdleOnesFirst) {
  Autoscaler a(target_config());
  std::vector<Node> nodes = {node("core-1", "core", NodeState::kReady, 2, 0, 1)};
  a.reconcile(sample(0, 6, 0, 2), nodes);  // -> 2 spot nodes
  ASSERT_EQ(a.desired("spot"), 2);
  nodes.push_back(node("spot-1", "spot", NodeState::kReady, 2, 0, 100 * kS, 1));
  nodes.push_back(node("spot-2", "spot", NodeState::kReady, 2, 0, 150 * kS, 2));
  // Work gone, but nobody idle for 120 s yet: no change.
  EXPECT_TRUE(a.reconcile(sample(200 * kS, 0, 0, 6), nodes).decisions.empty());
  // spot-1 has been idle 120 s: it alone may go, and it is the one drained.
  Plan p = a.reconcile(sample(220 * kS, 0, 0, 6), nodes);
  ASSERT_EQ(p.decisions.size(), 1u);
  EXPECT_EQ(p.decisions[0].to, 1);
  EXPECT_EQ(p.drain, std::vector<std::string>{"spot-1"});
  // Within the scale-in cooldown nothing more goes.
  nodes[1].state = NodeState::kDraining;
  EXPECT_TRUE(a.reconcile(sample(275 * kS, 0, 0, 4), nodes).decisions.empty());
  EXPECT_EQ(a.reconcile(sample(281 * kS, 0, 0, 4), nodes).desired["spot"], 0);
  EXPECT_EQ(a.desired("core"), 1) << "the core never goes below its min";
}

TEST(Autoscaler, ABurstyLoadDoesNotThrash) {
  // Work arrives every other period; nodes stay busy-ish. Scale-out once,
  // no scale-in while nodes never idle for the timeout.
  Autoscaler a(target_config());
  std::vector<Node> nodes = {node("core-1", "core", NodeState::kReady, 2, 2, 0)};
  int changes = 0;
  for (int i = 0; i < 100; ++i) {
    const int64_t t = i * 10 * kS;
    const bool burst = i % 2 == 0;
    Plan p = a.reconcile(sample(t, burst ? 6 : 0, burst ? 2 : 4, 2 + 2 * a.desired("spot")), nodes);
    changes += static_cast<int>(p.decisions.size());
    // The spot nodes the plan asks for come up and are used every other period.
    for (const auto& [g, n] : p.launch) {
      for (int k = 0; k < n; ++k) {
        nodes.push_back(node("spot-" + std::to_string(nodes.size()), g, NodeState::kReady, 2,
                             burst ? 1 : 0, burst ? 0 : t, t));
      }
    }
    for (Node& n : nodes) {
      if (n.group != "spot") continue;
      n.busy = burst ? 0 : 1;
      n.idle_since_ms = burst ? t : 0;
    }
  }
  EXPECT_LE(changes, 2) << "the autoscaler thrashed";
}

TEST(Autoscaler, RulesNeedTheirEvaluationPeriodsAndRespectCooldown) {
  AutoscalerConfig c;
  c.groups = {core_group(), spot_group(10)};
  ScalingRule out;
  out.name = "pending";
  out.group = "spot";
  out.metric = "pending_ratio";
  out.comparison = Comparison::kGreater;
  out.threshold = 1.0;
  out.evaluation_periods = 3;
  out.adjustment = Adjustment::kChangeInCapacity;
  out.amount = 2;
  out.cooldown_ms = 30 * kS;
  ScalingRule pct = out;
  pct.name = "grow-half";
  pct.metric = "oldest_pending_wait_s";
  pct.threshold = 600;
  pct.evaluation_periods = 1;
  pct.adjustment = Adjustment::kPercentChangeInCapacity;
  pct.amount = 50;
  ScalingRule exact = out;
  exact.name = "idle";
  exact.metric = "running_tasks";
  exact.comparison = Comparison::kLessOrEqual;
  exact.threshold = 0;
  exact.evaluation_periods = 2;
  exact.adjustment = Adjustment::kExactCapacity;
  exact.amount = 0;
  c.rules = {out, pct, exact};
  ASSERT_TRUE(validate(c).is_ok()) << validate(c).message();
  Autoscaler a(c);
  std::vector<Node> nodes = {node("core-1", "core", NodeState::kReady, 2, 2, 0)};
  // pending_ratio 3 > 1: fires on the third consecutive sample only.
  EXPECT_TRUE(a.reconcile(sample(0, 6, 2, 2), nodes).decisions.empty());
  EXPECT_TRUE(a.reconcile(sample(10 * kS, 6, 2, 2), nodes).decisions.empty());
  Plan p = a.reconcile(sample(20 * kS, 6, 2, 2), nodes);
  ASSERT_EQ(p.decisions.size(), 1u);
  EXPECT_EQ(p.decisions[0].to, 2);
  EXPECT_NE(p.decisions[0].reason.find("pending_ratio 3.00 > 1.00 for 3"), std::string::npos)
      << p.decisions[0].reason;
  // A broken streak starts again.
  a.reconcile(sample(60 * kS, 0, 2, 6), nodes);
  a.reconcile(sample(70 * kS, 8, 2, 6), nodes);
  EXPECT_TRUE(a.reconcile(sample(80 * kS, 8, 2, 6), nodes).decisions.empty());
  // Percent change: 50% of 2 = 1 node, once the cooldown from 20 s passed.
  ClusterSample old = sample(90 * kS, 1, 2, 6);
  old.oldest_pending_wait_ms = 700 * kS;
  Plan q = a.reconcile(old, nodes);
  ASSERT_FALSE(q.decisions.empty());
  EXPECT_EQ(q.decisions.back().to, 3) << describe(q.decisions.back());
  EXPECT_EQ(q.decisions.back().policy, "grow-half");
  // Exact capacity 0 after two idle samples, past the cooldown.
  a.reconcile(sample(200 * kS, 0, 0, 10), nodes);
  Plan r = a.reconcile(sample(210 * kS, 0, 0, 10), nodes);
  ASSERT_EQ(r.decisions.size(), 1u);
  EXPECT_EQ(r.decisions[0].to, 0);
  EXPECT_EQ(r.decisions[0].policy, "idle");
}

TEST(Autoscaler, ValidationRefusesBadReferences) {
  AutoscalerConfig c = target_config();
  c.targets[0].group = "nope";
  EXPECT_NE(validate(c).message().find("no group 'nope'"), std::string::npos);
  c = target_config();
  ScalingRule r;
  r.name = "x";
  r.group = "spot";
  r.metric = "cpu";
  c.rules = {r};
  EXPECT_NE(validate(c).message().find("unknown metric 'cpu'"), std::string::npos);
  c.rules[0].metric = "pending_tasks";
  EXPECT_NE(validate(c).message().find("rules or a target"), std::string::npos);
}

// A provider that records calls.
class RecordingProvider : public NodeProvider {
 public:
  const char* kind() const override { return "test"; }
  Status launch(const GroupConfig& g, const std::string& id, int64_t) override {
    calls.push_back("launch " + g.name + " " + id);
    return Status::ok();
  }
  Status drain(const std::string& id, int64_t) override {
    calls.push_back("drain " + id);
    return Status::ok();
  }
  Status terminate(const std::string& id, int64_t) override {
    calls.push_back("terminate " + id);
    return Status::ok();
  }
  std::vector<std::string> calls;
};

TEST(Fleet, KeepsTheCoreWarmScalesAndDrainsThroughTheProvider) {
  RecordingProvider provider;
  AutoscalerConfig c = target_config();
  c.drain_timeout_ms = 30 * kS;
  Fleet fleet(c, &provider);
  ASSERT_TRUE(fleet.start(0).is_ok());
  EXPECT_EQ(provider.calls, std::vector<std::string>{"launch core core-1"});
  fleet.node_ready("core-1", 1 * kS);
  auto plan = fleet.reconcile(sample(10 * kS, 3, 2, 2), 10 * kS);
  ASSERT_TRUE(plan.is_ok());
  EXPECT_EQ(provider.calls.back(), "launch spot spot-2");
  fleet.node_ready("spot-1", 20 * kS);
  fleet.node_ready("spot-2", 20 * kS);
  fleet.node_busy("spot-1", 1, 21 * kS);
  fleet.node_busy("spot-2", 0, 21 * kS);
  EXPECT_EQ(fleet.node("spot-1")->state, NodeState::kReady);
  // Idle long enough: both spot nodes are drained; the idle one goes at
  // once, the busy one at its deadline.
  fleet.node_busy("spot-1", 1, 200 * kS);
  fleet.node_busy("spot-2", 0, 200 * kS);
  auto in = fleet.reconcile(sample(400 * kS, 0, 1, 6), 400 * kS);
  ASSERT_TRUE(in.is_ok());
  EXPECT_EQ(fleet.node("spot-2")->state, NodeState::kGone);
  // spot-1 is busy so it is not idle for the timeout: it stays.
  EXPECT_EQ(fleet.node("spot-1")->state, NodeState::kReady);
  fleet.node_busy("spot-1", 0, 401 * kS);
  ASSERT_TRUE(fleet.reconcile(sample(600 * kS, 0, 0, 4), 600 * kS).is_ok());
  EXPECT_EQ(fleet.node("spot-1")->state, NodeState::kGone);
  EXPECT_EQ(fleet.node("core-1")->state, NodeState::kReady);
  EXPECT_NE(std::find(provider.calls.begin(), provider.calls.end(), "terminate spot-1"),
            provider.calls.end());
}

TEST(Fleet, NamedNodesTakeTheFirstFreeNameAndReuseItOnceGone) {
  RecordingProvider provider;
  AutoscalerConfig c = target_config();
  c.groups[0].node_names = {"node1"};
  c.groups[1].node_names = {"cloud1", "cloud2", "cloud3"};
  c.groups[1].max_nodes = 3;
  ASSERT_TRUE(validate(c).is_ok()) << validate(c).message();
  Fleet fleet(c, &provider);
  ASSERT_TRUE(fleet.start(0).is_ok());
  EXPECT_EQ(provider.calls, std::vector<std::string>{"launch core node1"});
  fleet.node_ready("node1", 1 * kS);
  ASSERT_TRUE(fleet.reconcile(sample(10 * kS, 3, 2, 2), 10 * kS).is_ok());
  EXPECT_EQ(provider.calls.back(), "launch spot cloud2");
  ASSERT_NE(fleet.node("cloud1"), nullptr);
  fleet.node_ready("cloud1", 20 * kS);
  fleet.node_ready("cloud2", 20 * kS);
  // A notice takes cloud1 away (notice 0: gone at once) and its
  // replacement reuses the freed name rather than a fourth one.
  ASSERT_TRUE(fleet.interrupt("cloud1", 30 * kS, 0).is_ok());
  ASSERT_TRUE(fleet.tick(31 * kS).is_ok());
  EXPECT_EQ(fleet.node("cloud1")->state, NodeState::kGone);
  ASSERT_TRUE(fleet.reconcile(sample(40 * kS, 3, 2, 4), 40 * kS).is_ok());
  EXPECT_EQ(std::count(provider.calls.begin(), provider.calls.end(), "launch spot cloud1"), 2);
  EXPECT_EQ(fleet.node("cloud1")->state, NodeState::kBooting);
}

TEST(Fleet, ADrainTimesOutAndAnInterruptedNodeIsReplaced) {
  RecordingProvider provider;
  AutoscalerConfig c;
  c.groups = {core_group(), spot_group()};
  c.groups[1].min_nodes = 1;  // a static spot node
  c.drain_timeout_ms = 30 * kS;
  Fleet fleet(c, &provider);
  ASSERT_TRUE(fleet.start(0).is_ok());
  fleet.node_ready("spot-1", 1 * kS);
  fleet.node_busy("spot-1", 2, 2 * kS);
  ASSERT_TRUE(fleet.interrupt("spot-1", 10 * kS, 120 * kS).is_ok());
  EXPECT_EQ(fleet.node("spot-1")->state, NodeState::kDraining);
  EXPECT_TRUE(fleet.node("spot-1")->interrupted);
  // Still busy before the deadline: it stays; its replacement is launched
  // at the next reconcile, as the group is below its size.
  ASSERT_TRUE(fleet.reconcile(sample(60 * kS, 0, 2, 2), 60 * kS).is_ok());
  EXPECT_EQ(fleet.node("spot-1")->state, NodeState::kDraining);
  EXPECT_EQ(provider.calls.back(), "launch spot spot-2");
  ASSERT_TRUE(fleet.tick(130 * kS).is_ok());
  EXPECT_EQ(fleet.node("spot-1")->state, NodeState::kGone);
  EXPECT_EQ(fleet.interruptions(), 1);
  EXPECT_EQ(fleet.interrupt("spot-1", 131 * kS).code(), StatusCode::kNotFound);
}

TEST(Fleet, FallsBackToOnDemandAfterRepeatedInterruptions) {
  RecordingProvider provider;
  AutoscalerConfig c;
  GroupConfig od = spot_group();
  od.name = "ondemand";
  od.market = Market::kOnDemand;
  od.price = PriceTrace(0.40);
  GroupConfig spot = spot_group();
  spot.min_nodes = 1;
  spot.fallback_group = "ondemand";
  spot.fallback_after_interruptions = 2;
  c.groups = {core_group(), spot, od};
  Fleet fleet(c, &provider);
  ASSERT_TRUE(fleet.start(0).is_ok());
  for (int i = 1; i <= 2; ++i) {
    const std::string id = "spot-" + std::to_string(i);
    fleet.node_ready(id, i * kS);
    ASSERT_TRUE(fleet.interrupt(id, i * 10 * kS, 0).is_ok());
    ASSERT_TRUE(fleet.reconcile(sample(i * 10 * kS + 1, 0, 0, 2), i * 10 * kS + 1).is_ok());
  }
  // The second replacement went to the on-demand group, standing in for spot.
  EXPECT_EQ(provider.calls.back(), "launch ondemand ondemand-1");
  EXPECT_EQ(fleet.node("ondemand-1")->counts_for, "spot");
  EXPECT_EQ(fleet.decisions().back().policy, "fallback-on-demand");
}

TEST(Fleet, CostsEveryNodeSecondByMarket) {
  RecordingProvider provider;
  AutoscalerConfig c = target_config();
  auto trace = PriceTrace::from_points({{0, 0.10}, {1800 * kS, 0.30}});
  c.groups[1].price = *trace;
  Fleet fleet(c, &provider);
  ASSERT_TRUE(fleet.start(0).is_ok());
  ASSERT_TRUE(fleet.reconcile(sample(0, 2, 2, 2), 0).is_ok());  // one spot node at t=0
  fleet.node_ready("spot-1", 0);
  CostReport r = fleet.cost(3600 * kS);
  EXPECT_DOUBLE_EQ(r.by_market["on_demand"].cost, 0.40);
  EXPECT_DOUBLE_EQ(r.by_market["spot"].cost, 0.05 + 0.15);
  EXPECT_DOUBLE_EQ(r.by_market["spot"].node_seconds, 3600);
  EXPECT_DOUBLE_EQ(r.total, 0.60);
  EXPECT_DOUBLE_EQ(r.rate_per_hour, 0.40 + 0.30);
  // A slot of a 2-slot node for 10 minutes in the 0.30 hour.
  EXPECT_DOUBLE_EQ(fleet.slot_cost("spot-1", 1800 * kS, 2400 * kS), 0.30 / 6 / 2);
}

TEST(Config, ParsesGroupsAndPoliciesAndNamesBadKeys) {
  auto doc = toml::parse(R"(
[[group]]
name = "core"
core = true
min_nodes = 1
max_nodes = 2
slots_per_node = 4
price_per_hour = 0.5

[[group]]
name = "spot"
market = "spot"
max_nodes = 8
price_trace = [[0, 0.1], [3600, 0.2]]
bootstrap_seconds = 90

[autoscaling]
period_seconds = 5
[[autoscaling.rule]]
name = "out"
group = "spot"
metric = "pending_ratio"
comparison = ">="
threshold = 2
evaluation_periods = 3
adjustment = "percent_change_in_capacity"
amount = 50
cooldown_seconds = 60
)");
  auto c = config::parse_autoscaler_config(doc);
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  ASSERT_EQ(c->groups.size(), 2u);
  EXPECT_EQ(c->groups[0].slots_per_node, 4);
  EXPECT_EQ(c->groups[1].market, Market::kSpot);
  EXPECT_EQ(c->groups[1].bootstrap_ms, 90 * kS);
  EXPECT_DOUBLE_EQ(c->groups[1].price.at(4000 * kS), 0.2);
  EXPECT_EQ(c->period_ms, 5 * kS);
  ASSERT_EQ(c->rules.size(), 1u);
  EXPECT_EQ(c->rules[0].comparison, Comparison::kGreaterOrEqual);
  EXPECT_EQ(c->rules[0].adjustment, Adjustment::kPercentChangeInCapacity);

  auto none = config::parse_autoscaler_config(toml::table{}, config::CoreDefaults{3, 8});
  ASSERT_TRUE(none.is_ok());
  ASSERT_EQ(none->groups.size(), 1u);
  EXPECT_EQ(none->groups[0].max_nodes, 3);
  EXPECT_EQ(none->groups[0].slots_per_node, 8);

  for (const auto& [text, expect] : std::vector<std::pair<std::string, std::string>>{
           {"[[group]]\nname = \"core\"\ncore = true\nslot = 2\n", "group[0].slot: unknown"},
           {"[[group]]\nname = \"core\"\ncore = true\nmarket = \"cheap\"\n", "group[0].market"},
           {"[[group]]\nname = \"core\"\ncore = true\n[autoscaling]\nperiod_seconds = \"x\"\n",
            "autoscaling.period_seconds"},
           {"[[group]]\nname = \"core\"\ncore = true\n[[autoscaling.rule]]\ngroup = \"core\"\n"
            "metric = \"pending_tasks\"\ncomparison = \"=\"\nthreshold = 1\n",
            "autoscaling.rule[0].comparison"},
       }) {
    auto bad = config::parse_autoscaler_config(toml::parse(text));
    ASSERT_FALSE(bad.is_ok()) << text;
    EXPECT_NE(bad.status().message().find(expect), std::string::npos) << bad.status().message();
  }
}

TEST(Json, NodesAndSamplesRoundTrip) {
  Node n = node("spot-3", "spot", NodeState::kDraining, 2, 1, 0, 77);
  n.interrupted = true;
  n.drain_reason = "interruption";
  auto back = node_from_json(to_json(n));
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  EXPECT_EQ(back->state, NodeState::kDraining);
  EXPECT_EQ(back->launched_ms, 77);
  EXPECT_TRUE(back->interrupted);
  ClusterSample s = sample(5, 3, 2, 4);
  auto sb = sample_from_json(to_json(s));
  ASSERT_TRUE(sb.is_ok());
  EXPECT_DOUBLE_EQ(sb->pending_ratio, 0.75);
  auto broken = node_from_json({{"id", "x"}});
  ASSERT_FALSE(broken.is_ok());
  EXPECT_NE(broken.status().message().find("node 'x'"), std::string::npos);
}

}  // namespace
}  // namespace kiln::elastic
