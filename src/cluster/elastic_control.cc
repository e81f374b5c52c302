#include "cluster/elastic_control.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "cluster/sample.h"
#include "common/log.h"
#include "common/prometheus.h"
#include "elastic/json.h"

namespace kiln::cluster {
namespace {

using json = nlohmann::json;

void append_line(const std::string& path, const json& j) {
  std::ofstream out(path, std::ios::app);
  out << j.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
}

}  // namespace

// The fleet's NodeProvider on top of the server's Executor: a node is one
// worker process started with --node <id>. Called with ElasticControl::mu_
// held, so it only queues launches (bootstrap delays by a later due time):
// ElasticControl starts the processes after releasing mu_, because a
// worker's registration needs mu_ too (worker_registered) and must not
// wait for hundreds of launches (issue 14: with 500 nodes every
// registration waited out the whole warm core's launch and timed out).
class ElasticControl::Provider final : public elastic::NodeProvider {
 public:
  Provider(ElasticControl* owner, worker::Executor* executor)
      : owner_(owner), executor_(executor) {}

  const char* kind() const override { return "local"; }

  // The fleet calls launch() and terminate() inside ElasticControl's
  // methods, which hold mu_; the analysis cannot see through the fleet's
  // virtual call.
  Status launch(const elastic::GroupConfig& group, const std::string& node_id,
                int64_t now_ms) override NO_THREAD_SAFETY_ANALYSIS {
    owner_->queue_launch_locked(node_id, group.slots_per_node,
                                now_ms + std::max<int64_t>(0, group.bootstrap_ms));
    return Status::ok();
  }

  // may_lease() refuses the node's workers new tasks; an executor that
  // places tasks itself (Slurm) is told too.
  Status drain(const std::string& node_id, int64_t) override {
    return executor_->drain_node(node_id);
  }

  worker::Executor* executor() { return executor_; }

  Status terminate(const std::string& node_id, int64_t now_ms) override NO_THREAD_SAFETY_ANALYSIS {
    return owner_->terminate_locked(node_id, now_ms);
  }

 private:
  ElasticControl* owner_;
  worker::Executor* executor_;
};

ElasticControl::ElasticControl(const config::ServerConfig& config, store::JobStore* store,
                               worker::Executor* executor)
    : config_(config),
      store_(store),
      executor_(executor),
      provider_(std::make_unique<Provider>(this, executor)),
      fleet_(std::make_unique<elastic::Fleet>(config.autoscaler, provider_.get())),
      rng_(config.spot_chaos_seed),
      samples_path_(config.state_dir + "/autoscaler-samples.jsonl"),
      decisions_path_(config.state_dir + "/autoscaler-decisions.jsonl") {}

ElasticControl::~ElasticControl() = default;

void ElasticControl::queue_launch_locked(const std::string& node_id, int slots, int64_t at_ms) {
  queued_.push_back({node_id, slots, at_ms, ++next_ticket_});
}

std::vector<ElasticControl::Due> ElasticControl::take_due_locked(int64_t now_ms) {
  std::vector<Due> out;
  for (auto it = queued_.begin(); it != queued_.end();) {
    if (it->at_ms > now_ms) {
      ++it;
      continue;
    }
    launching_[it->ticket] = {it->node_id, false};
    out.push_back(std::move(*it));
    it = queued_.erase(it);
  }
  return out;
}

void ElasticControl::forget_workers_locked(const std::string& node_id, int64_t now_ms) {
  // Its leases go back to the queue now, not when the process is gone:
  // the tasks re-run elsewhere; a late completion from the old attempt is
  // ignored, and partition output is idempotent.
  // The store refuses a gone worker any further lease, so the mapping
  // can go with it.
  for (auto it = node_of_worker_.begin(); it != node_of_worker_.end();) {
    if (it->second != node_id) {
      ++it;
      continue;
    }
    Status st = store_->worker_gone(it->first, now_ms);
    if (!st.is_ok()) log::error("node " + node_id + ": " + st.message());
    it = node_of_worker_.erase(it);
  }
}

Status ElasticControl::terminate_locked(const std::string& node_id, int64_t now_ms) {
  queued_.erase(std::remove_if(queued_.begin(), queued_.end(),
                               [&](const Due& d) { return d.node_id == node_id; }),
                queued_.end());
  forget_workers_locked(node_id, now_ms);
  bool launching = false;
  for (auto& [ticket, l] : launching_) {
    if (l.node_id != node_id) continue;
    l.cancelled = true;
    launching = true;
  }
  // launch() has it: skipped, or stopped once its process has started.
  if (launching) return Status::ok();
  Status st =
      executor_->terminate_node(node_id, std::chrono::seconds(config_.cancel_grace_seconds));
  if (st.code() == StatusCode::kNotFound) return Status::ok();  // never started (bootstrap)
  return st;
}

Status ElasticControl::start(int64_t now_ms) {
  std::vector<Due> due;
  {
    MutexLock lock(&mu_);
    KILN_RETURN_IF_ERROR(fleet_->start(now_ms));
    due = take_due_locked(now_ms);
    next_reconcile_ms_ = now_ms + config_.autoscaler.period_ms;
    last_chaos_ms_ = now_ms;
  }
  // The warm core: a node that cannot start fails the server's start.
  return launch(due, now_ms);
}

Status ElasticControl::launch(const std::vector<Due>& due, int64_t now_ms) {
  Status first;
  for (const Due& d : due) {
    {
      MutexLock lock(&mu_);
      auto it = launching_.find(d.ticket);
      if (it != launching_.end() && it->second.cancelled) {
        launching_.erase(it);
        log::info("node " + d.node_id + ": terminated before its launch; not started");
        continue;
      }
    }
    // A terminate that comes now only marks the launch cancelled: it is
    // looked at again below, once the process exists to be stopped.
    Status st = executor_->launch_node(d.node_id, d.slots);
    MutexLock lock(&mu_);
    auto it = launching_.find(d.ticket);
    const bool cancelled = it != launching_.end() && it->second.cancelled;
    if (it != launching_.end()) launching_.erase(it);
    if (!st.is_ok()) {
      log::error("node " + d.node_id + ": cannot start: " + st.message());
      if (cancelled) continue;  // the fleet has let it go already
      if (first.is_ok()) first = st.with_context("node " + d.node_id);
      // Not left booting for ever: lost, so the autoscaler launches another.
      fleet_->node_lost(d.node_id, now_ms);
      continue;
    }
    if (!cancelled) continue;
    log::info("node " + d.node_id + ": terminated while it was launched; stopping it");
    // Workers that registered since the terminate go too.
    forget_workers_locked(d.node_id, now_ms);
    Status ts =
        executor_->terminate_node(d.node_id, std::chrono::seconds(config_.cancel_grace_seconds));
    if (!ts.is_ok()) log::error("node " + d.node_id + ": cannot stop: " + ts.message());
  }
  return first;
}

void ElasticControl::tick(int64_t now_ms) {
  std::vector<Due> due;
  {
    MutexLock lock(&mu_);
    tick_locked(now_ms);
    due = take_due_locked(now_ms);
  }
  (void)launch(due, now_ms);  // failures are logged; the fleet sees the node never register
}

void ElasticControl::tick_locked(int64_t now_ms) {
  for (const std::string& id : provider_->executor()->take_ready_nodes()) {
    if (fleet_->node(id) != nullptr) fleet_->node_ready(id, now_ms);
  }
  // Busy slots per node, from the leases the store holds.
  auto workers = store_->workers(/*alive_only=*/true);
  if (workers.is_ok()) {
    std::map<std::string, int> busy;
    for (const auto& w : *workers) {
      auto it = node_of_worker_.find(w.id);
      if (it != node_of_worker_.end()) busy[it->second] += w.busy;
    }
    for (const elastic::Node& n : fleet_->live_nodes()) {
      if (n.state == elastic::NodeState::kBooting) continue;
      auto it = busy.find(n.id);
      fleet_->node_busy(n.id, it == busy.end() ? 0 : it->second, now_ms);
    }
  }
  // Spot notices at the configured rate (chaos runs), per ready spot node.
  if (config_.spot_interruption_rate_per_node_hour > 0) {
    const double hours = static_cast<double>(now_ms - last_chaos_ms_) / 3.6e6;
    const double p = 1 - std::exp(-config_.spot_interruption_rate_per_node_hour * hours);
    std::uniform_real_distribution<double> u(0, 1);
    for (const elastic::Node& n : fleet_->live_nodes()) {
      if (n.market != elastic::Market::kSpot || n.state != elastic::NodeState::kReady) continue;
      if (u(rng_) < p) {
        log::warn("spot interruption notice (chaos) for node " + n.id);
        Status st = fleet_->interrupt(n.id, now_ms, config_.spot_notice_ms);
        if (!st.is_ok()) log::error("spot chaos: node " + n.id + ": " + st.message());
      }
    }
  }
  last_chaos_ms_ = now_ms;
  // Attempts whose lease was lost never report; a day is far beyond any
  // lease, so what is older is forgotten rather than kept for ever.
  for (auto it = attempts_.begin(); it != attempts_.end();) {
    it = now_ms - it->second.leased_ms > 24 * 3600 * 1000LL ? attempts_.erase(it) : std::next(it);
  }
  Status st = fleet_->tick(now_ms);
  if (!st.is_ok()) log::error("fleet: " + st.message());
  if (now_ms >= next_reconcile_ms_) {
    reconcile_locked(now_ms);
    next_reconcile_ms_ = now_ms + config_.autoscaler.period_ms;
  }
}

void ElasticControl::reconcile_locked(int64_t now_ms) {
  auto load = store_->load(now_ms);
  if (!load.is_ok()) {
    log::error("autoscaler: round skipped, the cluster's load cannot be read: " +
               load.status().message());
    return;
  }
  const std::vector<elastic::Node> nodes_now = fleet_->live_nodes();
  const elastic::ClusterSample s = make_sample(*load, capacity_of(nodes_now), now_ms);
  // The nodes as the autoscaler sees them this round, recorded with the
  // sample so `kiln simulate replay` can feed the same inputs to the same
  // code (the live/simulated cross-check).
  json nodes = json::array();
  for (const elastic::Node& n : nodes_now) nodes.push_back(elastic::to_json(n));
  append_line(samples_path_, {{"sample", elastic::to_json(s)}, {"nodes", nodes}});
  auto plan = fleet_->reconcile(s, now_ms);
  if (!plan.is_ok()) {
    log::error("autoscaler: " + plan.status().message());
    return;
  }
  record_locked(*plan);
}

void ElasticControl::record_locked(const elastic::Plan& plan) {
  for (const elastic::Decision& d : plan.decisions) {
    log::info("autoscaler: " + elastic::describe(d));
    append_line(decisions_path_, elastic::to_json(d));
    // Only changes of the desired size count; a fallback decision moves
    // where nodes launch, not how many.
    if (d.to != d.from) decisions_by_group_dir_[d.group + (d.to > d.from ? "|out" : "|in")]++;
  }
}

void ElasticControl::worker_registered(const std::string& worker_id, const std::string& node_id,
                                       int64_t now_ms) {
  MutexLock lock(&mu_);
  node_of_worker_[worker_id] = node_id;
  if (fleet_->node(node_id) != nullptr) fleet_->node_ready(node_id, now_ms);
}

void ElasticControl::worker_left(const std::string& worker_id) {
  MutexLock lock(&mu_);
  node_of_worker_.erase(worker_id);
}

bool ElasticControl::may_lease(const std::string& worker_id) const {
  MutexLock lock(&mu_);
  auto it = node_of_worker_.find(worker_id);
  if (it == node_of_worker_.end()) return true;  // a worker no fleet node stands behind
  const elastic::Node* n = fleet_->node(it->second);
  return n == nullptr || n->state == elastic::NodeState::kReady;
}

void ElasticControl::leased(int64_t task_id, int attempt, const std::string& worker_id,
                            int64_t now_ms) {
  MutexLock lock(&mu_);
  auto it = node_of_worker_.find(worker_id);
  if (it == node_of_worker_.end()) return;
  attempts_[{task_id, attempt}] = {it->second, now_ms};
}

ElasticControl::Charge ElasticControl::charge(int64_t task_id, int attempt, int64_t now_ms) {
  MutexLock lock(&mu_);
  auto it = attempts_.find({task_id, attempt});
  if (it == attempts_.end()) return {};
  Charge c;
  c.slot_seconds = static_cast<double>(now_ms - it->second.leased_ms) / 1000.0;
  c.cost = fleet_->slot_cost(it->second.node, it->second.leased_ms, now_ms);
  attempts_.erase(it);
  return c;
}

Status ElasticControl::interrupt(const std::string& node_id, int64_t notice_ms, int64_t now_ms) {
  MutexLock lock(&mu_);
  const int64_t notice = notice_ms < 0 ? config_.spot_notice_ms : notice_ms;
  KILN_RETURN_IF_ERROR(fleet_->interrupt(node_id, now_ms, notice));
  log::warn("spot interruption notice for node " + node_id + ": draining, gone in " +
            std::to_string(notice / 1000) + " s");
  return Status::ok();
}

json ElasticControl::to_json(int64_t now_ms) const {
  MutexLock lock(&mu_);
  json groups = json::array();
  const std::vector<elastic::Node> nodes = fleet_->live_nodes();
  for (const elastic::GroupConfig& g : config_.autoscaler.groups) {
    json by_state = json::object();
    for (const elastic::Node& n : nodes) {
      if (n.counts_for == g.name && n.state != elastic::NodeState::kGone) {
        by_state[elastic::node_state_name(n.state)] =
            by_state.value(elastic::node_state_name(n.state), 0) + 1;
      }
    }
    groups.push_back({{"name", g.name},
                      {"market", elastic::market_name(g.market)},
                      {"min_nodes", g.min_nodes},
                      {"max_nodes", g.max_nodes},
                      {"slots_per_node", g.slots_per_node},
                      {"desired_nodes", fleet_->autoscaler().desired(g.name)},
                      {"price_per_hour", g.price.at(now_ms)},
                      {"nodes", by_state}});
  }
  json live = json::array();
  for (const elastic::Node& n : nodes) {
    if (n.state == elastic::NodeState::kGone) continue;
    // What a person reads in `kiln cluster status`; the recorded samples
    // keep every field (elastic::to_json).
    json row = {{"id", n.id},
                {"group", n.group},
                {"market", elastic::market_name(n.market)},
                {"state", elastic::node_state_name(n.state)},
                {"slots", n.slots},
                {"busy", n.busy},
                {"up_seconds", (now_ms - n.launched_ms) / 1000},
                {"idle_seconds", n.busy == 0 && n.idle_since_ms > 0
                                     ? json((now_ms - n.idle_since_ms) / 1000)
                                     : json(nullptr)}};
    if (n.state == elastic::NodeState::kDraining) {
      row["drain_reason"] = n.drain_reason;
      row["gone_in_seconds"] = std::max<int64_t>(0, (n.drain_deadline_ms - now_ms) / 1000);
    }
    if (n.counts_for != n.group) row["stands_in_for"] = n.counts_for;
    live.push_back(std::move(row));
  }
  json decisions = json::array();
  const auto& ds = fleet_->decisions();
  // The reason names the metric values; the full samples are in the
  // state directory's autoscaler-decisions.jsonl.
  for (size_t i = ds.size() > 20 ? ds.size() - 20 : 0; i < ds.size(); ++i) {
    json d = elastic::to_json(ds[i]);
    d.erase("sample");
    decisions.push_back(std::move(d));
  }
  const elastic::CostReport cost = fleet_->cost(now_ms);
  json by_market = json::object();
  for (const auto& [m, c] : cost.by_market)
    by_market[m] = {{"node_seconds", c.node_seconds}, {"cost", c.cost}};
  return {
      {"groups", groups},
      {"nodes", live},
      {"decisions", decisions},
      {"interruptions", fleet_->interruptions()},
      {"cost",
       {{"total", cost.total}, {"rate_per_hour", cost.rate_per_hour}, {"by_market", by_market}}}};
}

std::string ElasticControl::metrics(int64_t now_ms) const {
  MutexLock lock(&mu_);
  std::string out;
  const std::vector<elastic::Node> nodes = fleet_->live_nodes();
  metric_header(&out, "kiln_nodes", "gauge", "Nodes of the fleet by group, market and state.");
  for (const elastic::GroupConfig& g : config_.autoscaler.groups) {
    for (elastic::NodeState st : {elastic::NodeState::kBooting, elastic::NodeState::kReady,
                                  elastic::NodeState::kDraining}) {
      const auto n = std::count_if(nodes.begin(), nodes.end(), [&](const elastic::Node& x) {
        return x.group == g.name && x.state == st;
      });
      metric_sample(&out, "kiln_nodes",
                    {{"group", g.name},
                     {"market", elastic::market_name(g.market)},
                     {"state", elastic::node_state_name(st)}},
                    static_cast<double>(n));
    }
  }
  metric_header(&out, "kiln_group_desired_nodes", "gauge",
                "The autoscaler's desired size of each group.");
  for (const elastic::GroupConfig& g : config_.autoscaler.groups) {
    metric_sample(&out, "kiln_group_desired_nodes", {{"group", g.name}},
                  fleet_->autoscaler().desired(g.name));
  }
  const elastic::CostReport cost = fleet_->cost(now_ms);
  auto market_figure = [&](const char* m, bool money) {
    auto it = cost.by_market.find(m);
    if (it == cost.by_market.end()) return 0.0;
    return money ? it->second.cost : it->second.node_seconds;
  };
  metric_header(&out, "kiln_cost_total", "counter",
                "Money spent on nodes since the server started, by market (price traces' unit).");
  for (const char* m : {"on_demand", "spot"})
    metric_sample(&out, "kiln_cost_total", {{"market", m}}, market_figure(m, true));
  metric_header(&out, "kiln_node_seconds_total", "counter",
                "Node-seconds since the server started, by market.");
  for (const char* m : {"on_demand", "spot"})
    metric_sample(&out, "kiln_node_seconds_total", {{"market", m}}, market_figure(m, false));
  metric_header(&out, "kiln_cost_rate_per_hour", "gauge", "What the nodes up now cost per hour.");
  metric_sample(&out, "kiln_cost_rate_per_hour", {}, cost.rate_per_hour);
  metric_header(&out, "kiln_autoscaler_decisions_total", "counter",
                "Changes of a group's desired size, by group and direction.");
  for (const elastic::GroupConfig& g : config_.autoscaler.groups) {
    for (const char* dir : {"out", "in"}) {
      auto it = decisions_by_group_dir_.find(g.name + "|" + dir);
      metric_sample(&out, "kiln_autoscaler_decisions_total",
                    {{"group", g.name}, {"direction", dir}},
                    it == decisions_by_group_dir_.end() ? 0 : static_cast<double>(it->second));
    }
  }
  metric_header(&out, "kiln_spot_interruptions_total", "counter",
                "Spot interruption notices received (or injected).");
  metric_sample(&out, "kiln_spot_interruptions_total", {},
                static_cast<double>(fleet_->interruptions()));
  return out;
}

}  // namespace kiln::cluster
