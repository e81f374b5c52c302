#include "cluster/step_service.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <optional>
#include <thread>

#include "common/log.h"
#include "config/limits.h"
#include "config/source_roots.h"
#include "ingest/definition.h"

namespace kiln::cluster {

int plan_threads_for(const config::ServerConfig& config) {
  int64_t max_slots = 0;
  for (const auto& g : config.autoscaler.groups)
    max_slots += static_cast<int64_t>(g.max_nodes) * g.slots_per_node;
  return static_cast<int>(std::clamp<int64_t>(max_slots, 1, config::kMaxPlanThreads));
}

CoreStepService::CoreStepService(StepServiceOptions options, store::JobStore* store,
                                 Planner* planner, StepLog* log, Policies* policies,
                                 StepEvents* events, Lifecycle* lifecycle, const Clock& clock)
    : options_(options),
      store_(store),
      planner_(planner),
      log_(log),
      policies_(policies),
      events_(events),
      lifecycle_(lifecycle),
      clock_(clock) {}

Result<ingest::IngestDefinition> CoreStepService::definition_of(const EnvironmentConfig& env,
                                                                const SubmitRequest& req) const {
  Result<std::vector<ingest::IngestDefinition>> defs = invalid_argument("no definition");
  if (req.definition_uri.empty()) {
    defs = ingest::parse_definition(req.definition);
  } else {
    std::string uri = req.definition_uri;
    if (uri.rfind("file://", 0) == 0) uri = uri.substr(7);
    if (uri.empty() || uri[0] != '/') {
      return invalid_argument("definition '" + req.definition_uri +
                              "': give an absolute path or a file:///absolute/path.json URI "
                              "(other schemes are not supported yet)");
    }
    // Under the roots first (no byte read otherwise), then read with care:
    // the name alone cannot tell a FIFO or /dev/zero from a file.
    KILN_ASSIGN_OR_RETURN(std::string path,
                          config::check_source(env.source_roots, env.name, "definition", uri,
                                               /*local_only=*/true));
    KILN_ASSIGN_OR_RETURN(std::string text, read_definition_file("definition", path,
                                                                 options_.definition_file, clock_));
    defs = ingest::parse_definition_text(text, "definition '" + req.definition_uri + "'");
  }
  if (!defs.is_ok()) return invalid_argument(defs.status().message());
  if (defs->size() != 1) {
    return invalid_argument("the definition holds " + std::to_string(defs->size()) +
                            " layers; a step ingests exactly one");
  }
  ingest::IngestDefinition def = (*defs)[0];
  for (size_t i = 0; i < def.sources.size(); ++i) {
    // What was checked is what is opened: the real path of a local file,
    // /vsicurl/ and the normalised URL of a remote one.
    KILN_ASSIGN_OR_RETURN(
        def.sources[i].uri,
        config::check_source(env.source_roots, env.name, "sources[" + std::to_string(i) + "].uri",
                             def.sources[i].uri));
  }
  return def;
}

Status CoreStepService::admit(const EnvironmentConfig& env, size_t count) const {
  if (lifecycle_->stopping()) {
    return unavailable("the server is shutting down and takes no new steps");
  }
  // The PENDING quota before any planning work (the store checks it again,
  // atomically, when it inserts).
  KILN_ASSIGN_OR_RETURN(int64_t pending, store_->count_steps(env.name, store::StepState::kPending));
  if (pending + static_cast<int64_t>(count) > env.max_pending_steps) {
    std::string message = "environment '" + env.name + "' has " + std::to_string(pending) +
                          " PENDING steps, its limit ([[environment]] max_pending_steps) is " +
                          std::to_string(env.max_pending_steps);
    if (count > 1) message += ", and this call adds " + std::to_string(count);
    return resource_exhausted(message + ": wait for some to start, or cancel some");
  }
  return Status::ok();
}

Result<CoreStepService::Prepared> CoreStepService::prepare(const EnvironmentConfig& env,
                                                           const SubmitRequest& req) const {
  const std::string& aof = req.action_on_failure;
  if (aof == "TERMINATE_CLUSTER" || aof == "TERMINATE_JOB_FLOW") {
    return invalid_argument("action_on_failure: " + aof +
                            " is refused: the cluster is shared by every environment and stays "
                            "up; use CONTINUE or CANCEL_AND_WAIT");
  }
  if (aof != "CONTINUE" && aof != "CANCEL_AND_WAIT") {
    return invalid_argument("action_on_failure: '" + aof +
                            "' is not one of CONTINUE, CANCEL_AND_WAIT");
  }
  if (req.name.size() > static_cast<size_t>(config::kMaxStepNameLength)) {
    return invalid_argument("name: at most " + std::to_string(config::kMaxStepNameLength) +
                            " characters");
  }
  KILN_ASSIGN_OR_RETURN(ingest::IngestDefinition def, definition_of(env, req));
  // A step writes only under its environment's catalog root, whatever the
  // definition says (docs/cluster.md): the credentials decide, never the body.
  def.output.catalog = env.catalog;
  def.output.environment = env.name;
  auto plan = planner_->plan(def, options_.plan_threads);
  // kInputError (a source that cannot be read) and kEmpty (nothing to
  // ingest) keep their code; anything else planning the tenant's input
  // hits is the definition's fault, never the server's (400, not 500).
  if (!plan.is_ok()) {
    const StatusCode c = plan.status().code();
    if (c == StatusCode::kInputError || c == StatusCode::kEmpty || c == StatusCode::kUnavailable)
      return plan.status();  // kUnavailable: the sandboxed planner's deadline passed (503)
    return invalid_argument(plan.status().message());
  }

  Prepared p;
  store::NewStep& ns = p.step;
  ns.environment = env.name;
  ns.name = req.name.empty() ? def.layer : req.name;
  ns.action_on_failure = aof;
  ns.action = {{"ingest", ingest::to_json(def)}, {"plan", {{"threads", options_.plan_threads}}}};
  if (!req.emr_request.is_null()) ns.action["emr"] = req.emr_request;
  ns.layer = def.layer;
  ns.partitions = plan->partitions;
  ns.tiles_total = plan->tiles_total;
  ns.max_attempts = options_.max_attempts;
  ns.max_pending = env.max_pending_steps;
  p.log_line = "step '" + ns.name + "' submitted in environment " + env.name + ": layer " +
               def.layer + ", " + std::to_string(ns.partitions) + " partition task(s), " +
               std::to_string(ns.tiles_total) + " tiles";
  return p;
}

Result<store::Step> CoreStepService::submit(const EnvironmentConfig& env,
                                            const SubmitRequest& req) {
  KILN_RETURN_IF_ERROR(admit(env, 1));
  KILN_ASSIGN_OR_RETURN(Prepared p, prepare(env, req));
  KILN_ASSIGN_OR_RETURN(store::Step step, store_->submit(p.step, clock_.now_ms()));
  log_->append(step.id, p.log_line);
  events_->notify();
  return step;
}

Result<std::vector<store::Step>> CoreStepService::submit_all(const EnvironmentConfig& env,
                                                             const std::vector<SubmitRequest>& reqs,
                                                             size_t* failed_index) {
  *failed_index = kBatchFailed;
  if (reqs.empty()) return invalid_argument("no step to submit");
  KILN_RETURN_IF_ERROR(admit(env, reqs.size()));
  // Each definition is planned in its own child (or thread, for an
  // in-process planner): a few at once, so a call of many steps waits for
  // the slowest few plans rather than for their sum.
  std::vector<std::optional<Result<Prepared>>> prepared(reqs.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < reqs.size(); i = next++) {
      // Nothing here is meant to throw; if something does, it must not
      // escape a thread (std::terminate would take the server down).
      try {
        prepared[i] = prepare(env, reqs[i]);
      } catch (const std::exception& e) {
        prepared[i] = Result<Prepared>(internal_error(std::string("planning failed: ") + e.what()));
      }
    }
  };
  const size_t planners = std::min(reqs.size(), static_cast<size_t>(kBatchPlanners));
  std::vector<std::thread> threads;
  for (size_t t = 1; t < planners; ++t) threads.emplace_back(work);
  work();
  for (std::thread& t : threads) t.join();

  std::vector<store::NewStep> steps;
  std::vector<std::string> lines;
  for (size_t i = 0; i < reqs.size(); ++i) {
    if (!prepared[i]->is_ok()) {
      *failed_index = i;
      return prepared[i]->status();
    }
    steps.push_back(std::move((*prepared[i])->step));
    lines.push_back(std::move((*prepared[i])->log_line));
  }
  KILN_ASSIGN_OR_RETURN(std::vector<store::Step> out, store_->submit_all(steps, clock_.now_ms()));
  for (size_t i = 0; i < out.size(); ++i) log_->append(out[i].id, lines[i]);
  events_->notify();
  return out;
}

Result<store::Step> CoreStepService::get(const EnvironmentConfig& env, const std::string& id) {
  return store_->get(env.name, id);
}

Result<store::ListPage> CoreStepService::list(const EnvironmentConfig& env, store::ListQuery q) {
  q.environment = env.name;
  if (q.limit < 1 || q.limit > config::kMaxListLimit) {
    return invalid_argument("limit: must be 1-" + std::to_string(config::kMaxListLimit));
  }
  return store_->list(q);
}

Result<store::Step> CoreStepService::cancel(const EnvironmentConfig& env, const std::string& id,
                                            const std::string& signal) {
  if (signal != "TERM" && signal != "KILL") {
    return invalid_argument("signal: must be \"TERM\" or \"KILL\", got \"" + signal + "\"");
  }
  KILN_ASSIGN_OR_RETURN(store::Step step,
                        store_->request_cancel(env.name, id, signal, clock_.now_ms()));
  log_->append(step.id,
               "cancel requested (" + signal + "); state " + store::step_state_name(step.state));
  events_->notify();
  return step;
}

Result<ClusterInfo> CoreStepService::cluster(const EnvironmentConfig& env) {
  ClusterInfo c;
  KILN_ASSIGN_OR_RETURN(c.workers, store_->workers(/*alive_only=*/true));
  KILN_ASSIGN_OR_RETURN(store::StoreStats stats, store_->stats());
  for (const auto& w : c.workers) {
    c.slots_total += w.slots;
    c.slots_busy += w.busy;
  }
  auto q = stats.queued_tasks_by_env.find(env.name);
  c.queued_tasks = q == stats.queued_tasks_by_env.end() ? 0 : q->second;
  KILN_ASSIGN_OR_RETURN(store::EnvironmentPolicy p, policies_->get(env.name));
  c.concurrency = p.concurrency;
  c.priority = p.priority;
  c.accepting_steps = !lifecycle_->stopping();
  c.started_ms = options_.started_ms;
  return c;
}

Status CoreStepService::set_concurrency(const EnvironmentConfig& env, int64_t concurrency) {
  KILN_RETURN_IF_ERROR(policies_->set_concurrency(env.name, concurrency));
  log::info("environment " + env.name + ": concurrency now " + std::to_string(concurrency));
  // More room may start PENDING steps now.
  events_->notify();
  return Status::ok();
}

std::string CoreStepService::log_location(const std::string& step_id) const {
  return log_->path(step_id);
}

Result<store::Step> CoreStepService::wait(const EnvironmentConfig& env, const std::string& id,
                                          int64_t timeout_ms) {
  const int64_t deadline = clock_.now_ms() + std::max<int64_t>(timeout_ms, 0);
  uint64_t seen = events_->version();
  for (;;) {
    KILN_ASSIGN_OR_RETURN(store::Step step, store_->get(env.name, id));
    if (store::is_terminal(step.state) || clock_.now_ms() >= deadline || events_->closed()) {
      return step;
    }
    seen = events_->wait_for_change(seen, deadline);
  }
}

Result<LogChunk> CoreStepService::read_log(const EnvironmentConfig& env, const std::string& id,
                                           int64_t offset, int64_t max_bytes) {
  if (offset < 0) return invalid_argument("offset: must be a non-negative integer");
  KILN_ASSIGN_OR_RETURN(store::Step step, store_->get(env.name, id));
  return log_->read(step.id, offset, std::min(max_bytes, config::kMaxLogChunkBytes));
}

Result<store::StoreStats> CoreStepService::stats() { return store_->stats(); }

Result<store::EnvironmentPolicy> CoreStepService::policy(const EnvironmentConfig& env) const {
  return policies_->get(env.name);
}

}  // namespace kiln::cluster
