#include "sim/simulator.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <queue>
#include <random>
#include <set>

#include <toml++/toml.h>

#include "elastic/config.h"
#include "elastic/fleet.h"

namespace kiln::sim {
namespace {

using json = nlohmann::json;

// --- the work of a step ------------------------------------------------------

struct StepShape {
  int64_t partitions = 1;
  int64_t partition_ms = 0;  // each partition task
  int64_t commit_ms = 0;
};

StepShape shape_of(const Settings& s, int64_t tiles) {
  StepShape shape;
  shape.partitions = std::clamp<int64_t>(
      (tiles + s.tiles_per_partition - 1) / s.tiles_per_partition, 1, s.max_partitions);
  const double per = static_cast<double>(tiles) / static_cast<double>(shape.partitions);
  shape.partition_ms = std::max<int64_t>(1, std::llround(per / s.tiles_per_slot_second * 1000));
  shape.commit_ms = s.commit_ms;
  return shape;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t k = static_cast<size_t>(
      std::clamp<double>(std::ceil(p / 100.0 * static_cast<double>(v.size())) - 1, 0,
                         static_cast<double>(v.size() - 1)));
  return v[k];
}

// Slots the trace would use if every step started at once on unlimited
// slots: the curve the fixed clusters are sized from.
std::vector<std::pair<int64_t, int64_t>> ideal_demand(const Scenario& sc) {
  std::vector<std::pair<int64_t, int64_t>> deltas;
  for (const Arrival& a : sc.workload) {
    const StepShape sh = shape_of(sc.settings, a.tiles);
    deltas.emplace_back(a.t_ms, sh.partitions);
    deltas.emplace_back(a.t_ms + sh.partition_ms, 1 - sh.partitions);
    deltas.emplace_back(a.t_ms + sh.partition_ms + sh.commit_ms, -1);
  }
  std::sort(deltas.begin(), deltas.end());
  std::vector<std::pair<int64_t, int64_t>> curve;  // (t, slots from t on)
  int64_t level = 0;
  for (size_t i = 0; i < deltas.size(); ++i) {
    level += deltas[i].second;
    if (i + 1 == deltas.size() || deltas[i + 1].first != deltas[i].first) {
      curve.emplace_back(deltas[i].first, level);
    }
  }
  return curve;
}

// --- per request: closed form ----------------------------------------------------

StrategyResult per_request(const Scenario& sc, const elastic::GroupConfig& od) {
  StrategyResult r;
  r.name = "per-request";
  const int nodes = sc.settings.per_request_nodes;
  const int slots = nodes * od.slots_per_node;
  r.shape = std::to_string(nodes) + " x " + std::to_string(od.slots_per_node) +
            "-slot on-demand nodes per step, " +
            std::to_string(sc.settings.per_request_bootstrap_ms / 60000) + " min bootstrap";
  std::vector<double> waits;
  std::vector<std::pair<int64_t, double>> spend;  // (t_end, cost)
  int64_t first = INT64_MAX, last = 0;
  for (const Arrival& a : sc.workload) {
    const StepShape sh = shape_of(sc.settings, a.tiles);
    const int64_t waves = (sh.partitions + slots - 1) / slots;
    const int64_t run_ms = waves * sh.partition_ms + sh.commit_ms;
    const int64_t start = a.t_ms + sc.settings.per_request_bootstrap_ms;
    const int64_t end = start + run_ms;
    double c = 0;
    for (int i = 0; i < nodes; ++i) c += od.price.cost(a.t_ms, end);
    r.cost += c;
    r.node_hours_on_demand += nodes * static_cast<double>(end - a.t_ms) / 3.6e6;
    waits.push_back(static_cast<double>(sc.settings.per_request_bootstrap_ms) / 1000);
    spend.emplace_back(end, c);
    first = std::min(first, a.t_ms);
    last = std::max(last, end);
  }
  r.steps = r.completed = static_cast<int64_t>(sc.workload.size());
  r.wait_p50_s = percentile(waits, 50);
  r.wait_p95_s = percentile(waits, 95);
  r.wait_p99_s = percentile(waits, 99);
  r.makespan_h = sc.workload.empty() ? 0 : static_cast<double>(last - first) / 3.6e6;
  std::sort(spend.begin(), spend.end());
  double cum = 0;
  size_t i = 0;
  for (int64_t t = 0; t <= last + sc.settings.sample_every_ms; t += sc.settings.sample_every_ms) {
    while (i < spend.size() && spend[i].first <= t) cum += spend[i++].second;
    Point p;
    p.t_h = static_cast<double>(t) / 3.6e6;
    p.cost = cum;
    r.series.push_back(p);
  }
  return r;
}

// --- the discrete-event cluster ---------------------------------------------------

enum class EventKind { kArrival, kTaskDone, kNodeReady, kReconcile, kNotice, kDeadline };

struct Event {
  int64_t t_ms;
  int64_t seq;  // FIFO among events at the same time: determinism
  EventKind kind;
  int64_t index = 0;  // arrival index, task id
  int attempt = 0;
  std::string node;
  bool operator>(const Event& o) const { return t_ms != o.t_ms ? t_ms > o.t_ms : seq > o.seq; }
};

class ClusterSim;

// The fleet's nodes in the simulation: ready after their group's bootstrap;
// a terminated node's worker is gone from the store, so its leases go back
// to the queue and the work it was doing is done again elsewhere.
class SimProvider final : public elastic::NodeProvider {
 public:
  explicit SimProvider(ClusterSim* sim) : sim_(sim) {}
  const char* kind() const override { return "simulated"; }
  Status launch(const elastic::GroupConfig& g, const std::string& id, int64_t now_ms) override;
  Status drain(const std::string&, int64_t) override { return Status::ok(); }
  Status terminate(const std::string& id, int64_t now_ms) override;

 private:
  ClusterSim* sim_;
};

class ClusterSim {
 public:
  ClusterSim(const Scenario& sc, elastic::AutoscalerConfig config, std::string name,
             std::string shape)
      : sc_(sc), provider_(this), rng_(sc.settings.seed) {
    result_.name = std::move(name);
    result_.shape = std::move(shape);
    config_ = std::move(config);
    if (!sc.spot.empty()) {
      for (auto& g : config_.groups)
        if (g.market == elastic::Market::kSpot) g.price = spot_prices(sc.spot);
    }
  }

  Result<StrategyResult> run();

  // From the provider.
  void launched(const elastic::GroupConfig& g, const std::string& id, int64_t now) {
    push({now + g.bootstrap_ms, 0, EventKind::kNodeReady, 0, 0, id});
    nodes_[id].group = g.name;
    nodes_[id].slots = g.slots_per_node;
    nodes_[id].spot = g.market == elastic::Market::kSpot;
  }
  Status terminated(const std::string& id, int64_t now) {
    SimNode& n = nodes_[id];
    n.gone = true;
    if (!n.worker.empty()) {
      for (const auto& [task, started] : n.running) {
        result_.redone_task_hours += static_cast<double>(now - started) / 3.6e6;
      }
      n.running.clear();
      KILN_RETURN_IF_ERROR(store_->worker_gone(n.worker, now));
      changed_ = need_dispatch_ = true;
    }
    return Status::ok();
  }

 private:
  struct SimNode {
    std::string group;
    std::string worker;
    int slots = 0;
    bool spot = false;
    bool gone = false;
    std::map<int64_t, int64_t> running;  // task id -> start
  };
  struct StepInfo {
    int64_t arrival_ms = 0;
    int64_t first_start_ms = -1;
    int64_t done_ms = -1;
    StepShape shape;
  };

  void push(Event e) {
    e.seq = seq_++;
    events_.push(std::move(e));
  }
  Status dispatch(int64_t now);
  Status reconcile(int64_t now);
  int busy(const SimNode& n) const { return static_cast<int>(n.running.size()); }
  // Only the groups' minimum is left running.
  bool settled() const {
    size_t min_nodes = 0;
    for (const auto& g : config_.groups) min_nodes += static_cast<size_t>(g.min_nodes);
    return fleet_->live_nodes().size() <= min_nodes;
  }

  const Scenario& sc_;
  elastic::AutoscalerConfig config_;
  SimProvider provider_;
  std::unique_ptr<elastic::Fleet> fleet_;
  std::unique_ptr<store::JobStore> store_;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  int64_t seq_ = 0;
  std::map<std::string, SimNode> nodes_;
  std::set<std::string> free_;  // ready nodes with a free slot
  std::map<std::string, StepInfo> steps_;
  struct TaskInfo {
    std::string step_id;
    bool commit = false;
  };
  std::map<int64_t, TaskInfo> tasks_;
  int64_t completed_ = 0;
  std::mt19937_64 rng_;
  bool changed_ = true;         // the store changed since the last sample
  bool need_start_ = false;     // a step arrived or ended since start_steps ran
  bool need_dispatch_ = false;  // a slot or a task may have become free
  store::Load last_load_;
  int64_t last_load_ms_ = 0;
  int64_t next_sample_ms_ = 0;
  StrategyResult result_;
};

Status SimProvider::launch(const elastic::GroupConfig& g, const std::string& id, int64_t now_ms) {
  sim_->launched(g, id, now_ms);
  return Status::ok();
}

Status SimProvider::terminate(const std::string& id, int64_t now_ms) {
  return sim_->terminated(id, now_ms);
}

Status ClusterSim::dispatch(int64_t now) {
  // Only arrivals and finished steps can let a PENDING step start, and only
  // those, finished tasks and new or lost nodes can fill a slot: otherwise
  // there is nothing to do (most instants are reconcile rounds).
  if (need_start_) {
    KILN_ASSIGN_OR_RETURN(auto started, store_->start_steps(sc_.settings.environments, now));
    if (!started.empty()) changed_ = true;
    need_start_ = false;
  }
  if (!need_dispatch_) return Status::ok();
  need_dispatch_ = false;
  // Fill free slots until the store has nothing runnable left.
  std::vector<std::string> candidates(free_.begin(), free_.end());
  for (const std::string& id : candidates) {
    SimNode& n = nodes_[id];
    const elastic::Node* fn = fleet_->node(id);
    if (n.gone || fn == nullptr || fn->state != elastic::NodeState::kReady) {
      free_.erase(id);
      continue;
    }
    const int want = n.slots - busy(n);
    if (want <= 0) {
      free_.erase(id);
      continue;
    }
    KILN_ASSIGN_OR_RETURN(std::vector<store::Lease> leases,
                          store_->lease(n.worker, want, sc_.settings.environments, 30 * 1000,
                                        365LL * 86400 * 1000, now));
    for (const store::Lease& l : leases) {
      changed_ = true;
      tasks_[l.task.id] = {l.step.id, l.task.kind == store::TaskKind::kCommit};
      StepInfo& st = steps_[l.step.id];
      if (st.first_start_ms < 0) st.first_start_ms = now;
      const int64_t dur =
          l.task.kind == store::TaskKind::kCommit ? st.shape.commit_ms : st.shape.partition_ms;
      n.running[l.task.id] = now;
      push({now + dur, 0, EventKind::kTaskDone, l.task.id, l.task.attempt, id});
    }
    fleet_->node_busy(id, busy(n), now);
    if (busy(n) >= n.slots) free_.erase(id);
    if (static_cast<int>(leases.size()) < want) break;  // nothing runnable is left
  }
  return Status::ok();
}

Status ClusterSim::reconcile(int64_t now) {
  if (changed_) {
    KILN_ASSIGN_OR_RETURN(last_load_, store_->load(now));
    last_load_ms_ = now;
    changed_ = false;
  } else if (last_load_.pending_tasks > 0) {
    // Nothing happened since the last look: the same work, waiting longer.
    last_load_.oldest_pending_wait_ms += now - last_load_ms_;
    last_load_ms_ = now;
  }
  elastic::ClusterSample s;
  s.t_ms = now;
  s.pending_tasks = last_load_.pending_tasks;
  s.running_tasks = last_load_.leased_tasks;
  s.backlog_steps = last_load_.backlog_steps;
  s.oldest_pending_wait_ms = last_load_.oldest_pending_wait_ms;
  double od_slots = 0, spot_slots = 0;
  for (const elastic::Node& n : fleet_->live_nodes()) {
    if (n.state == elastic::NodeState::kReady) {
      s.slots_total += n.slots;
      s.slots_busy += std::min(n.busy, n.slots);
      (n.market == elastic::Market::kSpot ? spot_slots : od_slots) += n.slots;
    } else if (n.state == elastic::NodeState::kBooting) {
      ++s.booting_nodes;
    }
  }
  elastic::derive(&s);
  if (now >= next_sample_ms_) {
    Point p;
    p.t_h = static_cast<double>(now) / 3.6e6;
    p.demand = static_cast<double>(s.pending_tasks + s.running_tasks);
    p.on_demand_slots = od_slots;
    p.spot_slots = spot_slots;
    p.cost = fleet_->cost(now).total;
    result_.series.push_back(p);
    next_sample_ms_ = now + sc_.settings.sample_every_ms;
  }
  KILN_ASSIGN_OR_RETURN(elastic::Plan plan, fleet_->reconcile(s, now));
  (void)plan;
  return Status::ok();
}

Result<StrategyResult> ClusterSim::run() {
  KILN_ASSIGN_OR_RETURN(store_, store::JobStore::open_in_memory());
  fleet_ = std::make_unique<elastic::Fleet>(config_, &provider_);
  KILN_RETURN_IF_ERROR(fleet_->start(0));
  for (size_t i = 0; i < sc_.workload.size(); ++i) {
    push({sc_.workload[i].t_ms, 0, EventKind::kArrival, static_cast<int64_t>(i), 0, ""});
  }
  push({config_.period_ms, 0, EventKind::kReconcile, 0, 0, ""});
  const double default_rate = sc_.settings.spot_interruptions_per_node_hour;
  std::exponential_distribution<double> unit(1.0);
  const int64_t total = static_cast<int64_t>(sc_.workload.size());

  while (!events_.empty()) {
    const int64_t now = events_.top().t_ms;
    // Every event at this instant, then one scheduling pass.
    while (!events_.empty() && events_.top().t_ms == now) {
      Event e = events_.top();
      events_.pop();
      switch (e.kind) {
        case EventKind::kArrival: {
          const Arrival& a = sc_.workload[static_cast<size_t>(e.index)];
          store::NewStep ns;
          ns.environment = a.environment;
          ns.name = "sim";
          ns.action_on_failure = "CONTINUE";
          ns.action = json::object();
          ns.layer = "sim";
          const StepShape sh = shape_of(sc_.settings, a.tiles);
          ns.partitions = sh.partitions;
          ns.tiles_total = a.tiles;
          ns.max_attempts = 1000;  // interruptions are not the task's fault
          KILN_ASSIGN_OR_RETURN(store::Step st, store_->submit(ns, now));
          steps_[st.id] = {a.t_ms, -1, -1, sh};
          changed_ = need_start_ = need_dispatch_ = true;
          break;
        }
        case EventKind::kTaskDone: {
          SimNode& n = nodes_[e.node];
          auto it = n.running.find(e.index);
          if (n.gone || it == n.running.end()) break;  // the node went; the task runs elsewhere
          n.running.erase(it);
          KILN_ASSIGN_OR_RETURN(bool taken,
                                store_->complete(n.worker, e.index, e.attempt, true, json::object(),
                                                 store::Failure{}, now));
          changed_ = need_dispatch_ = true;
          fleet_->node_busy(e.node, busy(n), now);
          const elastic::Node* fn = fleet_->node(e.node);
          if (fn && fn->state == elastic::NodeState::kReady) free_.insert(e.node);
          auto t = tasks_.find(e.index);
          if (taken && t != tasks_.end() && t->second.commit) {
            steps_[t->second.step_id].done_ms = now;  // a commit task ends its step
            ++completed_;
            need_start_ = true;
          }
          break;
        }
        case EventKind::kNodeReady: {
          SimNode& n = nodes_[e.node];
          const elastic::Node* fn = fleet_->node(e.node);
          if (n.gone || fn == nullptr || fn->state != elastic::NodeState::kBooting) break;
          KILN_ASSIGN_OR_RETURN(store::WorkerInfo w,
                                store_->register_worker(0, e.node, n.slots, now));
          n.worker = w.id;
          fleet_->node_ready(e.node, now);
          free_.insert(e.node);
          need_dispatch_ = true;
          if (n.spot) {
            const double rate = sc_.spot.empty() ? default_rate : interruption_rate(sc_.spot, now);
            if (rate > 0) {
              const int64_t after = static_cast<int64_t>(unit(rng_) / rate * 3.6e6);
              push({now + std::max<int64_t>(1, after), 0, EventKind::kNotice, 0, 0, e.node});
            }
          }
          break;
        }
        case EventKind::kNotice: {
          const elastic::Node* fn = fleet_->node(e.node);
          if (fn == nullptr || fn->state == elastic::NodeState::kGone) break;
          KILN_RETURN_IF_ERROR(fleet_->interrupt(e.node, now, sc_.settings.spot_notice_ms));
          free_.erase(e.node);
          push({now + sc_.settings.spot_notice_ms, 0, EventKind::kDeadline, 0, 0, e.node});
          break;
        }
        case EventKind::kDeadline:
          KILN_RETURN_IF_ERROR(fleet_->tick(now));
          break;
        case EventKind::kReconcile: {
          KILN_RETURN_IF_ERROR(reconcile(now));
          // Keep the clock going while work is left or nodes are still to
          // wind down to the groups' minimum.
          if (!events_.empty() || completed_ < total || !settled()) {
            push({now + config_.period_ms, 0, EventKind::kReconcile, 0, 0, ""});
          }
          break;
        }
      }
    }
    KILN_RETURN_IF_ERROR(fleet_->tick(now));
    KILN_RETURN_IF_ERROR(dispatch(now));
  }
  // Outcome per step from the store.
  std::vector<double> waits;
  int64_t first = INT64_MAX, last = 0;
  for (const auto& [env, policy] : sc_.settings.environments) {
    store::ListQuery q;
    q.environment = env;
    q.limit = 1000;
    q.with_action = false;
    for (;;) {
      KILN_ASSIGN_OR_RETURN(store::ListPage page, store_->list(q));
      for (const store::Step& s : page.steps) {
        ++result_.steps;
        if (s.state == store::StepState::kCompleted) {
          ++result_.completed;
          last = std::max(last, s.ended_ms);
        }
        const StepInfo& info = steps_[s.id];
        first = std::min(first, info.arrival_ms);
        if (info.first_start_ms >= 0) {
          waits.push_back(static_cast<double>(info.first_start_ms - info.arrival_ms) / 1000);
        }
      }
      if (page.next_marker.empty()) break;
      q.marker = page.next_marker;
    }
  }
  result_.wait_p50_s = percentile(waits, 50);
  result_.wait_p95_s = percentile(waits, 95);
  result_.wait_p99_s = percentile(waits, 99);
  result_.makespan_h = first == INT64_MAX ? 0 : static_cast<double>(last - first) / 3.6e6;
  // Always-on nodes are paid for the whole trace, even when the work ends
  // early.
  const int64_t trace_end = sc_.workload.empty() ? 0 : sc_.workload.back().t_ms;
  const elastic::CostReport c = fleet_->cost(std::max(last, trace_end));
  result_.cost = c.total;
  auto market = [&](const char* m) {
    auto it = c.by_market.find(m);
    return it == c.by_market.end() ? 0.0 : it->second.node_seconds / 3600;
  };
  result_.node_hours_on_demand = market("on_demand");
  result_.node_hours_spot = market("spot");
  result_.interruptions = fleet_->interruptions();
  return result_;
}

const elastic::GroupConfig& core_of(const elastic::AutoscalerConfig& c) {
  for (const auto& g : c.groups)
    if (g.core) return g;
  return c.groups.front();
}

elastic::AutoscalerConfig fixed(const elastic::AutoscalerConfig& base, int nodes) {
  elastic::AutoscalerConfig c;
  c.period_ms = base.period_ms;
  c.drain_timeout_ms = base.drain_timeout_ms;
  elastic::GroupConfig g = core_of(base);
  g.min_nodes = g.max_nodes = std::max(1, nodes);
  c.groups = {g};
  return c;
}

}  // namespace

Result<Scenario> load_scenario(const std::string& path, const std::string& workload_override,
                               const std::string& spot_override) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return invalid_argument(path + ": line " + std::to_string(e.source().begin.line) + ": " +
                            std::string(e.description()));
  }
  Scenario sc;
  toml::table elastic_part;
  for (const char* key : {"group", "autoscaling"}) {
    if (const toml::node* n = root.get(key)) elastic_part.insert(key, *n);
  }
  auto ac = elastic::parse_autoscaler_config(elastic_part);
  if (!ac.is_ok()) return ac.status().with_context(path);
  sc.autoscaler = *ac;
  const std::filesystem::path base = std::filesystem::path(path).parent_path();
  std::string workload = workload_override, spot = spot_override;
  if (const toml::table* t = root["simulation"].as_table()) {
    Settings& s = sc.settings;
    auto num = [&](const char* key, double* out) -> Status {
      if (const toml::node* n = t->get(key)) {
        auto v = n->value<double>();
        if (!v || *v < 0) return invalid_argument(path + ": simulation." + key + ": a number >= 0");
        *out = *v;
      }
      return Status::ok();
    };
    double v = 0;
    for (const auto& [key, node] : *t) {
      static const std::set<std::string> known = {"workload",
                                                  "spot_trace",
                                                  "tiles_per_slot_second",
                                                  "tiles_per_partition",
                                                  "max_partitions",
                                                  "commit_seconds",
                                                  "per_request_bootstrap_seconds",
                                                  "per_request_nodes",
                                                  "spot_notice_seconds",
                                                  "spot_interruptions_per_node_hour",
                                                  "seed",
                                                  "environment"};
      if (!known.count(std::string(key.str()))) {
        return invalid_argument(path + ": simulation." + std::string(key.str()) +
                                ": unknown setting");
      }
    }
    if (workload.empty() && t->get("workload")) {
      workload = (base / t->get("workload")->value_or(std::string())).string();
    }
    if (spot.empty() && t->get("spot_trace")) {
      spot = (base / t->get("spot_trace")->value_or(std::string())).string();
    }
    KILN_RETURN_IF_ERROR(num("tiles_per_slot_second", &s.tiles_per_slot_second));
    if ((v = -1), num("tiles_per_partition", &v).is_ok() && v > 0) {
      s.tiles_per_partition = static_cast<int64_t>(v);
    }
    if ((v = -1), num("max_partitions", &v).is_ok() && v > 0)
      s.max_partitions = static_cast<int>(v);
    if ((v = -1), num("commit_seconds", &v).is_ok() && v >= 0) {
      s.commit_ms = static_cast<int64_t>(v * 1000);
    }
    if ((v = -1), num("per_request_bootstrap_seconds", &v).is_ok() && v >= 0) {
      s.per_request_bootstrap_ms = static_cast<int64_t>(v * 1000);
    }
    if ((v = -1), num("per_request_nodes", &v).is_ok() && v >= 1) {
      s.per_request_nodes = static_cast<int>(v);
    }
    if ((v = -1), num("spot_notice_seconds", &v).is_ok() && v >= 0) {
      s.spot_notice_ms = static_cast<int64_t>(v * 1000);
    }
    KILN_RETURN_IF_ERROR(
        num("spot_interruptions_per_node_hour", &s.spot_interruptions_per_node_hour));
    if ((v = -1), num("seed", &v).is_ok() && v >= 0) s.seed = static_cast<uint64_t>(v);
    if (const toml::node* envs = t->get("environment")) {
      if (!envs->is_array_of_tables()) {
        return invalid_argument(path + ": simulation.environment: a list of tables");
      }
      s.environments.clear();
      for (const toml::node& e : *envs->as_array()) {
        const toml::table& et = *e.as_table();
        const std::string name = et["name"].value_or(std::string());
        if (name.empty()) return invalid_argument(path + ": simulation.environment: name required");
        s.environments[name] = {static_cast<int>(et["concurrency"].value_or(int64_t{64})),
                                static_cast<int>(et["priority"].value_or(int64_t{0}))};
      }
    }
    if (s.tiles_per_slot_second <= 0) {
      return invalid_argument(path + ": simulation.tiles_per_slot_second: must be > 0");
    }
  }
  if (workload.empty()) {
    return invalid_argument(path + ": no workload: set simulation.workload or pass --workload");
  }
  KILN_ASSIGN_OR_RETURN(sc.workload, read_workload(workload));
  for (const Arrival& a : sc.workload) {
    if (!sc.settings.environments.count(a.environment)) {
      return invalid_argument(workload + ": environment '" + a.environment +
                              "' is not one of the scenario's [[simulation.environment]]");
    }
  }
  if (!spot.empty()) {
    KILN_ASSIGN_OR_RETURN(sc.spot, read_spot_trace(spot));
  }
  return sc;
}

Result<Report> simulate(const Scenario& sc) {
  Report r;
  r.steps = static_cast<int64_t>(sc.workload.size());
  if (!sc.workload.empty()) r.trace_days = static_cast<double>(sc.workload.back().t_ms) / 8.64e7;
  const elastic::GroupConfig& core = core_of(sc.autoscaler);

  // Fixed sizes from the demand a cluster of unlimited slots would see.
  const auto curve = ideal_demand(sc);
  int64_t peak = 0;
  std::vector<std::pair<int64_t, int64_t>> weighted;  // (slots, duration) where slots > 0
  for (size_t i = 0; i < curve.size(); ++i) {
    peak = std::max(peak, curve[i].second);
    if (i + 1 < curve.size() && curve[i].second > 0) {
      weighted.emplace_back(curve[i].second, curve[i + 1].first - curve[i].first);
    }
  }
  std::sort(weighted.begin(), weighted.end());
  int64_t total_time = 0, acc = 0, median = 0;
  for (const auto& [s, d] : weighted) total_time += d;
  for (const auto& [s, d] : weighted) {
    acc += d;
    if (acc * 2 >= total_time) {
      median = s;
      break;
    }
  }
  const int spn = core.slots_per_node;
  r.peak_nodes = static_cast<int>((peak + spn - 1) / spn);
  r.median_nodes = std::max<int>(1, static_cast<int>((median + spn - 1) / spn));

  r.strategies.push_back(per_request(sc, core));
  auto shape_fixed = [&](int n) {
    return std::to_string(n) + " x " + std::to_string(spn) + "-slot on-demand nodes, always on";
  };
  for (const auto& [name, n] : std::vector<std::pair<std::string, int>>{
           {"fixed-peak", r.peak_nodes}, {"fixed-median", r.median_nodes}}) {
    ClusterSim sim(sc, fixed(sc.autoscaler, n), name, shape_fixed(n));
    KILN_ASSIGN_OR_RETURN(StrategyResult res, sim.run());
    r.strategies.push_back(std::move(res));
  }
  std::string shape;
  for (const auto& g : sc.autoscaler.groups) {
    if (!shape.empty()) shape += " + ";
    shape += g.name + " " + std::to_string(g.min_nodes) + "-" + std::to_string(g.max_nodes) +
             " x " + std::to_string(g.slots_per_node) + " (" + elastic::market_name(g.market) + ")";
  }
  ClusterSim sim(sc, sc.autoscaler, "autoscaled", shape);
  KILN_ASSIGN_OR_RETURN(StrategyResult res, sim.run());
  r.strategies.push_back(std::move(res));
  return r;
}

std::string report_table(const Report& r) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line,
                "%lld steps over %.1f days; peak demand %d nodes, median %d nodes\n\n",
                static_cast<long long>(r.steps), r.trace_days, r.peak_nodes, r.median_nodes);
  out += line;
  std::snprintf(line, sizeof line, "%-13s %10s %9s %9s %9s %9s %10s %10s %6s %8s  %s\n", "STRATEGY",
                "COST", "WAIT p50", "p95", "p99", "MAKESPAN", "OD node-h", "SPOT node-h", "INTR",
                "REDONE h", "SHAPE");
  out += line;
  for (const StrategyResult& s : r.strategies) {
    std::snprintf(line, sizeof line,
                  "%-13s %10.2f %8.0fs %8.0fs %8.0fs %8.1fh %10.1f %11.1f %6lld %8.2f  %s\n",
                  s.name.c_str(), s.cost, s.wait_p50_s, s.wait_p95_s, s.wait_p99_s, s.makespan_h,
                  s.node_hours_on_demand, s.node_hours_spot,
                  static_cast<long long>(s.interruptions), s.redone_task_hours, s.shape.c_str());
    out += line;
  }
  return out;
}

json report_json(const Report& r) {
  json strategies = json::array();
  for (const StrategyResult& s : r.strategies) {
    strategies.push_back(
        {{"name", s.name},
         {"shape", s.shape},
         {"cost", s.cost},
         {"wait_seconds", {{"p50", s.wait_p50_s}, {"p95", s.wait_p95_s}, {"p99", s.wait_p99_s}}},
         {"makespan_hours", s.makespan_h},
         {"node_hours", {{"on_demand", s.node_hours_on_demand}, {"spot", s.node_hours_spot}}},
         {"interruptions", s.interruptions},
         {"redone_task_hours", s.redone_task_hours},
         {"steps", s.steps},
         {"completed", s.completed}});
  }
  return {{"steps", r.steps},
          {"trace_days", r.trace_days},
          {"peak_nodes", r.peak_nodes},
          {"median_nodes", r.median_nodes},
          {"strategies", strategies}};
}

}  // namespace kiln::sim
