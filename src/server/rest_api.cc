#include "server/rest_api.h"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "config/limits.h"
#include "http/deferred.h"
#include "server/authenticate.h"
#include "server/http_util.h"
#include "server/json_writer.h"
#include "server/step_json.h"

namespace kiln::server {

using json = nlohmann::json;
using http::Request;
using http::Response;

void RestApi::install(http::Server& http) {
  http.Get("/healthz", [](const Request&, Response& res) { send_json(res, 200, {{"ok", true}}); });
  http.Get("/readyz", [this](const Request&, Response& res) {
    if (d_.lifecycle.stopping()) return send_error(res, 503, "unavailable", "shutting down");
    send_json(res, 200, {{"ready", true}});
  });
  http.Get("/metrics", [this](const Request& q, Response& r) { handle_metrics(q, r); });
  http.Post("/v1/steps", [this](const Request& q, Response& r) { handle_submit(q, r); });
  http.Get("/v1/steps", [this](const Request& q, Response& r) { handle_list(q, r); });
  http.Get(R"(/v1/steps/([^/]+))",
           [this](const Request& q, Response& r) { handle_describe(q, r); });
  http.Post(R"(/v1/steps/([^/]+)/cancel)",
            [this](const Request& q, Response& r) { handle_cancel(q, r); });
  http.Get(R"(/v1/steps/([^/]+)/logs)",
           [this](const Request& q, Response& r) { handle_logs(q, r); });
  http.Get(R"(/v1/steps/([^/]+)/wait)",
           [this](const Request& q, Response& r) { handle_wait(q, r); });
  http.Get("/v1/cluster", [this](const Request& q, Response& r) { handle_cluster(q, r); });
  http.Post(R"(/v1/cluster/nodes/([^/]+)/interrupt)",
            [this](const Request& q, Response& r) { handle_interrupt(q, r); });
  http.Put("/v1/environment", [this](const Request& q, Response& r) { handle_environment(q, r); });
  http.Get("/v1/environment", [this](const Request& q, Response& r) { handle_environment(q, r); });
}

const EnvironmentConfig* RestApi::authenticate(const Request& req, Response& res) {
  return authenticate_request(
      req, res, Authenticator{d_.tokens, d_.config, d_.quotas, d_.sessions, d_.clock});
}

void RestApi::handle_submit(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate(req, res);
  if (!env) return;
  if (d_.lifecycle.stopping()) {
    return send_status(res, unavailable("the server is shutting down"));
  }
  json body;
  if (!parse_body(req, res, &body, body_limit())) return;
  if (!only_known(res, body, {"name", "action", "action_on_failure"}, "")) return;

  std::string name;
  if (body.contains("name")) {
    if (!body["name"].is_string() || body["name"].get<std::string>().empty() ||
        body["name"].get<std::string>().size() > config::kMaxStepNameLength) {
      return send_error(res, 400, "bad_request",
                        "name: must be a string of 1-" +
                            std::to_string(config::kMaxStepNameLength) + " characters");
    }
    name = body["name"].get<std::string>();
  }
  std::string aof = "CONTINUE";
  if (body.contains("action_on_failure")) {
    if (!body["action_on_failure"].is_string()) {
      return send_error(res, 400, "bad_request", "action_on_failure: must be a string");
    }
    aof = body["action_on_failure"].get<std::string>();
  }
  if (!body.contains("action") || !body["action"].is_object() || body["action"].size() != 1) {
    return send_error(res, 400, "bad_request",
                      "action: required, an object with exactly one of 'ingest' (an ingest "
                      "definition) or 'ingest_uri' (file:///path/to/definition.json)");
  }
  json& action = body["action"];
  if (!only_known(res, action, {"ingest", "ingest_uri"}, "action: ")) return;
  SubmitRequest sr;
  sr.name = name;
  sr.action_on_failure = aof;
  if (action.contains("ingest")) {
    // Moved, not copied: the strict reader bounded its depth, and a copy
    // of a large definition is work for nothing.
    sr.definition = std::move(action["ingest"]);
  } else {
    if (!action["ingest_uri"].is_string()) {
      return send_error(res, 400, "bad_request", "action.ingest_uri: must be a string");
    }
    sr.definition_uri = action["ingest_uri"].get<std::string>();
  }
  auto step = d_.steps.submit(*env, sr);
  if (!step.is_ok()) return send_status(res, step.status());
  send_json_text(res, 201, step_text(*step, d_.steps.log_location(step->id), d_.clock.now_ms()));
}

void RestApi::handle_list(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate(req, res);
  if (!env) return;
  store::ListQuery q;
  q.environment = env->name;
  if (req.has_param("state")) {
    for (const auto& s : split_commas(req.get_param_value("state"))) {
      auto st = store::parse_step_state(s);
      if (!st.is_ok())
        return send_error(res, 400, "bad_request", "state: " + st.status().message());
      q.states.push_back(*st);
    }
  }
  if (req.has_param("id")) q.ids = split_commas(req.get_param_value("id"));
  if (req.has_param("limit")) {
    int64_t limit = 0;
    if (!parse_int(req.get_param_value("limit"), 1, config::kMaxListLimit, &limit)) {
      return send_error(res, 400, "bad_request",
                        "limit: must be an integer 1-" + std::to_string(config::kMaxListLimit));
    }
    q.limit = static_cast<int>(limit);
  }
  if (req.has_param("marker")) {
    auto cursor = d_.markers.open(env->name, req.get_param_value("marker"));
    if (!cursor.is_ok()) return send_status(res, cursor.status());
    q.marker = *cursor;
  }
  q.with_action = false;  // the list shows summaries
  auto page = d_.steps.list(*env, q);
  if (!page.is_ok()) return send_status(res, page.status());
  std::string out;
  out.reserve(page->steps.size() * 640 + 64);
  JsonWriter w(&out);
  w.begin_object().key("steps").begin_array();
  const int64_t now = d_.clock.now_ms();
  for (const auto& s : page->steps) {
    write_step(w, s, d_.steps.log_location(s.id), /*with_action=*/false, now);
  }
  w.end_array().key("next_marker");
  if (page->next_marker.empty()) {
    w.null();
  } else {
    w.value(d_.markers.seal(env->name, page->next_marker));
  }
  w.end_object();
  send_json_text(res, 200, std::move(out));
}

void RestApi::handle_describe(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate(req, res);
  if (!env) return;
  auto step = d_.steps.get(*env, req.matches[1]);
  if (!step.is_ok()) return send_status(res, step.status());
  send_json_text(res, 200, step_text(*step, d_.steps.log_location(step->id), d_.clock.now_ms()));
}

void RestApi::handle_cancel(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate(req, res);
  if (!env) return;
  std::string signal = "TERM";
  if (!req.body.empty()) {
    json body;
    if (!parse_body(req, res, &body, body_limit())) return;
    if (!only_known(res, body, {"signal"}, "")) return;
    if (body.contains("signal")) {
      if (!body["signal"].is_string() || (body["signal"] != "TERM" && body["signal"] != "KILL")) {
        return send_error(res, 400, "bad_request", "signal: must be \"TERM\" or \"KILL\"");
      }
      signal = body["signal"].get<std::string>();
    }
  }
  auto step = d_.steps.cancel(*env, req.matches[1], signal);
  if (!step.is_ok()) return send_status(res, step.status());
  send_json_text(res, 200, step_text(*step, d_.steps.log_location(step->id), d_.clock.now_ms()));
}

void RestApi::handle_logs(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate(req, res);
  if (!env) return;
  int64_t offset = 0;
  if (req.has_param("offset") && !parse_int(req.get_param_value("offset"), 0, INT64_MAX, &offset)) {
    return send_error(res, 400, "bad_request", "offset: must be a non-negative integer");
  }
  auto chunk = d_.steps.read_log(*env, req.matches[1], offset, config::kMaxLogChunkBytes);
  if (!chunk.is_ok()) return send_status(res, chunk.status());
  res.set_header("X-Kiln-Log-Offset", std::to_string(chunk->next_offset));
  res.status = 200;
  res.set_content(chunk->text, "text/plain; charset=utf-8");
}

void RestApi::handle_wait(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate(req, res);
  if (!env) return;
  int64_t timeout = config::kDefaultWaitSeconds;
  if (req.has_param("timeout") &&
      !parse_int(req.get_param_value("timeout"), 0, config::kMaxWaitSeconds, &timeout)) {
    return send_error(res, 400, "bad_request",
                      "timeout: must be 0-" + std::to_string(config::kMaxWaitSeconds) + " seconds");
  }
  auto step = d_.steps.get(*env, req.matches[1]);
  if (!step.is_ok()) return send_status(res, step.status());
  if (store::is_terminal(step->state) || timeout == 0) {
    return send_json_text(res, 200,
                          step_text(*step, d_.steps.log_location(step->id), d_.clock.now_ms()));
  }
  // The request waits suspended, holding no thread; StepWaiters answers it
  // when the step ends, at the timeout, or at shutdown.
  std::shared_ptr<http::Deferred> answer = res.suspend();
  d_.waiters.add(
      *env, step->id, d_.clock.now_ms() + timeout * 1000,
      [this, answer](Result<store::Step> s) {
        Response r;
        if (!s.is_ok()) {
          send_status(r, s.status());
        } else {
          send_json_text(r, 200, step_text(*s, d_.steps.log_location(s->id), d_.clock.now_ms()));
        }
        answer->complete(std::move(r));
      },
      [answer] { return answer->abandoned(); });
}

void RestApi::handle_cluster(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate(req, res);
  if (!env) return;
  auto c = d_.steps.cluster(*env);
  if (!c.is_ok()) return send_status(res, c.status());
  json ws = json::array();
  for (const auto& w : c->workers) {
    ws.push_back({{"id", w.id},
                  {"pid", w.pid},
                  {"host", w.host},
                  {"slots", w.slots},
                  {"busy", w.busy},
                  {"last_seen_at", rfc3339(w.last_seen_ms)}});
  }
  const int64_t free = c->slots_total - c->slots_busy;
  send_json(res, 200,
            {{"workers", ws},
             {"slots",
              {{"total", c->slots_total},
               {"busy", c->slots_busy},
               {"free", free},
               {"free_percent", c->slots_total ? 100.0 * free / c->slots_total : 0.0}}},
             {"environment",
              {{"name", env->name},
               {"concurrency", c->concurrency},
               {"priority", c->priority},
               {"queued_tasks", c->queued_tasks}}},
             {"accepting_steps", c->accepting_steps},
             {"elastic", d_.elastic.to_json(d_.clock.now_ms())}});
}

void RestApi::handle_interrupt(const Request& req, Response& res) {
  const std::string token = bearer_token(req.get_header_value("Authorization"));
  if (token.empty()) {
    return send_error(res, 401, "unauthorized", "missing 'Authorization: Bearer <token>' header");
  }
  if (!d_.tokens.is_operator(token)) {
    // An environment's token may not take capacity from the others.
    return send_error(
        res, 403, "forbidden",
        "interrupting a node needs an operator token ([operator] token_sha256 in the config)");
  }
  int64_t notice_ms = -1;
  if (!req.body.empty()) {
    json body;
    if (!parse_body(req, res, &body, body_limit())) return;
    if (!only_known(res, body, {"notice_seconds"}, "")) return;
    if (body.contains("notice_seconds")) {
      if (!body["notice_seconds"].is_number() || body["notice_seconds"].get<double>() < 0 ||
          body["notice_seconds"].get<double>() > 3600) {
        return send_error(res, 400, "bad_request", "notice_seconds: must be a number 0-3600");
      }
      notice_ms = static_cast<int64_t>(body["notice_seconds"].get<double>() * 1000);
    }
  }
  Status st = d_.elastic.interrupt(req.matches[1], notice_ms, d_.clock.now_ms());
  if (!st.is_ok()) return send_status(res, st);
  send_json(res, 200, {{"node", std::string(req.matches[1])}, {"interrupted", true}});
}

void RestApi::handle_environment(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate(req, res);
  if (!env) return;
  if (req.method == "PUT") {
    json body;
    if (!parse_body(req, res, &body, body_limit())) return;
    if (!only_known(res, body, {"concurrency"}, "")) return;
    if (!body.contains("concurrency") || !body["concurrency"].is_number_integer()) {
      return send_error(res, 400, "bad_request",
                        "concurrency: must be an integer " +
                            std::to_string(config::kMinConcurrency) + "-" +
                            std::to_string(config::kMaxConcurrency));
    }
    Status set = d_.steps.set_concurrency(*env, body["concurrency"].get<int64_t>());
    if (!set.is_ok()) return send_status(res, set);
  }
  auto p = d_.steps.policy(*env);
  if (!p.is_ok()) return send_status(res, p.status());
  // plan_threads: how many slots this server cuts an ingest's partitions
  // for, so `kiln plan --server` shows the partitions a step will get.
  send_json(res, 200,
            {{"name", env->name},
             {"concurrency", p->concurrency},
             {"priority", p->priority},
             {"plan_threads", cluster::plan_threads_for(d_.config)}});
}

void RestApi::handle_metrics(const Request& req, Response& res) {
  if (d_.tokens.metrics_need_token() &&
      !d_.tokens.may_read_metrics(bearer_token(req.get_header_value("Authorization")))) {
    res.set_header("WWW-Authenticate", "Bearer");
    return send_error(res, 401, "unauthorized",
                      "/metrics needs 'Authorization: Bearer <token>' with a token whose SHA-256 "
                      "is in [server] metrics_token_sha256");
  }
  auto stats = d_.steps.stats();
  if (!stats.is_ok()) return send_status(res, stats.status());
  if (d_.config.environments.empty()) return send_error(res, 500, "internal", "no environment");
  // The cluster's workers are the same whichever environment asks.
  auto cluster = d_.steps.cluster(d_.config.environments.front());
  if (!cluster.is_ok()) return send_status(res, cluster.status());
  std::string out;
  metric_header(&out, "kiln_steps", "gauge", "Steps by environment and state.");
  for (const auto& e : d_.config.environments) {
    for (const char* st : {"PENDING", "RUNNING", "COMPLETED", "CANCEL_PENDING", "CANCELLED",
                           "FAILED", "INTERRUPTED"}) {
      int64_t n = 0;
      auto it = stats->steps_by_env_state.find(e.name);
      if (it != stats->steps_by_env_state.end()) {
        auto jt = it->second.find(st);
        if (jt != it->second.end()) n = jt->second;
      }
      metric_sample(&out, "kiln_steps", {{"environment", e.name}, {"state", st}},
                    static_cast<double>(n));
    }
  }
  metric_header(&out, "kiln_tasks", "gauge", "Tasks waiting for a slot and running.");
  metric_sample(&out, "kiln_tasks", {{"state", "pending"}},
                static_cast<double>(stats->tasks_pending));
  metric_sample(&out, "kiln_tasks", {{"state", "running"}},
                static_cast<double>(stats->tasks_leased));
  const int64_t total = cluster->slots_total, busy = cluster->slots_busy;
  metric_header(&out, "kiln_workers", "gauge", "Live workers.");
  metric_sample(&out, "kiln_workers", {}, static_cast<double>(cluster->workers.size()));
  metric_header(&out, "kiln_slots", "gauge", "Task slots of the live workers.");
  metric_sample(&out, "kiln_slots", {}, static_cast<double>(total));
  metric_header(&out, "kiln_slots_busy", "gauge", "Task slots running a task.");
  metric_sample(&out, "kiln_slots_busy", {}, static_cast<double>(busy));
  metric_header(&out, "kiln_slots_free_percent", "gauge", "Free task slots, percent of all.");
  metric_sample(&out, "kiln_slots_free_percent", {},
                total ? 100.0 * static_cast<double>(total - busy) / total : 0.0);
  metric_header(&out, "kiln_lease_expiries_total", "counter", "Task leases that lapsed.");
  metric_sample(&out, "kiln_lease_expiries_total", {}, static_cast<double>(stats->lease_expiries));
  metric_header(&out, "kiln_task_retries_total", "counter",
                "Task attempts retried after a failure.");
  metric_sample(&out, "kiln_task_retries_total", {}, static_cast<double>(stats->task_retries));
  metric_header(&out, "kiln_tiles_written_total", "counter",
                "Tiles of the layer versions committed since this server started.");
  metric_sample(&out, "kiln_tiles_written_total", {},
                static_cast<double>(d_.workers.tiles_written()));
  metric_header(&out, "kiln_http_requests_total", "counter", "HTTP requests served.");
  metric_sample(&out, "kiln_http_requests_total", {},
                static_cast<double>(d_.counters.http_requests.load()));
  metric_header(&out, "kiln_scheduler_passes_total", "counter",
                "Scheduler passes completed (each expires leases, starts and cancels steps).");
  metric_sample(&out, "kiln_scheduler_passes_total", {},
                static_cast<double>(d_.scheduler.passes()));
  metric_header(&out, "kiln_step_start_latency_seconds", "histogram",
                "Time from a step's submission to RUNNING.");
  d_.counters.start_latency.render("kiln_step_start_latency_seconds", &out);
  out += d_.elastic.metrics(d_.clock.now_ms());
  res.status = 200;
  res.set_content(out, "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace kiln::server
