// make_sample / capacity_of: what the autoscaler decides on, built the same
// way by kiln serve and kiln simulate.
#include "cluster/sample.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace kiln::cluster {
namespace {

using elastic::Node;
using elastic::NodeState;

Node node(const std::string& id, NodeState state, int slots, int busy) {
  Node n;
  n.id = id;
  n.group = "core";
  n.counts_for = "core";
  n.state = state;
  n.slots = slots;
  n.busy = busy;
  return n;
}

TEST(SampleTest, CapacityCountsOnlyReadyNodesSlotsAndTheBootingNodes) {
  const std::vector<Node> nodes = {
      node("ready-1", NodeState::kReady, 4, 3),
      // More busy than slots (a report racing a resize): capped at its slots.
      node("ready-2", NodeState::kReady, 2, 5),
      node("boot-1", NodeState::kBooting, 8, 0),
      node("boot-2", NodeState::kBooting, 8, 0),
      // Draining and gone nodes take no new task: not capacity.
      node("drain-1", NodeState::kDraining, 4, 1),
      node("gone-1", NodeState::kGone, 4, 0),
  };
  const Capacity c = capacity_of(nodes);
  EXPECT_EQ(c.slots_total, 6);
  EXPECT_EQ(c.slots_busy, 5);
  EXPECT_EQ(c.booting_nodes, 2);

  const Capacity none = capacity_of({});
  EXPECT_EQ(none.slots_total, 0);
  EXPECT_EQ(none.slots_busy, 0);
  EXPECT_EQ(none.booting_nodes, 0);
}

TEST(SampleTest, SampleCarriesTheLoadAndCapacityWithDerivedFields) {
  store::Load load;
  load.pending_tasks = 9;
  load.leased_tasks = 5;
  load.backlog_steps = 2;
  load.oldest_pending_wait_ms = 42'000;
  Capacity cap;
  cap.slots_total = 6;
  cap.slots_busy = 5;
  cap.booting_nodes = 1;

  const elastic::ClusterSample s = make_sample(load, cap, 1'700'000'123'000);
  EXPECT_EQ(s.t_ms, 1'700'000'123'000);
  EXPECT_EQ(s.pending_tasks, 9);
  EXPECT_EQ(s.running_tasks, 5);
  EXPECT_EQ(s.backlog_steps, 2);
  EXPECT_EQ(s.oldest_pending_wait_ms, 42'000);
  EXPECT_EQ(s.slots_total, 6);
  EXPECT_EQ(s.slots_busy, 5);
  EXPECT_EQ(s.booting_nodes, 1);
  EXPECT_DOUBLE_EQ(s.free_slot_pct, 100.0 / 6.0);
  EXPECT_DOUBLE_EQ(s.pending_ratio, 1.5);
  // The autoscaler's rules read the same values by name.
  EXPECT_DOUBLE_EQ(*elastic::metric_value(s, "oldest_pending_wait_s"), 42.0);
  EXPECT_DOUBLE_EQ(*elastic::metric_value(s, "pending_ratio"), 1.5);
}

TEST(SampleTest, SampleOfAClusterWithNoReadySlot) {
  store::Load load;
  load.pending_tasks = 3;
  Capacity cap;
  cap.booting_nodes = 2;
  const elastic::ClusterSample s = make_sample(load, cap, 5);
  EXPECT_EQ(s.slots_total, 0);
  EXPECT_DOUBLE_EQ(s.free_slot_pct, 0.0);
  // Pending work over no slot counts as over one: scale out from zero.
  EXPECT_DOUBLE_EQ(s.pending_ratio, 3.0);
}

TEST(SampleTest, SampleFromTheClustersLiveLoad) {
  // The store half read from a real job store: a RUNNING step's tasks.
  auto opened = store::JobStore::open_in_memory();
  ASSERT_TRUE(opened.is_ok());
  std::unique_ptr<store::JobStore> st = std::move(opened).value();
  store::NewStep ns;
  ns.environment = "staging";
  ns.name = "dem";
  ns.action_on_failure = "CONTINUE";
  ns.layer = "dem";
  ns.partitions = 3;
  ASSERT_TRUE(st->submit(ns, 1000).is_ok());
  ASSERT_TRUE(st->submit(ns, 1000).is_ok());
  ASSERT_TRUE(st->start_steps({{"staging", {1, 0}}}, 1000).is_ok());
  auto w = st->register_worker(1, "core-1", 2, 1000);
  ASSERT_TRUE(w.is_ok());
  ASSERT_EQ(st->lease(w->id, 1, {}, 30'000, 15'000, 1000)->size(), 1u);
  auto load = st->load(4000);
  ASSERT_TRUE(load.is_ok());
  const elastic::ClusterSample s =
      make_sample(*load, capacity_of({node("core-1", NodeState::kReady, 2, 1)}), 4000);
  // Two partitions not leased, and the commit task that will need a slot.
  EXPECT_EQ(s.pending_tasks, 3);
  EXPECT_EQ(s.running_tasks, 1);
  EXPECT_EQ(s.backlog_steps, 1);
  EXPECT_EQ(s.oldest_pending_wait_ms, 3000);
  EXPECT_DOUBLE_EQ(s.free_slot_pct, 50.0);
  EXPECT_DOUBLE_EQ(s.pending_ratio, 1.5);
}

}  // namespace
}  // namespace kiln::cluster
