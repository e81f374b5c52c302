#include "sim/cluster_sim.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <set>
#include <unordered_map>

#include "cluster/sample.h"
#include "elastic/fleet.h"
#include "elastic/json.h"
#include "sim/event_queue.h"
#include "store/job_store.h"

namespace kiln::sim {

const char* Profile::name(Call c) {
  switch (c) {
    case kSubmit:
      return "store.submit";
    case kStartSteps:
      return "store.start_steps";
    case kLease:
      return "store.lease";
    case kComplete:
      return "store.complete";
    case kRegisterWorker:
      return "store.register_worker";
    case kWorkerGone:
      return "store.worker_gone";
    case kLoad:
      return "store.load";
    case kStats:
      return "store.stats";
    case kFleetReconcile:
      return "fleet.reconcile";
    case kFleetTick:
      return "fleet.tick";
    case kCallCount:
      break;
  }
  return "?";
}

std::string Profile::format() const {
  std::string out;
  char line[160];
  double accounted = 0;
  std::snprintf(line, sizeof line, "%s: %.2f s CPU (%.2f s wall), %lld events, %lld tasks leased\n",
                strategy.c_str(), cpu_seconds, wall_seconds, static_cast<long long>(events),
                static_cast<long long>(tasks_leased));
  out += line;
  for (int c = 0; c < kCallCount; ++c) {
    if (calls[c] == 0) continue;
    const double s = static_cast<double>(nanos[c]) / 1e9;
    accounted += s;
    std::snprintf(line, sizeof line, "  %-22s %9lld calls %8.3f s CPU %8.1f us/call\n",
                  name(static_cast<Call>(c)), static_cast<long long>(calls[c]), s,
                  1e6 * s / static_cast<double>(calls[c]));
    out += line;
  }
  std::snprintf(line, sizeof line, "  %-22s %24.3f s CPU\n", "the rest (simulator itself)",
                std::max(0.0, cpu_seconds - accounted));
  out += line;
  return out;
}

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// This thread's CPU time: what a call costs, whatever else the machine
// is running.
int64_t cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Adds one call and its CPU time to the profile (when profiling: reading
// the clock costs about as much as a small call).
class Timed {
 public:
  Timed(Profile* p, Profile::Call c) : p_(p), c_(c), t0_(p->enabled ? cpu_ns() : 0) {}
  ~Timed() {
    ++p_->calls[c_];
    if (p_->enabled) p_->nanos[c_] += cpu_ns() - t0_;
  }

 private:
  Profile* p_;
  Profile::Call c_;
  int64_t t0_;
};

// A lease lasts as long as its task: the simulated workers never stop
// heartbeating while their node is up, and a node that goes calls
// worker_gone, so lease expiry never comes into it.
constexpr int64_t kLeaseMs = 400LL * 86400 * 1000;
// After the last step ends, rounds go on until the groups are back at
// their minimum, but no longer than this (policies that never scale in).
constexpr int64_t kWindDownMs = 86400 * 1000;

using Kind = EventKind;

enum class NodeState : uint8_t { kBooting, kReady, kDraining, kGone };

struct RunningTask {
  int64_t task = 0;
  int attempt = 0;
  int64_t started_ms = 0;
  int64_t step = 0;  // arrival index
  bool commit = false;
};

struct SimNode {
  std::string id;
  std::string worker;  // registered once ready
  int slots = 0;
  bool spot = false;
  NodeState state = NodeState::kBooting;
  std::vector<RunningTask> running;
  int busy() const { return static_cast<int>(running.size()); }
};

struct StepRec {
  int64_t arrival_ms = 0;
  int64_t first_start_ms = -1;
  int64_t done_ms = -1;
  int64_t partitions_done = 0;
  StepShape shape;
  std::string environment;
};

struct EnvCount {
  int64_t pending = 0;  // submitted, not started
  int64_t running = 0;  // started, not completed
  int concurrency = 1;
};

class ClusterSim;

// Nodes of the simulation: launch schedules the node's readiness after its
// group's bootstrap; terminate takes its worker out of the store.
class SimProvider final : public elastic::NodeProvider {
 public:
  explicit SimProvider(ClusterSim* sim) : sim_(sim) {}
  const char* kind() const override { return "simulated"; }
  Status launch(const elastic::GroupConfig& g, const std::string& id, int64_t now_ms) override;
  Status drain(const std::string& id, int64_t now_ms) override;
  Status terminate(const std::string& id, int64_t now_ms) override;

 private:
  ClusterSim* sim_;
};

class ClusterSim {
 public:
  ClusterSim(const Scenario& sc, elastic::AutoscalerConfig config, const ClusterOptions& options,
             Profile* profile)
      : sc_(sc),
        config_(std::move(config)),
        options_(options),
        profile_(profile),
        provider_(this),
        rng_(sc.settings.seed) {
    if (!sc.spot.empty()) {
      const elastic::PriceTrace prices = spot_prices(sc.spot);
      for (auto& g : config_.groups)
        if (g.market == elastic::Market::kSpot) g.price = prices;
    }
    for (const auto& g : config_.groups) min_nodes_ += g.min_nodes;
    for (const auto& [env, p] : sc.settings.environments) envs_[env].concurrency = p.concurrency;
  }

  Result<StrategyResult> run();

  // Provider callbacks (from inside Fleet calls).
  Status launched(const elastic::GroupConfig& g, const std::string& id, int64_t now);
  Status drained(const std::string& id, int64_t now);
  Status terminated(const std::string& id, int64_t now);

 private:
  void push(Kind kind, int64_t t, int64_t a = 0, int32_t node = -1, int32_t b = 0) {
    if (kind == Kind::kNotice) ++notices_queued_;
    events_.push(Event{t, kind, a, node, b});
  }
  Status handle(const Event& e);
  Status arrival(int64_t index, int64_t now);
  Status task_done(const Event& e, int64_t now);
  Status node_ready(int32_t node, int64_t now);
  Status notice(int32_t node, int64_t now);
  Status reconcile(int64_t now);
  void chart_point(int64_t now);
  // After a time's events: start steps, fill free slots, report busy
  // counts, end drains; repeated while one of them enables another.
  Status settle(int64_t now);
  Status start_steps(int64_t now);
  Status dispatch(int64_t now);
  // The result's figures, once the loop is over.
  Status summarize();
  void set_state(SimNode& n, NodeState s);
  // When a spot node that is ready at `from` gets its interruption notice,
  // drawn from the (time-varying) rate; -1: never.
  int64_t next_notice(int64_t from);
  bool work_left() const { return completed_ < static_cast<int64_t>(sc_.workload.size()); }
  bool keep_going(int64_t now) const {
    if (work_left()) return true;
    return live_nodes_ > min_nodes_ && now < last_done_ms_ + kWindDownMs;
  }
  void note_capacity() {
    const double total = ready_slots_[0] + ready_slots_[1];
    if (total >= bucket_.on_demand_slots + bucket_.spot_slots) {
      bucket_.on_demand_slots = ready_slots_[0];
      bucket_.spot_slots = ready_slots_[1];
    }
  }

  const Scenario& sc_;
  elastic::AutoscalerConfig config_;
  ClusterOptions options_;
  Profile* profile_;
  SimProvider provider_;
  std::unique_ptr<elastic::Fleet> fleet_;
  std::unique_ptr<store::JobStore> store_;
  EventQueue events_;
  int64_t notices_queued_ = 0;  // of the events queued, spot notices
  std::mt19937_64 rng_;

  std::vector<SimNode> nodes_;
  std::unordered_map<std::string, int32_t> node_index_;
  std::set<int32_t> free_;  // ready nodes with a free slot, in launch order
  std::vector<int32_t> busy_changed_;
  int64_t ready_slots_[2] = {0, 0};  // on demand, spot
  int64_t ready_busy_ = 0;           // busy slots of ready nodes
  int64_t booting_ = 0;
  int64_t live_nodes_ = 0, min_nodes_ = 0;
  int peak_nodes_ = 0;
  int64_t draining_ = 0;

  std::vector<StepRec> steps_;
  std::unordered_map<std::string, int64_t> step_index_;  // store id -> arrival index
  std::map<std::string, EnvCount> envs_;
  int64_t completed_ = 0;
  int64_t last_done_ms_ = 0;

  // Whether the store may hold runnable tasks no free slot has asked for:
  // false after a lease came back short, true again when a step starts, a
  // step's last partition ends (its commit becomes runnable) or a node goes
  // with leases (they are PENDING again).
  bool runnable_ = false;
  bool start_wanted_ = false;  // a step arrived or ended since start_steps ran
  bool tick_wanted_ = false;   // a draining node may be done or past its deadline
  bool store_changed_ = true;  // since the last load()
  store::Load load_;
  int64_t load_ms_ = 0;

  std::ofstream samples_out_, decisions_out_;  // options_.record_dir's files
  Point bucket_;                               // the chart bucket being filled
  double redone_ms_ = 0;
  StrategyResult result_;
};

Status SimProvider::launch(const elastic::GroupConfig& g, const std::string& id, int64_t now_ms) {
  return sim_->launched(g, id, now_ms);
}
Status SimProvider::drain(const std::string& id, int64_t now_ms) {
  return sim_->drained(id, now_ms);
}
Status SimProvider::terminate(const std::string& id, int64_t now_ms) {
  return sim_->terminated(id, now_ms);
}

void ClusterSim::set_state(SimNode& n, NodeState s) {
  const int market = n.spot ? 1 : 0;
  if (n.state == NodeState::kReady) {
    ready_slots_[market] -= n.slots;
    ready_busy_ -= n.busy();
  }
  if (n.state == NodeState::kBooting) --booting_;
  if (n.state == NodeState::kDraining) --draining_;
  n.state = s;
  if (s == NodeState::kReady) {
    ready_slots_[market] += n.slots;
    ready_busy_ += n.busy();
    note_capacity();
  }
  if (s == NodeState::kBooting) ++booting_;
  if (s == NodeState::kDraining) ++draining_;
}

Status ClusterSim::launched(const elastic::GroupConfig& g, const std::string& id, int64_t now) {
  const int32_t index = static_cast<int32_t>(nodes_.size());
  SimNode n;
  n.id = id;
  n.slots = g.slots_per_node;
  n.spot = g.market == elastic::Market::kSpot;
  n.state = NodeState::kBooting;
  ++booting_;
  nodes_.push_back(std::move(n));
  node_index_[id] = index;
  peak_nodes_ = std::max(peak_nodes_, static_cast<int>(++live_nodes_));
  push(Kind::kNodeReady, now + g.bootstrap_ms, 0, index);
  return Status::ok();
}

Status ClusterSim::drained(const std::string& id, int64_t now) {
  SimNode& n = nodes_[static_cast<size_t>(node_index_.at(id))];
  set_state(n, NodeState::kDraining);
  free_.erase(node_index_.at(id));
  // The fleet set the deadline before telling the provider.
  const elastic::Node* fn = fleet_->node(id);
  if (fn != nullptr && fn->drain_deadline_ms > now) push(Kind::kDeadline, fn->drain_deadline_ms);
  tick_wanted_ = true;
  return Status::ok();
}

Status ClusterSim::terminated(const std::string& id, int64_t now) {
  const int32_t index = node_index_.at(id);
  SimNode& n = nodes_[static_cast<size_t>(index)];
  if (n.state == NodeState::kGone) return Status::ok();
  set_state(n, NodeState::kGone);
  free_.erase(index);
  --live_nodes_;
  for (const RunningTask& t : n.running) redone_ms_ += static_cast<double>(now - t.started_ms);
  const bool had_leases = !n.running.empty();
  n.running.clear();
  if (!n.worker.empty()) {
    Timed timed(profile_, Profile::kWorkerGone);
    KILN_RETURN_IF_ERROR(store_->worker_gone(n.worker, now));
    store_changed_ = true;
  }
  if (had_leases) runnable_ = true;
  return Status::ok();
}

int64_t ClusterSim::next_notice(int64_t from) {
  std::exponential_distribution<double> unit(1.0);
  double hazard = unit(rng_);  // node-hours x rate until the notice
  const double fallback = sc_.settings.spot_interruptions_per_node_hour;
  const auto& pts = sc_.spot;
  // The rate is a step function: walk its steps from `from`.
  auto it = std::upper_bound(pts.begin(), pts.end(), from,
                             [](int64_t t, const SpotPoint& p) { return t < p.t_ms; });
  int64_t t = from;
  for (;;) {
    const double rate = interruption_rate(pts, t, fallback);
    const int64_t until = it == pts.end() ? INT64_MAX : it->t_ms;
    const double hours = until == INT64_MAX ? 1e18 : static_cast<double>(until - t) / 3.6e6;
    if (rate > 0 && rate * hours >= hazard) {
      const int64_t at = t + static_cast<int64_t>(std::ceil(hazard / rate * 3.6e6));
      return std::max(at, from + 1);
    }
    if (until == INT64_MAX) return -1;  // no rate from here on
    hazard -= rate * hours;
    t = until;
    ++it;
  }
}

Status ClusterSim::arrival(int64_t index, int64_t now) {
  const Arrival& a = sc_.workload[static_cast<size_t>(index)];
  StepRec& rec = steps_[static_cast<size_t>(index)];
  rec.arrival_ms = now;
  rec.shape = shape_of(sc_.settings, a.tiles);
  rec.environment = a.environment;
  store::NewStep ns;
  ns.environment = a.environment;
  ns.name = "sim-" + std::to_string(index);
  ns.action_on_failure = "CONTINUE";
  ns.action = json::object();
  ns.layer = "sim";
  ns.partitions = rec.shape.partitions;
  ns.tiles_total = a.tiles;
  store::Step step;
  {
    Timed timed(profile_, Profile::kSubmit);
    KILN_ASSIGN_OR_RETURN(step, store_->submit(ns, now));
  }
  step_index_[step.id] = index;
  ++envs_[a.environment].pending;
  store_changed_ = start_wanted_ = true;
  return Status::ok();
}

Status ClusterSim::start_steps(int64_t now) {
  start_wanted_ = false;
  bool any = false;
  for (const auto& [env, c] : envs_) any = any || (c.pending > 0 && c.running < c.concurrency);
  if (!any) return Status::ok();  // start_steps would start nothing
  std::vector<std::string> started;
  {
    Timed timed(profile_, Profile::kStartSteps);
    KILN_ASSIGN_OR_RETURN(started, store_->start_steps(sc_.settings.environments, now));
  }
  for (const std::string& id : started) {
    EnvCount& c = envs_[steps_[static_cast<size_t>(step_index_.at(id))].environment];
    --c.pending;
    ++c.running;
  }
  if (!started.empty()) runnable_ = store_changed_ = true;
  return Status::ok();
}

Status ClusterSim::dispatch(int64_t now) {
  for (auto it = free_.begin(); it != free_.end() && runnable_;) {
    const int32_t index = *it;
    SimNode& n = nodes_[static_cast<size_t>(index)];
    const int want = n.slots - n.busy();
    std::vector<store::Lease> leases;
    {
      Timed timed(profile_, Profile::kLease);
      KILN_ASSIGN_OR_RETURN(leases, store_->lease(n.worker, want, sc_.settings.environments,
                                                  sc_.settings.starvation_ms, kLeaseMs, now));
    }
    store_changed_ = true;  // the worker was touched, at least
    for (const store::Lease& l : leases) {
      StepRec& rec = steps_[static_cast<size_t>(step_index_.at(l.step.id))];
      if (rec.first_start_ms < 0) rec.first_start_ms = now;
      const bool commit = l.task.kind == store::TaskKind::kCommit;
      const int64_t run_ms = commit ? rec.shape.commit_ms : rec.shape.partition_ms;
      n.running.push_back({l.task.id, l.task.attempt, now, step_index_.at(l.step.id), commit});
      ++ready_busy_;
      push(Kind::kTaskDone, now + run_ms, l.task.id, index, l.task.attempt);
    }
    profile_->tasks_leased += static_cast<int64_t>(leases.size());
    if (!leases.empty()) busy_changed_.push_back(index);
    if (static_cast<int>(leases.size()) < want) runnable_ = false;  // nothing runnable is left
    it = n.busy() >= n.slots ? free_.erase(it) : std::next(it);
  }
  return Status::ok();
}

Status ClusterSim::task_done(const Event& e, int64_t now) {
  SimNode& n = nodes_[static_cast<size_t>(e.node)];
  auto it = std::find_if(n.running.begin(), n.running.end(),
                         [&](const RunningTask& t) { return t.task == e.a && t.attempt == e.b; });
  if (it == n.running.end()) return Status::ok();  // its node went; it runs again elsewhere
  const RunningTask task = *it;
  n.running.erase(it);
  if (n.state == NodeState::kReady) {
    --ready_busy_;
    free_.insert(e.node);
  } else if (n.state == NodeState::kDraining) {
    tick_wanted_ = true;
  }
  busy_changed_.push_back(e.node);
  bool taken = false;
  {
    Timed timed(profile_, Profile::kComplete);
    KILN_ASSIGN_OR_RETURN(
        taken, store_->complete(n.worker, e.a, e.b, true, json::object(), store::Failure{}, now));
  }
  store_changed_ = true;
  if (!taken) {
    return internal_error("the job store refused the completion of task " + std::to_string(e.a) +
                          " attempt " + std::to_string(e.b) + " on node " + n.id);
  }
  StepRec& rec = steps_[static_cast<size_t>(task.step)];
  if (task.commit) {  // the commit task ends its step: COMPLETED
    rec.done_ms = now;
    last_done_ms_ = now;
    ++completed_;
    --envs_[rec.environment].running;
    start_wanted_ = true;
  } else if (++rec.partitions_done == rec.shape.partitions) {
    runnable_ = true;  // the commit task is runnable now
  }
  return Status::ok();
}

Status ClusterSim::node_ready(int32_t index, int64_t now) {
  SimNode& n = nodes_[static_cast<size_t>(index)];
  if (n.state != NodeState::kBooting) return Status::ok();  // terminated while booting
  {
    Timed timed(profile_, Profile::kRegisterWorker);
    KILN_ASSIGN_OR_RETURN(store::WorkerInfo w, store_->register_worker(0, n.id, n.slots, now));
    n.worker = w.id;
  }
  store_changed_ = true;
  fleet_->node_ready(n.id, now);
  set_state(n, NodeState::kReady);
  free_.insert(index);
  if (n.spot) {
    const int64_t at = next_notice(now);
    if (at >= 0) push(Kind::kNotice, at, 0, index);
  }
  return Status::ok();
}

Status ClusterSim::notice(int32_t index, int64_t now) {
  SimNode& n = nodes_[static_cast<size_t>(index)];
  if (n.state == NodeState::kGone || n.state == NodeState::kBooting) return Status::ok();
  KILN_RETURN_IF_ERROR(fleet_->interrupt(n.id, now, sc_.settings.spot_notice_ms));
  push(Kind::kDeadline, now + sc_.settings.spot_notice_ms);
  return Status::ok();
}

Status ClusterSim::reconcile(int64_t now) {
  if (store_changed_) {
    Timed timed(profile_, Profile::kLoad);
    KILN_ASSIGN_OR_RETURN(load_, store_->load(now));
    store_changed_ = false;
  } else if (load_.pending_tasks > 0) {
    // Nothing changed since the last look: the same tasks, waiting longer.
    load_.oldest_pending_wait_ms += now - load_ms_;
  }
  load_ms_ = now;
  // The sample as kiln serve builds it (cluster::make_sample).
  cluster::Capacity capacity;
  capacity.slots_total = ready_slots_[0] + ready_slots_[1];
  capacity.slots_busy = ready_busy_;
  capacity.booting_nodes = booting_;
  const elastic::ClusterSample s = cluster::make_sample(load_, capacity, now);
  bucket_.demand = std::max(bucket_.demand, static_cast<double>(s.pending_tasks + s.running_tasks));
  if (samples_out_.is_open()) {
    // As kiln serve records a round: the sample and the nodes as they were
    // before it (ElasticControl::reconcile_locked).
    json nodes = json::array();
    for (const elastic::Node& n : fleet_->live_nodes()) nodes.push_back(elastic::to_json(n));
    samples_out_ << json{{"sample", elastic::to_json(s)}, {"nodes", nodes}}.dump() << "\n";
  }
  elastic::Plan plan;
  {
    Timed timed(profile_, Profile::kFleetReconcile);
    KILN_ASSIGN_OR_RETURN(plan, fleet_->reconcile(s, now));
  }
  if (decisions_out_.is_open()) {
    for (const elastic::Decision& d : plan.decisions) {
      decisions_out_ << elastic::to_json(d).dump() << "\n";
    }
  }
  if (keep_going(now)) push(Kind::kReconcile, now + config_.period_ms);
  return Status::ok();
}

void ClusterSim::chart_point(int64_t now) {
  bucket_.t_ms = now;
  bucket_.cost = fleet_->cost(now).total;
  note_capacity();
  result_.series.push_back(bucket_);
  bucket_ = Point();
  note_capacity();  // the next bucket starts with what is ready now
  if (keep_going(now)) push(Kind::kChart, now + sc_.settings.chart_bucket_ms);
}

Status ClusterSim::handle(const Event& e) {
  const int64_t now = e.t_ms;
  switch (e.kind) {
    case Kind::kArrival:
      return arrival(e.a, now);
    case Kind::kTaskDone:
      return task_done(e, now);
    case Kind::kNodeReady:
      return node_ready(e.node, now);
    case Kind::kNotice:
      return notice(e.node, now);
    case Kind::kDeadline:
      tick_wanted_ = true;
      return Status::ok();
    case Kind::kReconcile:
      return reconcile(now);
    case Kind::kChart:
      chart_point(now);
      return Status::ok();
  }
  return Status::ok();
}

Status ClusterSim::settle(int64_t now) {
  for (int round = 0; round < 8; ++round) {
    if (start_wanted_) KILN_RETURN_IF_ERROR(start_steps(now));
    if (runnable_ && !free_.empty()) KILN_RETURN_IF_ERROR(dispatch(now));
    for (int32_t index : busy_changed_) {
      const SimNode& n = nodes_[static_cast<size_t>(index)];
      if (n.state != NodeState::kGone) fleet_->node_busy(n.id, n.busy(), now);
    }
    busy_changed_.clear();
    if (!tick_wanted_ || draining_ == 0) break;
    tick_wanted_ = false;
    Timed timed(profile_, Profile::kFleetTick);
    KILN_RETURN_IF_ERROR(fleet_->tick(now));
    // A node that went may have sent leases back to the queue.
    if (!runnable_ || free_.empty()) break;
  }
  tick_wanted_ = false;
  return Status::ok();
}

Status ClusterSim::summarize() {
  StrategyResult& r = result_;
  // The store's own account of how the steps ended.
  store::StoreStats stats;
  {
    Timed timed(profile_, Profile::kStats);
    KILN_ASSIGN_OR_RETURN(stats, store_->stats());
  }
  for (const auto& [env, by_state] : stats.steps_by_env_state) {
    for (const auto& [state, n] : by_state) {
      r.steps += n;
      if (state == "COMPLETED") r.completed += n;
    }
  }
  if (r.completed != completed_) {
    return internal_error(options_.name + ": the job store completed " +
                          std::to_string(r.completed) + " steps, the simulation saw " +
                          std::to_string(completed_));
  }
  std::vector<double> waits;
  waits.reserve(steps_.size());
  double sum = 0;
  int64_t first = INT64_MAX, last = 0;
  for (const StepRec& s : steps_) {
    first = std::min(first, s.arrival_ms);
    last = std::max(last, s.done_ms);
    if (s.first_start_ms < 0) continue;
    waits.push_back(static_cast<double>(s.first_start_ms - s.arrival_ms) / 1000);
    sum += waits.back();
  }
  r.wait_p50_s = percentile(waits, 50);
  r.wait_p95_s = percentile(waits, 95);
  r.wait_p99_s = percentile(waits, 99);
  r.wait_max_s = percentile(waits, 100);
  r.wait_mean_s = waits.empty() ? 0 : sum / static_cast<double>(waits.size());
  r.makespan_h = steps_.empty() ? 0 : static_cast<double>(last - first) / 3.6e6;
  // Always-on nodes are paid until the trace is over, even when the work
  // ends early; nodes that went were paid until they went.
  const int64_t trace_end = sc_.workload.empty() ? 0 : sc_.workload.back().t_ms;
  const elastic::CostReport c = fleet_->cost(std::max(last, trace_end));
  r.cost = c.total;
  auto market = [&](const char* m) {
    auto it = c.by_market.find(m);
    return it == c.by_market.end() ? elastic::MarketCost() : it->second;
  };
  r.cost_on_demand = market("on_demand").cost;
  r.cost_spot = market("spot").cost;
  r.node_hours_on_demand = market("on_demand").node_seconds / 3600;
  r.node_hours_spot = market("spot").node_seconds / 3600;
  r.peak_nodes = peak_nodes_;
  r.interruptions = fleet_->interruptions();
  r.redone_task_seconds = redone_ms_ / 1000;
  return Status::ok();
}

Result<StrategyResult> ClusterSim::run() {
  const auto t0 = Clock::now();
  const int64_t cpu0 = cpu_ns();
  profile_->strategy = options_.name;
  result_.name = options_.name;
  result_.shape = options_.shape;
  KILN_ASSIGN_OR_RETURN(store_, store::JobStore::open_in_memory());
  if (!options_.record_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options_.record_dir, ec);
    for (auto [out, name] : {std::pair{&samples_out_, "autoscaler-samples.jsonl"},
                             std::pair{&decisions_out_, "autoscaler-decisions.jsonl"}}) {
      const std::string path = options_.record_dir + "/" + name;
      out->open(path, std::ios::binary | std::ios::trunc);
      if (!out->is_open()) return io_error(path + ": cannot write it");
    }
  }
  fleet_ = std::make_unique<elastic::Fleet>(config_, &provider_);
  KILN_RETURN_IF_ERROR(fleet_->start(0));
  steps_.resize(sc_.workload.size());
  for (size_t i = 0; i < sc_.workload.size(); ++i) {
    push(Kind::kArrival, sc_.workload[i].t_ms, static_cast<int64_t>(i));
  }
  if (options_.autoscale) push(Kind::kReconcile, config_.period_ms);
  push(Kind::kChart, sc_.settings.chart_bucket_ms);

  int64_t now = 0;
  while (!events_.empty()) {
    now = events_.top().t_ms;
    while (!events_.empty() && events_.top().t_ms == now) {
      const Event e = events_.pop();
      if (e.kind == Kind::kNotice) --notices_queued_;
      ++profile_->events;
      KILN_RETURN_IF_ERROR(handle(e));
    }
    KILN_RETURN_IF_ERROR(settle(now));
    // Done: what is left are notices for nodes that may be gone already,
    // drawn days ahead; they would only move the clock.
    if (!keep_going(now) && static_cast<int64_t>(events_.size()) == notices_queued_) break;
  }
  // A final point for the part-bucket at the end.
  if (result_.series.empty() || result_.series.back().t_ms < now) chart_point(now);
  KILN_RETURN_IF_ERROR(summarize());
  for (std::ofstream* out : {&samples_out_, &decisions_out_}) {
    if (!out->is_open()) continue;
    out->close();
    if (!*out) return io_error(options_.record_dir + ": writing the recorded rounds failed");
  }
  profile_->wall_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  profile_->cpu_seconds = static_cast<double>(cpu_ns() - cpu0) / 1e9;
  return result_;
}

}  // namespace

Result<StrategyResult> run_cluster(const Scenario& sc, elastic::AutoscalerConfig config,
                                   const ClusterOptions& options, Profile* profile) {
  Profile scratch;
  ClusterSim sim(sc, std::move(config), options, profile != nullptr ? profile : &scratch);
  return sim.run();
}

}  // namespace kiln::sim
