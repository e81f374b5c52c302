#include "server/catalog_api.h"

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "catalog/catalog.h"
#include "common/log.h"
#include "server/authenticate.h"
#include "server/http_util.h"

namespace kiln::server {
namespace {

using json = nlohmann::json;
using http::Request;
using http::Response;

// The largest version number or keep count a request may name: version
// numbers are ints in the catalog.
constexpr int64_t kMaxNumber = std::numeric_limits<int>::max();

// Logs what was carried out, for the operator (dry runs change nothing).
void log_changes(const catalog::UpkeepReport& r) {
  if (r.dry_run) return;
  for (const auto& c : r.changes) {
    log::info("catalog of environment '" + r.environment +
              "': " + catalog::describe(c, false, true));
  }
}

// ?dry_run=true|false (also 1|0); false when absent. 400 otherwise.
bool query_dry_run(const Request& req, Response& res, bool* out) {
  *out = false;
  if (!req.has_param("dry_run")) return true;
  const std::string v = req.get_param_value("dry_run");
  if (v == "true" || v == "1") {
    *out = true;
  } else if (v != "false" && v != "0") {
    send_error(res, 400, "bad_request", "dry_run: must be true or false");
    return false;
  }
  return true;
}

// body["dry_run"], a boolean, ORed into *dry_run: a dry run asked for either
// way is a dry run.
bool body_dry_run(const json& body, Response& res, bool* dry_run) {
  auto it = body.find("dry_run");
  if (it == body.end()) return true;
  if (!it->is_boolean()) {
    send_error(res, 400, "bad_request", "dry_run: must be true or false");
    return false;
  }
  *dry_run = *dry_run || it->get<bool>();
  return true;
}

// An integer member within [lo, hi]; `what` describes it for the error.
bool int_member(const json& body, const char* key, int64_t lo, int64_t hi, const std::string& what,
                Response& res, std::optional<int>* out) {
  auto it = body.find(key);
  if (it == body.end()) return true;
  if (!it->is_number_integer() || it->get<int64_t>() < lo || it->get<int64_t>() > hi) {
    send_error(res, 400, "bad_request", std::string(key) + ": must be " + what);
    return false;
  }
  *out = static_cast<int>(it->get<int64_t>());
  return true;
}

// Opens the environment's catalog, as the config names it.
Result<catalog::Catalog> open_catalog(const EnvironmentConfig& env) {
  return catalog::Catalog::open(env.catalog, /*create=*/false);
}

// A busy layer's refusal: 409 conflict, naming the step.
void send_busy(Response& res, const EnvironmentConfig& env, const std::string& layer,
               const std::string& reason, const std::string& what) {
  send_error(res, 409, "conflict",
             "cannot " + what + " layer '" + layer + "' in environment '" + env.name +
                 "': " + reason + "; try again when it has ended");
}

// A catalog upkeep's failure. The catalog refuses a busy layer (an ingest
// of it in progress on disk) with kUnavailable, which is a 409 here like a
// busy step, not the 503 of a server that cannot serve: the layer can be
// tended once the ingest has ended. Every other code as http_errors.h maps it.
void send_upkeep_status(Response& res, const Status& s) {
  if (s.code() == StatusCode::kUnavailable) return send_error(res, 409, "conflict", s.message());
  send_status(res, s);
}

}  // namespace

void CatalogApi::install(http::Server& http) {
  http.Post("/v1/layers/prune", [this](const Request& q, Response& r) { handle_prune(q, r); });
  http.Delete(R"(/v1/layers/([^/]+))",
              [this](const Request& q, Response& r) { handle_remove(q, r); });
  http.Post(R"(/v1/layers/([^/]+)/rollback)",
            [this](const Request& q, Response& r) { handle_rollback(q, r); });
}

Result<std::map<std::string, std::string>> CatalogApi::busy_layers(const EnvironmentConfig& env) {
  std::map<std::string, std::string> busy;
  store::ListQuery q;
  q.states = {store::StepState::kPending, store::StepState::kRunning,
              store::StepState::kCancelPending};
  q.limit = 1000;
  q.with_action = false;
  while (true) {
    KILN_ASSIGN_OR_RETURN(store::ListPage page, d_.steps.list(env, q));
    for (const auto& s : page.steps) {
      // Newest first: a layer names its newest such step.
      busy.emplace(s.layer, "step " + s.id + " is " + store::step_state_name(s.state));
    }
    if (page.next_marker.empty()) break;
    q.marker = std::move(page.next_marker);
  }
  return busy;
}

// The shared end of remove and rollback: a valid layer name, no step of
// the layer in flight (409 naming it), then `change` on the environment's
// catalog, logged and answered with its report.
void CatalogApi::change_idle_layer(
    const EnvironmentConfig& env, const std::string& layer, const char* verb, Response& res,
    const std::function<Result<catalog::UpkeepReport>(const catalog::Catalog&, const std::string&)>&
        change) {
  if (Status st = catalog::validate_name("layer", layer); !st.is_ok()) {
    return send_status(res, st);
  }
  auto busy = busy_layers(env);
  if (!busy.is_ok()) return send_status(res, busy.status());
  if (auto it = busy->find(layer); it != busy->end()) {
    return send_busy(res, env, layer, it->second, verb);
  }
  auto cat = open_catalog(env);
  if (!cat.is_ok()) return send_status(res, cat.status());
  auto report = change(*cat, layer);
  if (!report.is_ok()) return send_upkeep_status(res, report.status());
  log_changes(*report);
  send_json(res, 200, catalog::to_json(*report, /*with_paths=*/false));
}

void CatalogApi::handle_remove(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate_request(
      req, res, Authenticator{d_.tokens, d_.config, d_.quotas, d_.sessions, d_.clock});
  if (!env) return;
  bool dry_run = false;
  if (!query_dry_run(req, res, &dry_run)) return;
  if (!req.body.empty()) {
    json body;
    if (!parse_body(req, res, &body, body_limit())) return;
    if (!only_known(res, body, {"dry_run"}, "")) return;
    if (!body_dry_run(body, res, &dry_run)) return;
  }
  change_idle_layer(*env, req.matches[1], "remove", res,
                    [&](const catalog::Catalog& cat, const std::string& layer) {
                      return cat.remove_layer(env->name, layer, dry_run);
                    });
}

void CatalogApi::handle_rollback(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate_request(
      req, res, Authenticator{d_.tokens, d_.config, d_.quotas, d_.sessions, d_.clock});
  if (!env) return;
  json body;
  if (!parse_body(req, res, &body, body_limit())) return;
  if (!only_known(res, body, {"to", "dry_run"}, "")) return;
  bool dry_run = false;
  if (!body_dry_run(body, res, &dry_run)) return;
  std::optional<int> to;
  const std::string what_to = "a version number, an integer 1-" + std::to_string(kMaxNumber);
  if (!int_member(body, "to", 1, kMaxNumber, what_to, res, &to)) return;
  if (!to) return send_error(res, 400, "bad_request", "to: required, " + what_to);
  change_idle_layer(*env, req.matches[1], "roll back", res,
                    [&](const catalog::Catalog& cat, const std::string& layer) {
                      return cat.rollback(env->name, layer, *to, dry_run);
                    });
}

void CatalogApi::handle_prune(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate_request(
      req, res, Authenticator{d_.tokens, d_.config, d_.quotas, d_.sessions, d_.clock});
  if (!env) return;
  json body = json::object();
  if (!req.body.empty() && !parse_body(req, res, &body, body_limit())) return;
  if (!only_known(res, body, {"keep", "layer", "dry_run"}, "")) return;
  catalog::PruneOptions o;
  if (!body_dry_run(body, res, &o.dry_run)) return;
  std::optional<int> keep;
  if (!int_member(body, "keep", 0, kMaxNumber, "an integer 0-" + std::to_string(kMaxNumber), res,
                  &keep)) {
    return;
  }
  if (keep) o.keep = *keep;
  if (auto it = body.find("layer"); it != body.end()) {
    if (!it->is_string()) return send_error(res, 400, "bad_request", "layer: must be a string");
    o.layer = it->get<std::string>();
  }
  auto busy = busy_layers(*env);
  if (!busy.is_ok()) return send_status(res, busy.status());
  o.busy = std::move(*busy);
  auto cat = open_catalog(*env);
  if (!cat.is_ok()) return send_status(res, cat.status());
  auto report = cat->prune(env->name, o);
  if (!report.is_ok()) return send_upkeep_status(res, report.status());
  log_changes(*report);
  send_json(res, 200, catalog::to_json(*report, /*with_paths=*/false));
}

}  // namespace kiln::server
