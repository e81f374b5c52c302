// Fuzz target for the EMR endpoint's request bodies (server/emr.h): the
// JSON 1.1 body of every operation, and through AddJobFlowSteps the step
// arguments (server/emr_args.h), as EmrApi::handle parses them after the
// signature has been checked.
//
// Input: the operation name ("AddJobFlowSteps"), a newline, the body.
//
// EmrApi answers over a StepService. Here that is an in-memory one holding a
// single RUNNING step of the fuzzed environment, so describe, list and
// cancel have something to find and submit answers as the store would
// (the job store and planner are not what is fuzzed, and a file system or
// SQLite per input would cost most of the executions).
//
// Refusals are expected. What is a finding: a crash or sanitizer report, an
// exception escaping handle() (the door would answer nothing), an answer
// that is not a JSON object or that has a 5xx status for what a tenant sent
// (the service never fails here, so any 5xx is the parser's), an error
// answer without its __type, and a submit that carries a definition that
// is not an absolute path.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "server/emr.h"

namespace {

using kiln::Result;
using kiln::Status;
using kiln::cluster::ClusterInfo;
using kiln::cluster::StepService;
using kiln::cluster::SubmitRequest;
using kiln::config::EnvironmentConfig;
using nlohmann::json;
namespace store = kiln::store;

constexpr char kStepId[] = "s-KILNFUZZ00001";

size_t g_checked = 0;  // calls answered 200

[[noreturn]] void fail(const std::string& what, std::string_view input) {
  std::fprintf(stderr, "kiln_fuzz_emr_body: %s\n  input: %.*s\n", what.c_str(),
               static_cast<int>(input.size()), input.data());
  std::abort();
}

store::Step running_step(const std::string& environment) {
  store::Step s;
  s.id = kStepId;
  s.seq = 1;
  s.environment = environment;
  s.name = "fuzz";
  s.state = store::StepState::kRunning;
  s.action_on_failure = "CONTINUE";
  s.action = {{"ingest_uri", "/srv/defs/fuzz.json"},
              {"emr",
               {{"Jar", "command-runner.jar"},
                {"Args", {"kiln", "ingest", "--definition", "/srv/defs/fuzz.json"}},
                {"Properties", json::object()}}}};
  s.created_ms = 1'700'000'000'000;
  s.started_ms = s.created_ms + 1000;
  s.layer = "fuzz";
  return s;
}

// The StepService contract (cluster/step_service.h) over one step, kept in
// memory; submit answers with a new PENDING step and keeps nothing.
class OneStepService final : public StepService {
 public:
  Result<store::Step> submit(const EnvironmentConfig& env, const SubmitRequest& req) override {
    store::Step s = running_step(env.name);
    s.id = "s-KILNFUZZ00002";
    s.state = store::StepState::kPending;
    s.name = req.name;
    s.action_on_failure = req.action_on_failure;
    s.action = {{"ingest_uri", req.definition_uri}, {"emr", req.emr_request}};
    last_definition_uri = req.definition_uri;
    return s;
  }
  Result<std::vector<store::Step>> submit_all(const EnvironmentConfig& env,
                                              const std::vector<SubmitRequest>& reqs,
                                              size_t* failed_index) override {
    *failed_index = kBatchFailed;
    std::vector<store::Step> out;
    for (const SubmitRequest& req : reqs) {
      KILN_ASSIGN_OR_RETURN(store::Step s, submit(env, req));
      out.push_back(std::move(s));
    }
    return out;
  }
  Result<store::Step> get(const EnvironmentConfig& env, const std::string& id) override {
    if (id != kStepId) return kiln::not_found("step " + id + " not found");
    return running_step(env.name);
  }
  Result<store::ListPage> list(const EnvironmentConfig& env, store::ListQuery q) override {
    store::ListPage page;
    if (!q.marker.empty()) return kiln::invalid_argument("marker " + q.marker + " not handed out");
    page.steps.push_back(running_step(env.name));
    return page;
  }
  Result<store::Step> cancel(const EnvironmentConfig& env, const std::string& id,
                             const std::string& signal) override {
    if (signal != "TERM" && signal != "KILL") return kiln::invalid_argument("signal " + signal);
    return get(env, id);
  }
  Result<ClusterInfo> cluster(const EnvironmentConfig&) override {
    ClusterInfo info;
    info.slots_total = 4;
    info.started_ms = 1'700'000'000'000;
    return info;
  }
  Status set_concurrency(const EnvironmentConfig&, int64_t concurrency) override {
    if (concurrency < 1 || concurrency > 256) return kiln::invalid_argument("concurrency");
    return Status::ok();
  }
  std::string log_location(const std::string& step_id) const override {
    return "/var/lib/kiln/logs/" + step_id + ".log";
  }

  std::string last_definition_uri;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    kiln::log::set_level(kiln::log::Level::kError);  // refused steps log warnings
    return true;
  }();
  (void)quiet;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t eol = input.find('\n');
  const std::string operation(input.substr(0, eol));
  const std::string body(eol == std::string_view::npos ? "" : input.substr(eol + 1));

  static const kiln::config::ServerConfig config;
  static EnvironmentConfig env = [] {
    EnvironmentConfig e;
    e.name = "production";
    e.catalog = "/srv/catalog";
    return e;
  }();
  OneStepService steps;
  const kiln::server::ListMarkers markers;
  const kiln::server::EmrApi api(steps, config, markers);
  const kiln::server::EmrResponse r =
      api.handle(env, std::string(kiln::server::kEmrTargetPrefix) + operation, body);

  if (r.http_status >= 500)
    fail("answered " + std::to_string(r.http_status) + ": " + r.body, input);
  const json answer = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (!answer.is_object()) fail("the answer is not a JSON object: " + r.body, input);
  if (r.http_status != 200) {
    if (r.error_type.empty() || !answer.contains("__type"))
      fail("an error answer without its __type: " + r.body, input);
    return 0;
  }
  if (!steps.last_definition_uri.empty() && steps.last_definition_uri.front() != '/')
    fail("submitted a definition that is not an absolute path: " + steps.last_definition_uri,
         input);
  ++g_checked;
  return 0;
}

extern "C" size_t kiln_fuzz_checked_count() { return g_checked; }
