// The elastic contract, case by case: what elastic_test.cc's walkthroughs do
// not pin down. Price steps and additivity, every group/config error naming
// its key, each rule adjustment with its rounding and clamping, cooldowns
// shared by the policies of a group, the drain order, and the fleet's edges
// (ids never reused, booting nodes terminated at once, notices that shorten
// but never extend a drain, the fallback window, bounded decisions, cost of
// nodes that are gone).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "config/autoscaler_config.h"
#include "elastic/autoscaler.h"
#include "elastic/capacity.h"
#include "elastic/fleet.h"

namespace kiln::elastic {
namespace {

constexpr int64_t kS = 1000;

GroupConfig core(int slots = 2) {
  GroupConfig g;
  g.name = "core";
  g.core = true;
  g.min_nodes = g.max_nodes = 1;
  g.slots_per_node = slots;
  g.price = PriceTrace(0.40);
  return g;
}

GroupConfig spot(int min_nodes, int max_nodes) {
  GroupConfig g;
  g.name = "spot";
  g.market = Market::kSpot;
  g.min_nodes = min_nodes;
  g.max_nodes = max_nodes;
  g.slots_per_node = 2;
  g.price = PriceTrace(0.12);
  return g;
}

ClusterSample at(int64_t t_ms, int64_t pending, int64_t running, int64_t slots_total = 2) {
  ClusterSample s;
  s.t_ms = t_ms;
  s.pending_tasks = pending;
  s.running_tasks = running;
  s.slots_total = slots_total;
  s.slots_busy = std::min(running, slots_total);
  derive(&s);
  return s;
}

ScalingRule rule(const std::string& name, const std::string& metric, Comparison cmp,
                 double threshold, Adjustment adj, double amount, int64_t cooldown_ms = 0) {
  ScalingRule r;
  r.name = name;
  r.group = "spot";
  r.metric = metric;
  r.comparison = cmp;
  r.threshold = threshold;
  r.evaluation_periods = 1;
  r.adjustment = adj;
  r.amount = amount;
  r.cooldown_ms = cooldown_ms;
  return r;
}

Node ready(const std::string& id, int busy, int64_t idle_since_ms, int64_t launched_ms) {
  Node n;
  n.id = id;
  n.group = n.counts_for = "spot";
  n.state = NodeState::kReady;
  n.slots = 2;
  n.busy = busy;
  n.idle_since_ms = idle_since_ms;
  n.launched_ms = launched_ms;
  return n;
}

// The warm core a started fleet has: no "min-size" decision in round one.
std::vector<Node> warm() {
  Node n = ready("core-1", 0, 1, 0);
  n.group = n.counts_for = "core";
  return {n};
}

// --- prices --------------------------------------------------------------------

TEST(PriceTraceContract, IntegratesExactlyOverManySteps) {
  auto t = PriceTrace::from_points({{600 * kS, 3.0}, {0, 1.0}, {2400 * kS, 2.0}, {1200 * kS, 0}});
  ASSERT_TRUE(t.is_ok());
  // 300 s at 1.0, 600 s at 3.0, 1200 s free, 600 s at 2.0.
  EXPECT_DOUBLE_EQ(t->cost(300 * kS, 3000 * kS), (300 * 1.0 + 600 * 3.0 + 600 * 2.0) / 3600);
  // Within one step, and on a step boundary exactly.
  EXPECT_DOUBLE_EQ(t->cost(600 * kS, 1200 * kS), 3.0 * 600 / 3600);
  EXPECT_DOUBLE_EQ(t->cost(1200 * kS, 2400 * kS), 0);
  // Splitting an interval anywhere gives the same money.
  const double whole = t->cost(0, 4000 * kS);
  for (int64_t cut : {1, 599999, 600000, 600001, 1800000, 3999999}) {
    EXPECT_NEAR(t->cost(0, cut) + t->cost(cut, 4000 * kS), whole, 1e-12) << cut;
  }
  // A trace that starts late: its first price holds before it.
  auto late = PriceTrace::from_points({{3600 * kS, 0.5}});
  ASSERT_TRUE(late.is_ok());
  EXPECT_DOUBLE_EQ(late->cost(0, 1800 * kS), 0.25);
  EXPECT_FALSE(PriceTrace::from_points({{0, 1.0}, {10, std::nan("")}}).is_ok());
}

TEST(GroupsContract, EachMistakeIsNamed) {
  GroupConfig dup = spot(0, 2);
  dup.name = "core";
  dup.core = false;
  EXPECT_NE(validate_groups({core(), dup}).message().find("group 'core': configured twice"),
            std::string::npos);
  GroupConfig caps = spot(0, 2);
  caps.name = "Spot!";
  EXPECT_NE(validate_groups({core(), caps}).message().find("group 'Spot!'.name"),
            std::string::npos);
  GroupConfig no_slots = spot(0, 2);
  no_slots.slots_per_node = 0;
  EXPECT_NE(validate_groups({core(), no_slots}).message().find("group 'spot'.slots_per_node"),
            std::string::npos);
  GroupConfig second_core = core();
  second_core.name = "core2";
  EXPECT_NE(validate_groups({core(), second_core}).message().find("found 2"), std::string::npos);
  GroupConfig fb = spot(0, 2);
  fb.fallback_group = "nope";
  EXPECT_NE(validate_groups({core(), fb}).message().find("group 'spot'.fallback_group"),
            std::string::npos);
  GroupConfig other_spot = spot(0, 2);
  other_spot.name = "spot2";
  fb.fallback_group = "spot2";
  EXPECT_NE(validate_groups({core(), fb, other_spot}).message().find("must be on demand"),
            std::string::npos);
  fb.fallback_group = "core";  // an on-demand group: fine
  EXPECT_TRUE(validate_groups({core(), fb}).is_ok());
}

// --- rules ---------------------------------------------------------------------

TEST(RulesContract, ChangeInCapacityGrowsAndShrinksWithinBounds) {
  AutoscalerConfig c;
  c.groups = {core(), spot(1, 5)};
  c.rules = {
      rule("grow", "pending_tasks", Comparison::kGreater, 0, Adjustment::kChangeInCapacity, 10),
      rule("shrink", "running_tasks", Comparison::kLess, 1, Adjustment::kChangeInCapacity, -3)};
  ASSERT_TRUE(validate(c).is_ok()) << validate(c).message();
  Autoscaler a(c);
  const std::vector<Node> none = warm();
  std::vector<int> sizes;
  for (int i = 0; i < 4; ++i) {
    const bool busy = i == 0;
    Plan p = a.reconcile(at(i * 10 * kS, busy ? 5 : 0, busy ? 1 : 0), none);
    sizes.push_back(a.desired("spot"));
    if (i == 3) {
      EXPECT_TRUE(p.decisions.empty()) << "already at min_nodes";
    }
  }
  // 1 + 10 clamped to 5; 5 - 3 = 2; 2 - 3 clamped to 1; stays 1.
  EXPECT_EQ(sizes, (std::vector<int>{5, 2, 1, 1}));
}

TEST(RulesContract, PercentChangeRoundsAwayFromZeroByAtLeastOneNode) {
  AutoscalerConfig c;
  c.groups = {core(), spot(0, 20)};
  c.rules = {
      rule("set", "pending_tasks", Comparison::kGreaterOrEqual, 100, Adjustment::kExactCapacity, 3),
      rule("up", "pending_tasks", Comparison::kGreaterOrEqual, 1,
           Adjustment::kPercentChangeInCapacity, 10),
      rule("down", "running_tasks", Comparison::kLessOrEqual, 0,
           Adjustment::kPercentChangeInCapacity, -30)};
  ASSERT_TRUE(validate(c).is_ok()) << validate(c).message();
  Autoscaler a(c);
  const std::vector<Node> none = warm();
  auto step = [&](int64_t t, int64_t pending, int64_t running) {
    Plan p = a.reconcile(at(t, pending, running), none);
    return p.decisions.empty() ? std::string("-")
                               : p.decisions[0].policy + ":" + std::to_string(p.decisions[0].to);
  };
  EXPECT_EQ(step(0, 100, 5), "set:3");  // the first rule that changes the size wins
  EXPECT_EQ(step(10 * kS, 100, 5), "up:4") << "exact 3 at 3 is no change; 10% of 3 -> +1";
  EXPECT_EQ(step(20 * kS, 0, 0), "down:2");  // -30% of 4 = -1.2 -> -2
  EXPECT_EQ(step(30 * kS, 0, 0), "down:1");  // -0.6 -> -1
  EXPECT_EQ(step(40 * kS, 0, 0), "down:0");  // -0.3 -> -1
  EXPECT_EQ(step(50 * kS, 0, 0), "-");       // at min_nodes
}

TEST(RulesContract, CooldownRunsFromTheGroupsLastChangeByAnyPolicy) {
  AutoscalerConfig c;
  c.groups = {core(), spot(0, 10)};
  c.rules = {rule("fast", "pending_tasks", Comparison::kGreaterOrEqual, 10,
                  Adjustment::kChangeInCapacity, 1, 0),
             rule("slow", "pending_tasks", Comparison::kGreaterOrEqual, 1,
                  Adjustment::kChangeInCapacity, 1, 60 * kS)};
  Autoscaler a(c);
  const std::vector<Node> none = warm();
  ASSERT_EQ(a.reconcile(at(0, 20, 0), none).decisions.at(0).policy, "fast");
  // "slow" has met its threshold since t=0 but the group changed at t=0.
  EXPECT_TRUE(a.reconcile(at(10 * kS, 5, 0), none).decisions.empty());
  EXPECT_TRUE(a.reconcile(at(50 * kS, 5, 0), none).decisions.empty());
  Plan p = a.reconcile(at(60 * kS, 5, 0), none);
  ASSERT_EQ(p.decisions.size(), 1u);
  EXPECT_EQ(p.decisions[0].policy, "slow");
  EXPECT_EQ(p.decisions[0].from, 1);
  EXPECT_EQ(p.decisions[0].to, 2);
  EXPECT_NE(p.decisions[0].reason.find("pending_tasks 5.00 >= 1.00"), std::string::npos)
      << p.decisions[0].reason;
  EXPECT_EQ(p.decisions[0].sample.t_ms, 60 * kS);
}

// --- target tracking -------------------------------------------------------------

AutoscalerConfig tracked(double free_pct, int max_nodes = 10) {
  AutoscalerConfig c;
  c.groups = {core(), spot(0, max_nodes)};
  TargetTracking t;
  t.group = "spot";
  t.target_free_slot_pct = free_pct;
  c.targets = {t};
  return c;
}

TEST(TargetContract, SizesTheGroupForTheWorkAtTheFreeSlotTarget) {
  Autoscaler a(tracked(20));
  Node c1 = ready("core-1", 2, 0, 0);
  c1.group = c1.counts_for = "core";
  // 2 running + 12 pending = 14 tasks; at 20% free they need ceil(17.5) =
  // 18 slots; the core gives 2, so 16 more: 8 nodes of 2.
  Plan p = a.reconcile(at(10 * kS, 12, 2), {c1});
  ASSERT_EQ(p.decisions.size(), 1u);
  EXPECT_EQ(p.decisions[0].to, 8);
  EXPECT_NE(p.decisions[0].reason.find("14 tasks"), std::string::npos) << p.decisions[0].reason;
  EXPECT_NE(p.decisions[0].reason.find("18 slots"), std::string::npos) << p.decisions[0].reason;
  EXPECT_EQ(p.launch, (std::vector<std::pair<std::string, int>>{{"spot", 8}}));
}

TEST(TargetContract, ScaleOutWaitsForItsCooldown) {
  AutoscalerConfig c = tracked(0);
  c.targets[0].scale_out_cooldown_ms = 30 * kS;
  Autoscaler a(c);
  EXPECT_EQ(a.reconcile(at(0, 4, 0), {}).desired["spot"], 2);
  EXPECT_TRUE(a.reconcile(at(10 * kS, 10, 0), {}).decisions.empty());
  EXPECT_EQ(a.reconcile(at(30 * kS, 10, 0), {}).desired["spot"], 5);
}

// The burst-and-quiet load of a real fleet, every period, with the
// documented defaults (20% free, 10 min idle timeout, 5 min scale-in
// cooldown): one scale-out, then the nodes are kept.
TEST(TargetContract, DefaultsDoNotThrashOnALoadThatAlternatesEveryPeriod) {
  class Null : public NodeProvider {
   public:
    const char* kind() const override { return "null"; }
    Status launch(const GroupConfig&, const std::string&, int64_t) override { return {}; }
    Status drain(const std::string&, int64_t) override { return {}; }
    Status terminate(const std::string&, int64_t) override { return {}; }
  } provider;
  AutoscalerConfig c = tracked(20);
  c.targets[0] = TargetTracking{};
  c.targets[0].group = "spot";
  Fleet fleet(c, &provider);
  ASSERT_TRUE(fleet.start(0).is_ok());
  // Eight tasks in hand in the bursts (as many running as there are ready
  // slots, the rest pending), none in between.
  size_t decisions = 0;
  for (int i = 0; i < 100; ++i) {
    const int64_t t = (i + 1) * c.period_ms;
    int64_t work = i % 2 == 0 ? 8 : 0, slots = 0, running = 0;
    for (const Node& n : fleet.live_nodes()) {
      if (n.state == NodeState::kBooting) fleet.node_ready(n.id, t);
      if (fleet.node(n.id)->state != NodeState::kReady) continue;
      const int busy = static_cast<int>(std::min<int64_t>(n.slots, work - running));
      fleet.node_busy(n.id, busy, t);
      running += busy;
      slots += n.slots;
    }
    auto plan = fleet.reconcile(at(t, work - running, running, slots), t);
    ASSERT_TRUE(plan.is_ok());
    decisions += plan->decisions.size();
  }
  EXPECT_GE(decisions, 1u) << "the burst needs more than the core";
  EXPECT_LE(decisions, 2u) << "thrashing";
  EXPECT_EQ(fleet.autoscaler().desired("spot"), 4);  // 8 tasks at 20% free: 10 slots, less 2
}

// --- the drain order -------------------------------------------------------------

TEST(PlanContract, DrainsBootingThenIdleLongestThenLeastBusyNewest) {
  AutoscalerConfig c;
  c.groups = {core(), spot(0, 10)};
  c.rules = {
      rule("big", "pending_tasks", Comparison::kGreaterOrEqual, 1, Adjustment::kExactCapacity, 6),
      rule("small", "pending_tasks", Comparison::kLess, 1, Adjustment::kExactCapacity, 1)};
  Autoscaler a(c);
  Node booting = ready("spot-6", 0, 0, 60);
  booting.state = NodeState::kBooting;
  Node draining = ready("spot-7", 0, 5, 70);
  draining.state = NodeState::kDraining;
  Node gone = ready("spot-8", 0, 5, 80);
  gone.state = NodeState::kGone;
  std::vector<Node> nodes = {ready("spot-1", 2, 0, 10),
                             ready("spot-2", 1, 0, 20),
                             ready("spot-3", 1, 0, 30),
                             ready("spot-4", 0, 50, 40),
                             ready("spot-5", 0, 20, 50),
                             booting,
                             draining,
                             gone};
  Plan grow = a.reconcile(at(0, 5, 4), nodes);
  EXPECT_EQ(grow.desired["spot"], 6);
  // Six nodes count already (not the draining or gone one): no spot launch.
  EXPECT_EQ(grow.launch, (std::vector<std::pair<std::string, int>>{{"core", 1}}));
  Plan shrink = a.reconcile(at(10 * kS, 0, 4), nodes);
  EXPECT_EQ(shrink.drain,
            (std::vector<std::string>{"spot-6", "spot-5", "spot-4", "spot-3", "spot-2"}));
}

TEST(PlanContract, AGroupBelowItsMinIsRaisedInTheFirstRound) {
  AutoscalerConfig c;
  c.groups = {core(), spot(2, 4)};
  Autoscaler a(c);
  Plan p = a.reconcile(at(0, 0, 0), {});
  ASSERT_EQ(p.decisions.size(), 2u);
  EXPECT_EQ(p.decisions[0].policy, "min-size");
  EXPECT_EQ(p.decisions[0].group, "core");
  EXPECT_EQ(p.decisions[1].group, "spot");
  EXPECT_EQ(p.decisions[1].from, 0);
  EXPECT_EQ(p.decisions[1].to, 2);
  EXPECT_EQ(p.launch, (std::vector<std::pair<std::string, int>>{{"core", 1}, {"spot", 2}}));
  // A group that already has its min nodes (a fleet that was started) gets none.
  Autoscaler b(c);
  Node c1 = ready("core-1", 0, 1, 0);
  c1.group = c1.counts_for = "core";
  EXPECT_EQ(b.reconcile(at(0, 0, 0), {c1}).decisions.size(), 1u);
}

// --- the fleet -------------------------------------------------------------------

class Recorder : public NodeProvider {
 public:
  const char* kind() const override { return "recorder"; }
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
  bool called(const std::string& call) const {
    return std::find(calls.begin(), calls.end(), call) != calls.end();
  }
  std::vector<std::string> calls;
};

TEST(FleetContract, IdsAreNeverReused) {
  Recorder provider;
  AutoscalerConfig c;
  c.groups = {core(), spot(1, 1)};
  Fleet fleet(c, &provider);
  ASSERT_TRUE(fleet.start(0).is_ok());
  for (int i = 1; i <= 3; ++i) {
    fleet.node_lost("spot-" + std::to_string(i), i * 10 * kS);
    EXPECT_EQ(fleet.node("spot-" + std::to_string(i))->state, NodeState::kGone);
    ASSERT_TRUE(fleet.reconcile(at(i * 10 * kS, 0, 0), i * 10 * kS).is_ok());
  }
  EXPECT_EQ(provider.calls.back(), "launch spot spot-4");
  EXPECT_EQ(fleet.nodes().size(), 5u);  // gone ones included
  EXPECT_EQ(fleet.live_nodes().size(), 2u);
}

TEST(FleetContract, BootingNodesThatAreDrainedOrInterruptedAreTerminatedAtOnce) {
  Recorder provider;
  AutoscalerConfig c;
  c.groups = {core(), spot(0, 4)};
  c.rules = {
      rule("up", "pending_tasks", Comparison::kGreater, 0, Adjustment::kExactCapacity, 2),
      rule("down", "pending_tasks", Comparison::kLessOrEqual, 0, Adjustment::kExactCapacity, 0)};
  Fleet fleet(c, &provider);
  ASSERT_TRUE(fleet.start(0).is_ok());
  ASSERT_TRUE(fleet.reconcile(at(10 * kS, 3, 0), 10 * kS).is_ok());
  ASSERT_TRUE(fleet.interrupt("spot-1", 12 * kS).is_ok());
  EXPECT_EQ(fleet.node("spot-1")->state, NodeState::kGone);
  EXPECT_EQ(fleet.node("spot-1")->ended_ms, 12 * kS);
  ASSERT_TRUE(fleet.reconcile(at(20 * kS, 0, 0), 20 * kS).is_ok());
  const Node* n = fleet.node("spot-2");
  EXPECT_EQ(n->state, NodeState::kGone);
  EXPECT_EQ(n->drain_reason, "scale-in");
  EXPECT_EQ(n->ended_ms, 20 * kS);
  EXPECT_TRUE(provider.called("terminate spot-2"));
  EXPECT_FALSE(provider.called("drain spot-2")) << "nothing to drain on a booting node";
}

TEST(FleetContract, ScaleInDrainTimesOutOnABusyNode) {
  Recorder provider;
  AutoscalerConfig c;
  c.groups = {core(), spot(0, 4)};
  c.drain_timeout_ms = 60 * kS;
  c.rules = {
      rule("up", "pending_tasks", Comparison::kGreater, 0, Adjustment::kExactCapacity, 2),
      rule("down", "pending_tasks", Comparison::kLessOrEqual, 0, Adjustment::kExactCapacity, 0)};
  Fleet fleet(c, &provider);
  ASSERT_TRUE(fleet.start(0).is_ok());
  ASSERT_TRUE(fleet.reconcile(at(10 * kS, 3, 0), 10 * kS).is_ok());
  for (const char* id : {"core-1", "spot-1", "spot-2"}) fleet.node_ready(id, 15 * kS);
  fleet.node_busy("spot-1", 2, 16 * kS);
  fleet.node_busy("spot-2", 1, 16 * kS);
  ASSERT_TRUE(fleet.reconcile(at(20 * kS, 0, 3, 6), 20 * kS).is_ok());
  for (const char* id : {"spot-1", "spot-2"}) {
    EXPECT_EQ(fleet.node(id)->state, NodeState::kDraining) << id;
    EXPECT_EQ(fleet.node(id)->drain_deadline_ms, 80 * kS) << id;
    EXPECT_EQ(fleet.node(id)->drain_reason, "scale-in") << id;
    EXPECT_TRUE(provider.called(std::string("drain ") + id)) << id;
  }
  // spot-2 finishes its task: gone at the next tick; spot-1 at the deadline.
  fleet.node_busy("spot-2", 0, 30 * kS);
  ASSERT_TRUE(fleet.tick(31 * kS).is_ok());
  EXPECT_EQ(fleet.node("spot-2")->state, NodeState::kGone);
  EXPECT_EQ(fleet.node("spot-2")->ended_ms, 31 * kS);
  ASSERT_TRUE(fleet.tick(79 * kS).is_ok());
  EXPECT_EQ(fleet.node("spot-1")->state, NodeState::kDraining);
  ASSERT_TRUE(fleet.tick(80 * kS).is_ok());
  EXPECT_EQ(fleet.node("spot-1")->state, NodeState::kGone);
  EXPECT_TRUE(provider.called("terminate spot-1"));
  // Nothing more is launched: desired is 0 and nodes gone by scale-in are
  // not replaced.
  ASSERT_TRUE(fleet.reconcile(at(90 * kS, 0, 0, 2), 90 * kS).is_ok());
  EXPECT_EQ(fleet.live_nodes().size(), 1u);
}

TEST(FleetContract, ANoticeShortensADrainButNeverExtendsIt) {
  Recorder provider;
  AutoscalerConfig c;
  c.groups = {core(), spot(0, 4)};
  c.drain_timeout_ms = 60 * kS;
  c.rules = {
      rule("up", "pending_tasks", Comparison::kGreater, 0, Adjustment::kExactCapacity, 2),
      rule("down", "pending_tasks", Comparison::kLessOrEqual, 0, Adjustment::kExactCapacity, 0)};
  Fleet fleet(c, &provider);
  ASSERT_TRUE(fleet.start(0).is_ok());
  ASSERT_TRUE(fleet.reconcile(at(0, 3, 0), 0).is_ok());
  fleet.node_ready("spot-1", 1 * kS);
  fleet.node_ready("spot-2", 1 * kS);
  fleet.node_busy("spot-1", 1, 2 * kS);
  fleet.node_busy("spot-2", 1, 2 * kS);
  ASSERT_TRUE(fleet.reconcile(at(10 * kS, 0, 2, 6), 10 * kS).is_ok());  // deadlines at 70 s
  ASSERT_TRUE(fleet.interrupt("spot-1", 20 * kS, 120 * kS).is_ok());
  EXPECT_EQ(fleet.node("spot-1")->drain_deadline_ms, 70 * kS) << "the notice came later";
  ASSERT_TRUE(fleet.interrupt("spot-2", 20 * kS, 10 * kS).is_ok());
  EXPECT_EQ(fleet.node("spot-2")->drain_deadline_ms, 30 * kS) << "the instance goes at 30 s";
  EXPECT_TRUE(fleet.node("spot-2")->interrupted);
  EXPECT_EQ(fleet.interruptions(), 2);
}

TEST(FleetContract, OnlyInterruptionsWithinTheWindowCauseFallback) {
  Recorder provider;
  AutoscalerConfig c;
  GroupConfig od = spot(0, 4);
  od.name = "ondemand";
  od.market = Market::kOnDemand;
  GroupConfig sp = spot(1, 4);
  sp.fallback_group = "ondemand";
  sp.fallback_after_interruptions = 2;
  sp.interruption_window_ms = 100 * kS;
  c.groups = {core(), sp, od};
  Fleet fleet(c, &provider);
  ASSERT_TRUE(fleet.start(0).is_ok());
  // Notices 150 s apart: never two within 100 s, so spot stays spot.
  for (int i = 1; i <= 3; ++i) {
    const int64_t t = i * 150 * kS;
    ASSERT_TRUE(fleet.interrupt("spot-" + std::to_string(i), t, 0).is_ok());
    ASSERT_TRUE(fleet.reconcile(at(t, 0, 0), t).is_ok());
    EXPECT_EQ(provider.calls.back(), "launch spot spot-" + std::to_string(i + 1));
  }
  // Two within the window: the replacement is on demand, counted for spot,
  // and the group's size is unchanged.
  ASSERT_TRUE(fleet.interrupt("spot-4", 460 * kS, 0).is_ok());
  ASSERT_TRUE(fleet.reconcile(at(460 * kS, 0, 0), 460 * kS).is_ok());
  EXPECT_EQ(provider.calls.back(), "launch ondemand ondemand-1");
  const Decision& d = fleet.decisions().back();
  EXPECT_EQ(d.policy, "fallback-on-demand");
  EXPECT_EQ(d.group, "spot");
  EXPECT_EQ(d.from, 1);
  EXPECT_EQ(d.to, 1);
  EXPECT_EQ(fleet.node("ondemand-1")->market, Market::kOnDemand);
  EXPECT_EQ(fleet.autoscaler().desired("ondemand"), 0);
  // The stand-in counts toward spot: the next round launches nothing.
  const size_t calls = provider.calls.size();
  ASSERT_TRUE(fleet.reconcile(at(470 * kS, 0, 0), 470 * kS).is_ok());
  EXPECT_EQ(provider.calls.size(), calls);
}

TEST(FleetContract, KeepsTheLast256Decisions) {
  Recorder provider;
  AutoscalerConfig c;
  c.groups = {core(), spot(0, 4)};
  c.rules = {
      rule("up", "pending_tasks", Comparison::kGreater, 0, Adjustment::kExactCapacity, 1),
      rule("down", "pending_tasks", Comparison::kLessOrEqual, 0, Adjustment::kExactCapacity, 0)};
  Fleet fleet(c, &provider);
  ASSERT_TRUE(fleet.start(0).is_ok());
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(fleet.reconcile(at(i * 10 * kS, i % 2 == 0 ? 1 : 0, 0), i * 10 * kS).is_ok());
  }
  ASSERT_EQ(fleet.decisions().size(), 256u);
  EXPECT_EQ(fleet.decisions().back().t_ms, 299 * 10 * kS);
  EXPECT_EQ(fleet.decisions().front().t_ms, (300 - 256) * 10 * kS);
}

TEST(FleetContract, BootingIsPaidAndGoneNodesKeepTheirCost) {
  Recorder provider;
  AutoscalerConfig c;
  c.groups = {core(), spot(1, 1)};
  c.groups[1].bootstrap_ms = 600 * kS;
  Fleet fleet(c, &provider);
  ASSERT_TRUE(fleet.start(0).is_ok());
  fleet.node_ready("spot-1", 600 * kS);
  fleet.node_lost("spot-1", 1800 * kS);
  ASSERT_TRUE(fleet.reconcile(at(1800 * kS, 0, 0), 1800 * kS).is_ok());  // spot-2 at 1800 s
  CostReport r = fleet.cost(3600 * kS);
  // spot-1: 0-1800 s (its boot included), spot-2: 1800-3600 s.
  EXPECT_DOUBLE_EQ(r.by_group["spot"].node_seconds, 3600);
  EXPECT_NEAR(r.by_market["spot"].cost, 0.12, 1e-12);
  EXPECT_NEAR(r.by_group["core"].cost, 0.40, 1e-12);
  EXPECT_NEAR(r.total, 0.52, 1e-12);
  EXPECT_NEAR(r.rate_per_hour, 0.52, 1e-12) << "core-1 and spot-2; not the gone spot-1";
  // The gone node's share is fixed: an hour later only the live nodes add.
  CostReport later = fleet.cost(7200 * kS);
  EXPECT_NEAR(later.by_market["spot"].cost, 0.12 + 0.12, 1e-12);
  EXPECT_DOUBLE_EQ(fleet.slot_cost("spot-1", 0, 1800 * kS), 0.12 / 2 / 2);
  EXPECT_DOUBLE_EQ(fleet.slot_cost("nope", 0, 1800 * kS), 0);
}

// --- config --------------------------------------------------------------------

TEST(ConfigContract, Defaults) {
  auto doc = toml::parse(R"(
[[group]]
name = "core"
core = true

[[group]]
name = "spot"
market = "spot"
max_nodes = 4

[[autoscaling.rule]]
name = "r"
group = "core"
metric = "pending_tasks"
threshold = 1

[[autoscaling.target]]
group = "spot"
)");
  auto c = config::parse_autoscaler_config(doc);
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  EXPECT_EQ(c->period_ms, 10 * kS);
  EXPECT_EQ(c->drain_timeout_ms, 120 * kS);
  EXPECT_EQ(c->groups[0].min_nodes, 1);
  EXPECT_EQ(c->groups[0].max_nodes, 1);
  EXPECT_EQ(c->groups[1].min_nodes, 0);
  EXPECT_EQ(c->groups[1].slots_per_node, 2);
  EXPECT_EQ(c->groups[1].fallback_after_interruptions, 3);
  EXPECT_EQ(c->groups[1].interruption_window_ms, 3600 * kS);
  EXPECT_DOUBLE_EQ(c->groups[1].price.at(0), 0);
  const ScalingRule& r = c->rules.at(0);
  EXPECT_EQ(r.comparison, Comparison::kGreater);
  EXPECT_EQ(r.evaluation_periods, 1);
  EXPECT_EQ(r.adjustment, Adjustment::kChangeInCapacity);
  EXPECT_DOUBLE_EQ(r.amount, 1);
  EXPECT_EQ(r.cooldown_ms, 300 * kS);
  const TargetTracking& t = c->targets.at(0);
  EXPECT_DOUBLE_EQ(t.target_free_slot_pct, 20);
  EXPECT_EQ(t.scale_out_cooldown_ms, 0);
  EXPECT_EQ(t.scale_in_cooldown_ms, 300 * kS);
  EXPECT_EQ(t.idle_timeout_ms, 600 * kS);

  // Without [[group]]: the old fixed pool, as the caller describes it.
  auto fixed = config::parse_autoscaler_config(toml::table{}, config::CoreDefaults{4, 3});
  ASSERT_TRUE(fixed.is_ok());
  ASSERT_EQ(fixed->groups.size(), 1u);
  EXPECT_EQ(fixed->groups[0].name, "core");
  EXPECT_TRUE(fixed->groups[0].core);
  EXPECT_EQ(fixed->groups[0].min_nodes, 4);
  EXPECT_EQ(fixed->groups[0].max_nodes, 4);
  EXPECT_EQ(fixed->groups[0].slots_per_node, 3);
  EXPECT_TRUE(fixed->rules.empty());
  EXPECT_TRUE(fixed->targets.empty());
}

TEST(ConfigContract, EveryErrorNamesItsKey) {
  const std::string groups =
      "[[group]]\nname = \"core\"\ncore = true\n"
      "[[group]]\nname = \"spot\"\nmarket = \"spot\"\nmax_nodes = 4\n";
  const std::string rule_head =
      "[[autoscaling.rule]]\nname = \"r\"\ngroup = \"spot\"\nmetric = \"pending_tasks\"\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"group = 3\n", "group: must be a list of tables"},
      {"[[group]]\ncore = true\n", "group[0].name: required"},
      {groups + "min_nodes = 5\n", "group[1].max_nodes: must be >= min_nodes"},
      {groups + "slots_per_node = 0\n", "group[1].slots_per_node"},
      {groups + "price_per_hour = \"cheap\"\n", "group[1].price_per_hour"},
      {groups + "price_per_hour = -1\n", "group[1].price_per_hour"},
      {groups + "price_per_hour = 1\nprice_trace = [[0, 1]]\n", "group[1]: give price_per_hour"},
      {groups + "price_trace = [[0]]\n", "group[1].price_trace"},
      {groups + "price_trace = [[0, -2]]\n", "group[1].price_trace"},
      {groups + "bootstrap_seconds = -1\n", "group[1].bootstrap_seconds"},
      {groups + "fallback_after_interruptions = 0\n", "group[1].fallback_after_interruptions"},
      {groups + "fallback_group = \"nope\"\n", "fallback_group: no group 'nope'"},
      {groups + "zone = \"a\"\n", "group[1].zone: unknown setting"},
      {groups + "[autoscaling]\nspeed = 2\n", "autoscaling.speed: unknown setting"},
      {groups + "[autoscaling]\ndrain_timeout_seconds = -5\n", "autoscaling.drain_timeout_seconds"},
      {groups + rule_head, "autoscaling.rule[0].threshold: required"},
      {groups + rule_head + "threshold = 1\nevaluation_periods = 0\n",
       "autoscaling.rule[0].evaluation_periods"},
      {groups + rule_head + "threshold = 1\nadjustment = \"double\"\n",
       "autoscaling.rule[0].adjustment"},
      {groups + rule_head + "threshold = 1\ncooldown_seconds = \"5m\"\n",
       "autoscaling.rule[0].cooldown_seconds"},
      {groups + rule_head + "threshold = 1\nwhen = 1\n", "autoscaling.rule[0].when: unknown"},
      {groups + "[[autoscaling.rule]]\ngroup = \"spot\"\nmetric = \"cpu\"\nthreshold = 1\n",
       "unknown metric 'cpu'"},
      {groups + "[[autoscaling.target]]\ngroup = \"spot\"\nfree_slot_pct = 100\n",
       "autoscaling.target[0].free_slot_pct"},
      {groups + "[[autoscaling.target]]\ngroup = \"gpu\"\n", "autoscaling.target[0].group"},
      {groups + "[[autoscaling.target]]\ngroup = \"spot\"\nidle_timeout = 5\n",
       "autoscaling.target[0].idle_timeout: unknown"},
  };
  for (const auto& [text, expect] : cases) {
    auto bad = config::parse_autoscaler_config(toml::parse(text));
    ASSERT_FALSE(bad.is_ok()) << text;
    EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_NE(bad.status().message().find(expect), std::string::npos)
        << "for:\n"
        << text << "got: " << bad.status().message();
  }
}

}  // namespace
}  // namespace kiln::elastic
