// StepService: what an API front end (the native REST API, the EMR-compatible
// endpoint) may do with steps, already scoped to one environment. The server
// implements it once; front ends translate their wire format onto it, so
// validation, planning, isolation and logging are the same whichever door a
// step comes through.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "server/config.h"
#include "store/job_store.h"

namespace kiln::server {

struct SubmitRequest {
  std::string name;                            // empty: the layer's name
  std::string action_on_failure = "CONTINUE";  // or CANCEL_AND_WAIT
  // Exactly one of: an ingest definition document (Kiln's JSON or Raster
  // Foundry's), or an absolute path / file:// URI of one.
  nlohmann::json definition;
  std::string definition_uri;
  // What the client sent, kept with the step for front ends that echo it
  // back (EMR's DescribeStep returns the HadoopJarStep); stored as
  // action["emr"]. Null: nothing to keep.
  nlohmann::json emr_request;
};

struct ClusterInfo {
  int64_t workers = 0;
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
  // Validates and plans; kInvalidArgument/kInputError name what is wrong
  // (a definition that cannot run is refused here, never left to fail),
  // kUnavailable-like kInternal while shutting down.
  virtual Result<store::Step> submit(const EnvironmentConfig& env, const SubmitRequest& req) = 0;
  // kNotFound for unknown ids and for other environments' steps alike.
  virtual Result<store::Step> get(const EnvironmentConfig& env, const std::string& id) = 0;
  virtual Result<store::ListPage> list(const EnvironmentConfig& env, store::ListQuery q) = 0;
  // signal: "TERM" or "KILL".
  virtual Result<store::Step> cancel(const EnvironmentConfig& env, const std::string& id,
                                     const std::string& signal) = 0;
  virtual Result<ClusterInfo> cluster(const EnvironmentConfig& env) = 0;
  virtual Status set_concurrency(const EnvironmentConfig& env, int concurrency) = 0;
  // Where the step's log is (a local path today).
  virtual std::string log_location(const std::string& step_id) const = 0;
};

}  // namespace kiln::server
