#include "server/emr.h"

#include <algorithm>
#include <array>
#include <initializer_list>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "common/json_strict.h"
#include "common/log.h"
#include "config/limits.h"
#include "server/auth.h"
#include "server/emr_args.h"
#include "server/http_errors.h"

namespace kiln::server {
namespace {

using json = nlohmann::json;

// EMR's own limit on AddJobFlowSteps (its API reference: 256 steps).
constexpr size_t kMaxStepsPerCall = 256;

// --- replies ------------------------------------------------------------------

struct Reply {
  int status = 200;
  json body = json::object();
  std::string type;  // error __type; empty on success
};

Reply ok(json body) { return Reply{200, std::move(body), ""}; }

// EMR's error body: {"__type", "Message"} and "ErrorCode" where the model
// has one (InvalidRequestException).
Reply error_reply(int status, const std::string& type, const std::string& message,
                  const std::string& error_code = "") {
  json body = {{"__type", type}, {"Message", message}};
  if (!error_code.empty()) body["ErrorCode"] = error_code;
  return Reply{status, std::move(body), type};
}
Reply validation_error(const std::string& message) {
  return error_reply(400, "ValidationException", message);
}
Reply serialization_error(const std::string& message) {
  return error_reply(400, "SerializationException", message);
}
Reply invalid_request(const std::string& message, const std::string& code = "") {
  return error_reply(400, "InvalidRequestException", message, code);
}

// What EMR answers for a cluster id it does not have. Another environment's
// cluster gets the same words: its existence is not the caller's business.
Reply no_such_cluster(const std::string& id) {
  return invalid_request("Cluster id '" + id + "' is not valid.", "NoSuchCluster");
}
Reply no_such_step(const std::string& id) {
  return invalid_request("Step id '" + id + "' is not valid.");
}

// A StepService failure. `internal_type` is the operation's modeled 500
// error: InternalServerError for the older operations (AddJobFlowSteps,
// CancelSteps, ModifyCluster), InternalServerException for the rest.
Reply from_status(const Status& s, const std::string& internal_type) {
  const HttpError& e = http_error(s.code());
  return error_reply(e.emr_http_status ? e.emr_http_status : e.http_status,
                     e.emr_type ? e.emr_type : internal_type, s.message());
}

// --- reading requests -----------------------------------------------------------

const char* json_kind(const json& v) {
  switch (v.type()) {
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "a list";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "a number";
    default:
      return "null";
  }
}

// `message` ending in a full stop, so that another sentence can follow it.
std::string sentence(std::string message) {
  if (!message.empty() && message.back() != '.' && message.back() != '!' && message.back() != '?') {
    message += '.';
  }
  return message;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// Reads the members of one JSON object, keeping the first problem found so
// a handler reads every field and then checks once. Like AWS: a missing
// required member or a bad value is a ValidationException, a member of the
// wrong JSON type a SerializationException. Unlike AWS, an unknown member
// is refused too (ValidationException naming it): a misspelt field must
// not be silently dropped. JSON null counts as absent, as in AWS.
class Reader {
 public:
  // `where`: the path of this object in the request ("" at the top,
  // "Steps[0]" further down), for messages.
  Reader(const json& object, std::string where) : object_(object), where_(std::move(where)) {}

  bool failed() const { return error_.has_value(); }
  const Reply& error() const { return *error_; }
  void fail(Reply r) {
    if (!error_) error_ = std::move(r);
  }

  std::string path(std::string_view name) const {
    return where_.empty() ? std::string(name) : where_ + "." + std::string(name);
  }

  void only(std::initializer_list<std::string_view> known) {
    for (auto it = object_.begin(); it != object_.end(); ++it) {
      if (std::find(known.begin(), known.end(), it.key()) != known.end()) continue;
      std::vector<std::string> names(known.begin(), known.end());
      fail(validation_error("unknown field '" + path(it.key()) + "' (known here: " + join(names) +
                            ")"));
      return;
    }
  }

  // The member, or nullptr when absent (an error if required).
  const json* member(std::string_view name, bool required) {
    auto it = object_.find(std::string(name));
    if (it == object_.end() || it->is_null()) {
      if (required) {
        fail(validation_error("1 validation error detected: Value null at '" + path(name) +
                              "' failed to satisfy constraint: Member must not be null"));
      }
      return nullptr;
    }
    return &*it;
  }

  std::string string(std::string_view name, bool required, size_t max_length = 10280) {
    const json* v = member(name, required);
    if (!v) return "";
    if (!v->is_string()) {
      fail(type_error(name, "a string", *v));
      return "";
    }
    std::string s = v->get<std::string>();
    if (s.size() > max_length) {
      fail(validation_error("1 validation error detected: Value at '" + path(name) +
                            "' failed to satisfy constraint: Member must have length less than "
                            "or equal to " +
                            std::to_string(max_length)));
    }
    return s;
  }

  std::vector<std::string> strings(std::string_view name, bool required) {
    std::vector<std::string> out;
    const json* v = member(name, required);
    if (!v) return out;
    if (!v->is_array()) {
      fail(type_error(name, "a list of strings", *v));
      return out;
    }
    for (size_t i = 0; i < v->size(); ++i) {
      const json& e = (*v)[i];
      if (!e.is_string()) {
        fail(type_error(std::string(name) + "[" + std::to_string(i) + "]", "a string", e));
        return out;
      }
      out.push_back(e.get<std::string>());
    }
    return out;
  }

  // Each string must be one of `allowed` (an enum of the model).
  std::vector<std::string> enums(std::string_view name, const std::vector<std::string>& allowed) {
    std::vector<std::string> values = strings(name, /*required=*/false);
    for (size_t i = 0; i < values.size(); ++i) check_enum(values[i], name, i, allowed);
    return values;
  }

  void check_enum(const std::string& value, std::string_view name, std::optional<size_t> index,
                  const std::vector<std::string>& allowed) {
    if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return;
    const std::string at =
        path(name) + (index ? "[" + std::to_string(*index) + "]" : std::string());
    fail(validation_error("1 validation error detected: Value '" + value + "' at '" + at +
                          "' failed to satisfy constraint: Member must satisfy enum value set: [" +
                          join(allowed) + "]"));
  }

  std::optional<int64_t> integer(std::string_view name) {
    const json* v = member(name, false);
    if (!v) return std::nullopt;
    if (!v->is_number_integer()) {
      fail(type_error(name, "an integer", *v));
      return std::nullopt;
    }
    return v->get<int64_t>();
  }

  // AWS JSON timestamps: seconds since the epoch, a number.
  std::optional<double> timestamp(std::string_view name) {
    const json* v = member(name, false);
    if (!v) return std::nullopt;
    if (!v->is_number()) {
      fail(type_error(name, "a timestamp (seconds since the epoch)", *v));
      return std::nullopt;
    }
    return v->get<double>();
  }

  const json* list(std::string_view name, bool required) {
    const json* v = member(name, required);
    if (v && !v->is_array()) {
      fail(type_error(name, "a list", *v));
      return nullptr;
    }
    return v;
  }

  const json* object(std::string_view name, bool required) {
    const json* v = member(name, required);
    if (v && !v->is_object()) {
      fail(type_error(name, "an object", *v));
      return nullptr;
    }
    return v;
  }

 private:
  Reply type_error(std::string_view name, const char* expected, const json& got) const {
    return serialization_error(path(name) + ": expected " + expected + ", got " + json_kind(got));
  }

  const json& object_;
  std::string where_;
  std::optional<Reply> error_;
};

// --- building responses -----------------------------------------------------------

// EMR's timestamps: seconds since the epoch with a fraction, a JSON number.
json epoch_seconds(int64_t ms) { return static_cast<double>(ms) / 1000.0; }

const std::vector<std::string>& step_state_names() {
  static const std::vector<std::string> names = {
      "PENDING", "CANCEL_PENDING", "RUNNING", "COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED"};
  return names;
}

const std::vector<std::string>& cluster_state_names() {
  static const std::vector<std::string> names = {
      "STARTING",   "BOOTSTRAPPING",         "RUNNING", "WAITING", "TERMINATING",
      "TERMINATED", "TERMINATED_WITH_ERRORS"};
  return names;
}

// The HadoopStepConfig DescribeStep echoes: what the client sent through
// this endpoint (kept in action["emr"]), or for a step submitted with the
// native API, the `kiln ingest` it amounts to.
json step_config(const store::Step& step) {
  json config = {{"Jar", "command-runner.jar"},
                 {"Args", json::array({"kiln", "ingest"})},
                 {"Properties", json::object()}};
  auto emr = step.action.find("emr");
  if (emr == step.action.end() || !emr->is_object()) return config;
  // Only members of the shape's types: the echo must parse as the model says.
  for (const char* key : {"Jar", "MainClass", "Args", "Properties"}) {
    auto it = emr->find(key);
    if (it == emr->end()) continue;
    const bool fits = std::string_view(key) == "Args"         ? it->is_array()
                      : std::string_view(key) == "Properties" ? it->is_object()
                                                              : it->is_string();
    if (fits) config[key] = *it;
  }
  return config;
}

json step_status(const store::Step& step, const std::string& log_file) {
  json timeline = {{"CreationDateTime", epoch_seconds(step.created_ms)}};
  if (step.started_ms > 0) timeline["StartDateTime"] = epoch_seconds(step.started_ms);
  if (step.ended_ms > 0) timeline["EndDateTime"] = epoch_seconds(step.ended_ms);
  json status = {{"State", store::step_state_name(step.state)},
                 {"StateChangeReason", json::object()},
                 {"Timeline", timeline}};
  // Airflow's EmrStepSensor builds its failure message from these.
  if (step.failure) {
    status["FailureDetails"] = {
        {"Reason", step.failure->reason},
        {"Message", step.failure->message},
        {"LogFile", step.failure->log_file.empty() ? log_file : step.failure->log_file}};
  }
  return status;
}

// Step (DescribeStep) and StepSummary (ListSteps) have the same members
// here: Step adds only ExecutionRoleArn, which Kiln does not have.
json step_json(const store::Step& step, const std::string& log_file) {
  return {{"Id", step.id},
          {"Name", step.name},
          {"Config", step_config(step)},
          {"ActionOnFailure", step.action_on_failure},
          {"Status", step_status(step, log_file)}};
}

// --- operations -------------------------------------------------------------------

struct Call {
  StepService& steps;
  const EnvironmentConfig& env;
  const std::string& release_label;
  const std::string& internal_type;  // this operation's modeled 500 error
  std::string cluster_id;            // the environment's
  const ListMarkers& markers;        // seals and opens ListSteps markers
};

// The environment's cluster state: RUNNING while it has steps to run,
// WAITING otherwise (EMR's words for a cluster that stays up).
Result<std::string> cluster_state(const Call& c) {
  store::ListQuery q;
  q.states = {store::StepState::kPending, store::StepState::kRunning,
              store::StepState::kCancelPending};
  q.limit = 1;
  KILN_ASSIGN_OR_RETURN(store::ListPage page, c.steps.list(c.env, q));
  return std::string(page.steps.empty() ? "WAITING" : "RUNNING");
}

json cluster_status(const std::string& state, const ClusterInfo& info) {
  // The cluster came up with this server; it never ends while it runs.
  json timeline = {{"CreationDateTime", epoch_seconds(info.started_ms)},
                   {"ReadyDateTime", epoch_seconds(info.started_ms)}};
  const char* reason = state == "RUNNING" ? "Running step." : "Cluster ready to run steps.";
  return {{"State", state}, {"StateChangeReason", {{"Message", reason}}}, {"Timeline", timeline}};
}

Reply add_job_flow_steps(const Call& c, const json& in) {
  Reader r(in, "");
  r.only({"JobFlowId", "Steps", "ExecutionRoleArn"});
  const std::string job_flow_id = r.string("JobFlowId", true, 256);
  const json* steps = r.list("Steps", true);
  if (r.member("ExecutionRoleArn", false)) {
    r.fail(validation_error(
        "ExecutionRoleArn is not supported: a step runs with its environment's access, which "
        "the credentials of this call choose; leave it out"));
  }
  // Read every step's shape before anything else, as EMR does.
  std::vector<EmrStepConfig> configs;
  for (size_t i = 0; steps && !r.failed() && i < steps->size(); ++i) {
    const std::string where = "Steps[" + std::to_string(i) + "]";
    const json& s = (*steps)[i];
    if (!s.is_object()) {
      r.fail(serialization_error(where + ": expected an object, got " + json_kind(s)));
      break;
    }
    Reader sr(s, where);
    sr.only({"Name", "ActionOnFailure", "HadoopJarStep"});
    EmrStepConfig config;
    config.name = sr.string("Name", true, 256);
    config.action_on_failure = sr.string("ActionOnFailure", false);
    if (!config.action_on_failure.empty()) {
      sr.check_enum(config.action_on_failure, "ActionOnFailure", std::nullopt,
                    {"TERMINATE_JOB_FLOW", "TERMINATE_CLUSTER", "CANCEL_AND_WAIT", "CONTINUE"});
    }
    const json* jar_step = sr.object("HadoopJarStep", true);
    if (jar_step) {
      Reader jr(*jar_step, sr.path("HadoopJarStep"));
      jr.only({"Jar", "MainClass", "Args", "Properties"});
      config.jar_step.jar = jr.string("Jar", true);
      config.jar_step.main_class = jr.string("MainClass", false);
      config.jar_step.args = jr.strings("Args", false);
      const json* props = jr.list("Properties", false);
      for (size_t p = 0; props && !jr.failed() && p < props->size(); ++p) {
        const std::string pwhere = jr.path("Properties") + "[" + std::to_string(p) + "]";
        if (!(*props)[p].is_object()) {
          jr.fail(
              serialization_error(pwhere + ": expected an object, got " + json_kind((*props)[p])));
          break;
        }
        Reader kv((*props)[p], pwhere);
        kv.only({"Key", "Value"});
        std::string key = kv.string("Key", false), value = kv.string("Value", false);
        if (kv.failed()) jr.fail(kv.error());
        config.jar_step.properties.emplace_back(std::move(key), std::move(value));
      }
      if (jr.failed()) sr.fail(jr.error());
    }
    if (sr.failed()) r.fail(sr.error());
    configs.push_back(std::move(config));
  }
  if (r.failed()) return r.error();
  // AddJobFlowSteps predates InvalidRequestException: EMR answers an
  // unknown job flow with this ValidationException (seen by Raster
  // Foundry's own workers, raster-foundry issue #352).
  if (job_flow_id != c.cluster_id) {
    return validation_error("Specified job flow ID does not exist.");
  }
  if (configs.empty()) return validation_error("Steps: give at least one step");
  if (configs.size() > kMaxStepsPerCall) {
    return validation_error("Steps: at most " + std::to_string(kMaxStepsPerCall) +
                            " steps per call, got " + std::to_string(configs.size()));
  }

  // All or nothing: every step is translated before the first is submitted.
  std::vector<SubmitRequest> requests;
  for (size_t i = 0; i < configs.size(); ++i) {
    auto req = to_submit_request(configs[i]);
    if (!req.is_ok()) {
      return validation_error("Steps[" + std::to_string(i) + "] ('" + configs[i].name +
                              "'): " + sentence(req.status().message()) + " No step was added.");
    }
    requests.push_back(std::move(req).value());
  }
  // Submitting validates and plans every definition before any step is
  // stored: one refused step leaves the call without effect.
  size_t failed = StepService::kBatchFailed;
  auto added = c.steps.submit_all(c.env, requests, &failed);
  if (!added.is_ok()) {
    if (failed == StepService::kBatchFailed) {
      return from_status(added.status(), c.internal_type);
    }
    return from_status(
        Status(added.status().code(),
               "Steps[" + std::to_string(failed) + "] ('" + configs[failed].name +
                   "'): " + sentence(added.status().message()) + " No step was added."),
        c.internal_type);
  }
  json ids = json::array();
  for (const store::Step& step : *added) ids.push_back(step.id);
  return ok({{"StepIds", ids}});
}

Reply list_steps(const Call& c, const json& in) {
  Reader r(in, "");
  r.only({"ClusterId", "StepStates", "StepIds", "Marker"});
  const std::string cluster_id = r.string("ClusterId", true);
  const std::vector<std::string> states = r.enums("StepStates", step_state_names());
  const std::vector<std::string> ids = r.strings("StepIds", false);
  const std::string marker = r.string("Marker", false);
  if (r.failed()) return r.error();
  if (cluster_id != c.cluster_id) return no_such_cluster(cluster_id);

  store::ListQuery q;
  for (const auto& s : states) q.states.push_back(*store::parse_step_state(s));
  q.ids = ids;
  q.limit = 50;  // EMR's page size for ListSteps
  if (!marker.empty()) {
    auto cursor = c.markers.open(c.env.name, marker);
    if (!cursor.is_ok()) return invalid_request("Marker '" + marker + "' is not valid.");
    q.marker = *cursor;
  }
  auto page = c.steps.list(c.env, q);
  if (!page.is_ok()) {
    if (page.status().code() == StatusCode::kInvalidArgument && !marker.empty()) {
      return invalid_request("Marker '" + marker + "' is not valid.");
    }
    return from_status(page.status(), c.internal_type);
  }
  json steps = json::array();
  for (const auto& s : page->steps) steps.push_back(step_json(s, c.steps.log_location(s.id)));
  json out = {{"Steps", steps}};
  if (!page->next_marker.empty()) out["Marker"] = c.markers.seal(c.env.name, page->next_marker);
  return ok(out);
}

Reply describe_step(const Call& c, const json& in) {
  Reader r(in, "");
  r.only({"ClusterId", "StepId"});
  const std::string cluster_id = r.string("ClusterId", true);
  const std::string step_id = r.string("StepId", true);
  if (r.failed()) return r.error();
  if (cluster_id != c.cluster_id) return no_such_cluster(cluster_id);
  auto step = c.steps.get(c.env, step_id);
  if (!step.is_ok()) {
    if (step.status().code() == StatusCode::kNotFound) return no_such_step(step_id);
    return from_status(step.status(), c.internal_type);
  }
  return ok({{"Step", step_json(*step, c.steps.log_location(step->id))}});
}

Reply cancel_steps(const Call& c, const json& in) {
  Reader r(in, "");
  r.only({"ClusterId", "StepIds", "StepCancellationOption"});
  const std::string cluster_id = r.string("ClusterId", true, 256);
  const std::vector<std::string> ids = r.strings("StepIds", true);
  std::string option = r.string("StepCancellationOption", false);
  if (!option.empty()) {
    r.check_enum(option, "StepCancellationOption", std::nullopt,
                 {"SEND_INTERRUPT", "TERMINATE_PROCESS"});
  }
  if (r.failed()) return r.error();
  if (cluster_id != c.cluster_id) return no_such_cluster(cluster_id);
  if (option.empty()) option = "SEND_INTERRUPT";  // EMR's default
  const std::string signal = option == "TERMINATE_PROCESS" ? "KILL" : "TERM";

  json infos = json::array();
  for (const std::string& id : ids) {
    auto failed = [&](const std::string& reason) {
      infos.push_back({{"StepId", id}, {"Status", "FAILED"}, {"Reason", reason}});
    };
    auto before = c.steps.get(c.env, id);
    if (!before.is_ok()) {
      failed(before.status().code() == StatusCode::kNotFound ? "Step id '" + id + "' is not valid."
                                                             : before.status().message());
      continue;
    }
    if (store::is_terminal(before->state)) {
      failed(std::string("The step is ") + store::step_state_name(before->state) +
             "; only PENDING and RUNNING steps can be cancelled.");
      continue;
    }
    auto after = c.steps.cancel(c.env, id, signal);
    if (!after.is_ok()) {
      failed(after.status().message());
      continue;
    }
    // A step already cancelling keeps the signal it was first given.
    if (before->state == store::StepState::kCancelPending && after->cancel_signal != signal) {
      failed("The step is already being cancelled with " +
             std::string(after->cancel_signal == "KILL" ? "TERMINATE_PROCESS" : "SEND_INTERRUPT") +
             ".");
      continue;
    }
    infos.push_back({{"StepId", id}, {"Status", "SUBMITTED"}});
  }
  return ok({{"CancelStepsInfoList", infos}});
}

Result<json> cluster_json(const Call& c) {
  KILN_ASSIGN_OR_RETURN(ClusterInfo info, c.steps.cluster(c.env));
  KILN_ASSIGN_OR_RETURN(std::string state, cluster_state(c));
  // No LogUri: Airflow's EMR operators hand LogUri to S3Hook.parse_s3_url,
  // which raises for anything but s3:// (or https) URIs, and they skip it
  // when it is absent. Each step's log is in its FailureDetails.LogFile.
  return json{{"Id", c.cluster_id},
              {"Name", emr_cluster_name(c.env.name)},
              {"Status", cluster_status(state, info)},
              {"InstanceCollectionType", "INSTANCE_GROUP"},
              // awscli's add-steps reads it: with a release label it builds
              // command-runner.jar steps (Type=Spark too), as on EMR 4+.
              {"ReleaseLabel", c.release_label},
              {"AutoTerminate", false},
              // The cluster is shared by every environment; no client ends it.
              {"TerminationProtected", true},
              {"VisibleToAllUsers", true},
              {"Applications", json::array({{{"Name", "Kiln"}}})},
              {"Tags", json::array({{{"Key", "kiln:environment"}, {"Value", c.env.name}}})},
              {"NormalizedInstanceHours", 0},
              {"Configurations", json::array()},
              {"StepConcurrencyLevel", info.concurrency}};
}

Reply describe_cluster(const Call& c, const json& in) {
  Reader r(in, "");
  r.only({"ClusterId"});
  const std::string cluster_id = r.string("ClusterId", true);
  if (r.failed()) return r.error();
  if (cluster_id != c.cluster_id) return no_such_cluster(cluster_id);
  auto cluster = cluster_json(c);
  if (!cluster.is_ok()) return from_status(cluster.status(), c.internal_type);
  return ok({{"Cluster", *cluster}});
}

Reply list_clusters(const Call& c, const json& in) {
  Reader r(in, "");
  r.only({"CreatedAfter", "CreatedBefore", "ClusterStates", "Marker"});
  const auto after = r.timestamp("CreatedAfter");
  const auto before = r.timestamp("CreatedBefore");
  const std::vector<std::string> states = r.enums("ClusterStates", cluster_state_names());
  const std::string marker = r.string("Marker", false);
  if (r.failed()) return r.error();
  // One cluster fits on the first page: no marker is ever handed out.
  if (!marker.empty()) return invalid_request("Marker '" + marker + "' is not valid.");

  auto info = c.steps.cluster(c.env);
  if (!info.is_ok()) return from_status(info.status(), c.internal_type);
  auto state = cluster_state(c);
  if (!state.is_ok()) return from_status(state.status(), c.internal_type);
  const double created = static_cast<double>(info->started_ms) / 1000.0;
  json clusters = json::array();
  const bool state_matches =
      states.empty() || std::find(states.begin(), states.end(), *state) != states.end();
  if (state_matches && (!after || created >= *after) && (!before || created <= *before)) {
    clusters.push_back({{"Id", c.cluster_id},
                        {"Name", emr_cluster_name(c.env.name)},
                        {"Status", cluster_status(*state, *info)},
                        {"NormalizedInstanceHours", 0}});
  }
  return ok({{"Clusters", clusters}});
}

Reply modify_cluster(const Call& c, const json& in) {
  Reader r(in, "");
  r.only({"ClusterId", "StepConcurrencyLevel"});
  const std::string cluster_id = r.string("ClusterId", true);
  const auto level = r.integer("StepConcurrencyLevel");
  if (r.failed()) return r.error();
  if (cluster_id != c.cluster_id) return no_such_cluster(cluster_id);
  if (level) {
    if (*level < config::kMinConcurrency || *level > config::kMaxConcurrency) {
      return validation_error(
          "StepConcurrencyLevel must be between " + std::to_string(config::kMinConcurrency) +
          " and " + std::to_string(config::kMaxConcurrency) + ", not " + std::to_string(*level));
    }
    Status s = c.steps.set_concurrency(c.env, *level);
    if (!s.is_ok()) return from_status(s, c.internal_type);
  }
  auto info = c.steps.cluster(c.env);
  if (!info.is_ok()) return from_status(info.status(), c.internal_type);
  return ok({{"StepConcurrencyLevel", info->concurrency}});
}

// `aws emr describe-cluster` calls these two after DescribeCluster. Kiln's
// cluster has no EC2 instance groups and no bootstrap actions.
Reply list_instance_groups(const Call& c, const json& in) {
  Reader r(in, "");
  r.only({"ClusterId", "Marker"});
  const std::string cluster_id = r.string("ClusterId", true);
  r.string("Marker", false);
  if (r.failed()) return r.error();
  if (cluster_id != c.cluster_id) return no_such_cluster(cluster_id);
  return ok({{"InstanceGroups", json::array()}});
}

Reply list_bootstrap_actions(const Call& c, const json& in) {
  Reader r(in, "");
  r.only({"ClusterId", "Marker"});
  const std::string cluster_id = r.string("ClusterId", true);
  r.string("Marker", false);
  if (r.failed()) return r.error();
  if (cluster_id != c.cluster_id) return no_such_cluster(cluster_id);
  return ok({{"BootstrapActions", json::array()}});
}

struct Operation {
  std::string_view name;
  std::string_view internal_type;
  Reply (*run)(const Call&, const json&);
};

constexpr std::array<Operation, 9> kOperations = {{
    {"AddJobFlowSteps", "InternalServerError", add_job_flow_steps},
    {"ListSteps", "InternalServerException", list_steps},
    {"DescribeStep", "InternalServerException", describe_step},
    {"CancelSteps", "InternalServerError", cancel_steps},
    {"DescribeCluster", "InternalServerException", describe_cluster},
    {"ListClusters", "InternalServerException", list_clusters},
    {"ModifyCluster", "InternalServerError", modify_cluster},
    {"ListInstanceGroups", "InternalServerException", list_instance_groups},
    {"ListBootstrapActions", "InternalServerException", list_bootstrap_actions},
}};

EmrResponse to_response(const Reply& r) {
  // Strings from the job store (paths, GDAL messages) may hold bytes that
  // are not UTF-8; replace them rather than fail the whole answer.
  return EmrResponse{r.status, r.body.dump(-1, ' ', false, json::error_handler_t::replace), r.type};
}

}  // namespace

std::string emr_cluster_id(const std::string& environment) {
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  // The lowest 13 base-36 digits of SHA-256("kiln-emr-cluster:" + name)
  // read as a number (67 bits: two names collide with odds of about 1 in
  // 10^20 per pair). Python gives the same id, for docs and scripts:
  //   n = int(hashlib.sha256(b"kiln-emr-cluster:" + name).hexdigest(), 16)
  //   "j-" + "".join(ALPHABET[n // 36**k % 36] for k in reversed(range(13)))
  const std::string hex = sha256_hex("kiln-emr-cluster:" + environment);
  std::vector<int> digits;  // the digest, base 16, most significant first
  for (char h : hex) digits.push_back(h <= '9' ? h - '0' : h - 'a' + 10);
  std::string id(13, '0');
  for (int i = 12; i >= 0; --i) {
    // Long division of the base-16 number by 36; the remainder is the digit.
    int remainder = 0;
    for (int& d : digits) {
      const int value = remainder * 16 + d;
      d = value / 36;
      remainder = value % 36;
    }
    id[static_cast<size_t>(i)] = kAlphabet[remainder];
  }
  return "j-" + id;
}

std::string emr_cluster_name(const std::string& environment) { return "kiln-" + environment; }

EmrApi::EmrApi(StepService& steps, const ServerConfig& config, const ListMarkers& markers)
    : steps_(steps),
      release_label_(config.emr_release_label),
      max_body_bytes_(static_cast<size_t>(config.max_body_bytes)),
      markers_(markers) {}

EmrResponse EmrApi::handle(const EnvironmentConfig& env, const std::string& target,
                           const std::string& body) const {
  const std::string_view prefix = kEmrTargetPrefix;
  const Operation* op = nullptr;
  if (target.compare(0, prefix.size(), prefix) == 0) {
    const std::string_view name = std::string_view(target).substr(prefix.size());
    for (const auto& o : kOperations) {
      if (o.name == name) op = &o;
    }
  }
  if (!op) {
    std::vector<std::string> names;
    for (const auto& o : kOperations) names.push_back(std::string(o.name));
    return to_response(error_reply(400, "UnknownOperationException",
                                   "X-Amz-Target '" + target +
                                       "' is not an operation this endpoint serves (" +
                                       std::string(prefix) + "{" + join(names) + "})"));
  }
  // AWS SDKs send "{}" for an empty input; an empty body means the same.
  json in = json::object();
  if (!body.empty()) {
    JsonError error;
    auto parsed = parse_json_strict(body, JsonLimits{max_body_bytes_, kMaxJsonDepth}, &error);
    if (!parsed.is_ok()) {
      // A number out of range is a bad value of a well-formed field; the
      // rest is a body that does not deserialize.
      return to_response(error.kind == JsonErrorKind::kNumberOutOfRange
                             ? validation_error("request body: " + error.message)
                             : serialization_error("request body: " + error.message));
    }
    in = std::move(parsed).value();
  }
  if (!in.is_object()) {
    return to_response(serialization_error(
        std::string("the request body must be a JSON object, not ") + json_kind(in)));
  }
  const std::string internal_type(op->internal_type);
  const Call call{steps_, env, release_label_, internal_type, emr_cluster_id(env.name), markers_};
  return to_response(op->run(call, in));
}

}  // namespace kiln::server
