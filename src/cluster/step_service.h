// StepService: what an API door (the native REST API, the EMR-compatible
// endpoint) may do with steps, already scoped to one environment (the
// caller's, resolved by the door from its credentials). Doors translate
// their wire format onto it, so validation, planning, isolation and logging
// are the same whichever door a step comes through.
//
// CoreStepService is the cluster's implementation over the job store.
//
// Contract, for every method:
// - Thread-safe: doors call it from many request threads at once.
// - Another environment's step answers kNotFound, exactly like an unknown id.
// - Errors: kInvalidArgument for what the caller sent (naming the field),
//   kInputError for sources that cannot be read, kNotFound, kUnavailable
//   once shutdown has begun (submit only), kInternal/kIOError for the
//   store. The doors map codes to HTTP/EMR errors in one table
//   (server/http_errors.h).
// - Times come from the injected Clock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster/definition_file.h"
#include "cluster/lifecycle.h"
#include "cluster/planner.h"
#include "cluster/policies.h"
#include "cluster/step_events.h"
#include "cluster/step_log.h"
#include "common/clock.h"
#include "common/status.h"
#include "config/server_config.h"
#include "store/job_store.h"

namespace kiln::cluster {

using config::EnvironmentConfig;

struct SubmitRequest {
  std::string name;                            // empty: the layer's name
  std::string action_on_failure = "CONTINUE";  // or CANCEL_AND_WAIT
  // Exactly one of: an ingest definition document (Kiln's JSON or Raster
  // Foundry's), or an absolute path / file:// URI of one.
  nlohmann::json definition;
  std::string definition_uri;
  // What the client sent, kept with the step for doors that echo it back
  // (EMR's DescribeStep returns the HadoopJarStep); stored as
  // action["emr"]. Null: nothing to keep.
  nlohmann::json emr_request;
};

struct ClusterInfo {
  std::vector<store::WorkerInfo> workers;  // live ones
  int64_t slots_total = 0;
  int64_t slots_busy = 0;
  int64_t queued_tasks = 0;  // this environment's
  int concurrency = 1;       // this environment's, as set now
  int priority = 0;
  bool accepting_steps = true;
  int64_t started_ms = 0;  // when this server started
};

class StepService {
 public:
  virtual ~StepService() = default;
  // Validates and plans; a definition that cannot run is refused here with
  // the reason (kInvalidArgument, kInputError), never left to fail. Every
  // source and definition file must lie under env.source_roots; nothing
  // is opened or connected before that check passes.
  // kUnavailable while shutting down; kResourceExhausted when the
  // environment has max_pending_steps PENDING steps already.
  virtual Result<store::Step> submit(const EnvironmentConfig& env, const SubmitRequest& req) = 0;
  // Several steps, all or nothing: every request is validated and planned
  // (several plans at once) before any step is stored, and then all are
  // stored in one transaction, in order. When reqs[i] is refused,
  // *failed_index is i and the status is its error, as submit() would
  // give it; when the batch as a whole is (shutdown, max_pending_steps,
  // the store), *failed_index is kBatchFailed.
  static constexpr size_t kBatchFailed = static_cast<size_t>(-1);
  virtual Result<std::vector<store::Step>> submit_all(const EnvironmentConfig& env,
                                                      const std::vector<SubmitRequest>& reqs,
                                                      size_t* failed_index) = 0;
  virtual Result<store::Step> get(const EnvironmentConfig& env, const std::string& id) = 0;
  // q.environment is set to env's; the rest of q is the caller's.
  virtual Result<store::ListPage> list(const EnvironmentConfig& env, store::ListQuery q) = 0;
  // signal: "TERM" or "KILL" (kInvalidArgument otherwise).
  virtual Result<store::Step> cancel(const EnvironmentConfig& env, const std::string& id,
                                     const std::string& signal) = 0;
  virtual Result<ClusterInfo> cluster(const EnvironmentConfig& env) = 0;
  // kInvalidArgument outside config::kMinConcurrency..kMaxConcurrency.
  virtual Status set_concurrency(const EnvironmentConfig& env, int64_t concurrency) = 0;
  // Where the step's log is (a local path today).
  virtual std::string log_location(const std::string& step_id) const = 0;
};

struct StepServiceOptions {
  int max_attempts = 3;
  // Partitions enough for every slot the cluster may grow to (the sum over
  // the groups of max_nodes x slots_per_node), within 1..kMaxPlanThreads.
  int plan_threads = 1;
  int64_t started_ms = 0;
  // Definition files (ingest_uri, EMR --definition): at most the server's
  // max_body_bytes, read within the deadline.
  DefinitionFileLimits definition_file;
};

class CoreStepService final : public StepService {
 public:
  // Every pointer must outlive this object.
  CoreStepService(StepServiceOptions options, store::JobStore* store, Planner* planner,
                  StepLog* log, Policies* policies, StepEvents* events, Lifecycle* lifecycle,
                  const Clock& clock);

  Result<store::Step> submit(const EnvironmentConfig& env, const SubmitRequest& req) override;
  Result<std::vector<store::Step>> submit_all(const EnvironmentConfig& env,
                                              const std::vector<SubmitRequest>& reqs,
                                              size_t* failed_index) override;
  Result<store::Step> get(const EnvironmentConfig& env, const std::string& id) override;
  Result<store::ListPage> list(const EnvironmentConfig& env, store::ListQuery q) override;
  Result<store::Step> cancel(const EnvironmentConfig& env, const std::string& id,
                             const std::string& signal) override;
  Result<ClusterInfo> cluster(const EnvironmentConfig& env) override;
  Status set_concurrency(const EnvironmentConfig& env, int64_t concurrency) override;
  std::string log_location(const std::string& step_id) const override;

  // The step once it has ended, or as it is when timeout_ms has passed on
  // the clock (or shutdown began). Wakes on step events, not on a timer.
  Result<store::Step> wait(const EnvironmentConfig& env, const std::string& id, int64_t timeout_ms);
  // Up to max_bytes of the step's log from `offset` (kNotFound as get()).
  Result<LogChunk> read_log(const EnvironmentConfig& env, const std::string& id, int64_t offset,
                            int64_t max_bytes);
  // Store counters for /metrics.
  Result<store::StoreStats> stats();
  Result<store::EnvironmentPolicy> policy(const EnvironmentConfig& env) const;

 private:
  // Plans run at once by one submit_all.
  static constexpr int kBatchPlanners = 4;

  // A request made ready to store: the step and its first log line.
  struct Prepared {
    store::NewStep step;
    std::string log_line;
  };
  // Not shutting down, and room for `count` more PENDING steps.
  Status admit(const EnvironmentConfig& env, size_t count) const;
  // Validation, definition, source roots and plan of one request.
  Result<Prepared> prepare(const EnvironmentConfig& env, const SubmitRequest& req) const;
  // The definition the request names, parsed (exactly one layer), with
  // every source checked against env's source roots and replaced by the
  // canonical name that is opened from then on (config/source_roots.h).
  Result<ingest::IngestDefinition> definition_of(const EnvironmentConfig& env,
                                                 const SubmitRequest& req) const;

  const StepServiceOptions options_;
  store::JobStore* store_;
  Planner* planner_;
  StepLog* log_;
  Policies* policies_;
  StepEvents* events_;
  Lifecycle* lifecycle_;
  const Clock& clock_;
};

// The plan_threads for a config: every slot the groups may grow to, within
// 1..config::kMaxPlanThreads.
int plan_threads_for(const config::ServerConfig& config);

}  // namespace kiln::cluster
