#include "server/emr_door.h"

#include <chrono>
#include <cstdio>

namespace kiln::server {
namespace {

using json = nlohmann::json;

std::vector<SigV4Key> keys_of(const ServerConfig& config) {
  std::vector<SigV4Key> keys;
  for (const auto& e : config.environments)
    for (const auto& k : e.aws_keys) keys.push_back({k.access_key_id, k.secret_access_key, e.name});
  return keys;
}

// Whether an EMR operation may change state: all but EMR's reads
// (Describe*, List*, Get*), so an operation added later is replay-checked
// until someone decides otherwise. Reads are not: botocore signs with
// one-second resolution and no nonce, so a client polling faster than once
// a second sends byte-identical reads (docs/emr.md).
bool changes_state(std::string_view target) {
  const std::string_view op = target.substr(std::string_view(kEmrTargetPrefix).size());
  for (std::string_view read : {"Describe", "List", "Get"})
    if (op.substr(0, read.size()) == read) return false;
  return true;
}

}  // namespace

EmrDoor::EmrDoor(StepService& steps, const ServerConfig& config, EnvironmentQuotas& quotas,
                 const ListMarkers& markers)
    : config_(config),
      sigv4_(keys_of(config), config.emr_regions),
      replays_(sigv4_.max_skew()),
      limiter_(config.emr_requests_per_second, config.emr_burst),
      quotas_(quotas),
      api_(steps, config, markers) {}

void EmrDoor::install(http::Server& http) {
  http.Post("/", [this](const kiln::http::Request& q, kiln::http::Response& r) { handle(q, r); });
}

void EmrDoor::handle(const http::Request& req, http::Response& res) {
  // A request id per call, as AWS sends: clients log it with errors. It is
  // the front door's (random) id of the request, the one the log names.
  res.set_header("x-amzn-RequestId", req.request_id);
  auto emr_error = [&res](int status, const std::string& type, const std::string& message) {
    res.status = status;
    res.set_content(json{{"__type", type}, {"Message", message}}.dump(), kEmrContentType);
  };
  const std::string target = req.get_header_value("X-Amz-Target");
  if (target.rfind(kEmrTargetPrefix, 0) != 0) {
    return emr_error(400, "UnknownOperationException",
                     "X-Amz-Target must be ElasticMapReduce.<Operation>; got '" + target + "'");
  }
  SigV4Request sr;
  sr.method = req.method;
  const auto q = req.target.find('?');
  sr.path = q == std::string::npos ? req.target : req.target.substr(0, q);
  sr.query = q == std::string::npos ? "" : req.target.substr(q + 1);
  for (const auto& [k, v] : req.headers) sr.headers.emplace_back(k, v);
  sr.body = req.body;
  const auto now = std::chrono::system_clock::now();
  const SigV4Result auth = sigv4_.verify(sr, now);
  if (!auth.ok()) {
    return emr_error(auth.error().http_status, auth.error().type, auth.error().message);
  }
  // A replay is refused before it costs the key a token; a throttled call
  // gives its signature back, so botocore's retry within the second works.
  const bool once = changes_state(target);
  if (once) {
    if (auto replay = replays_.claim(auth.accepted(), now))
      return emr_error(replay->http_status, replay->type, replay->message);
  }
  if (!limiter_.allow(auth.key().access_key_id)) {
    if (once) replays_.release(auth.accepted());
    return emr_error(400, "ThrottlingException", "Rate exceeded");
  }
  const EnvironmentConfig* env = config_.environment(auth.key().environment);
  if (!env) return emr_error(500, "InternalServerException", "credentials map to no environment");
  if (Status quota = quotas_.take_request(*env); !quota.is_ok()) {
    if (once) replays_.release(auth.accepted());
    return emr_error(400, "ThrottlingException", quota.message());
  }
  const EmrResponse r = api_.handle(*env, target, req.body);
  // Throttled inside (max_pending_steps): nothing was done, and botocore
  // retries with the same signature within the second.
  if (once && r.error_type == "ThrottlingException") replays_.release(auth.accepted());
  res.status = r.http_status;
  res.set_content(r.body, kEmrContentType);
}

}  // namespace kiln::server
