#include "server/worker_api.h"

#include <algorithm>

#include "server/auth.h"
#include "server/http_util.h"

namespace kiln::server {

using json = nlohmann::json;
using http::Request;
using http::Response;

namespace {

json task_json(const cluster::LeasedTask& t) {
  json j = {{"task_id", t.task_id},
            {"attempt", t.attempt},
            {"step_id", t.step_id},
            {"spec", t.spec},
            {"log_path", t.log_path}};
  if (!t.sandbox.is_null()) j["sandbox"] = t.sandbox;
  return j;
}

bool valid_registration_key(const json& k) {
  if (!k.is_string()) return false;
  const std::string& s = k.get_ref<const std::string&>();
  if (s.size() < 8 || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
           c == '-';
  });
}

}  // namespace

void WorkerApi::install(http::Server& http) {
  http.Post("/internal/v1/register",
            [this](const Request& q, Response& r) { handle_register(q, r); });
  http.Post("/internal/v1/lease", [this](const Request& q, Response& r) { handle_lease(q, r); });
  http.Post("/internal/v1/claim", [this](const Request& q, Response& r) { handle_claim(q, r); });
  http.Post("/internal/v1/leave", [this](const Request& q, Response& r) { handle_leave(q, r); });
  http.Post("/internal/v1/heartbeat",
            [this](const Request& q, Response& r) { handle_heartbeat(q, r); });
  http.Post("/internal/v1/complete",
            [this](const Request& q, Response& r) { handle_complete(q, r); });
}

bool WorkerApi::authenticated(const Request& req, Response& res) const {
  const std::string token = bearer_token(req.get_header_value("Authorization"));
  if (token.empty() || token != token_) {
    send_error(res, 401, "unauthorized", "worker endpoints need the worker token");
    return false;
  }
  return true;
}

void WorkerApi::handle_register(const Request& req, Response& res) {
  if (!authenticated(req, res)) return;
  json body;
  if (!parse_body(req, res, &body)) return;
  // Optional (workers before issue 14 send none): the key a worker process
  // sends with each attempt, so that a retry is the same registration.
  std::string key;
  if (auto k = body.find("registration_key"); k != body.end()) {
    if (!valid_registration_key(*k)) {
      return send_error(res, 400, "bad_request",
                        "registration_key: 8 to 64 characters of [0-9A-Za-z_-]");
    }
    key = k->get<std::string>();
  }
  auto r = protocol_.register_worker(body.value("pid", int64_t{0}),
                                     body.value("host", std::string("local")),
                                     body.value("slots", 0), key);
  if (!r.is_ok()) return send_status(res, r.status());
  send_json(res, 200,
            {{"worker_id", r->worker_id},
             {"lease_seconds", r->lease_seconds},
             {"heartbeat_seconds", r->heartbeat_seconds},
             {"cancel_grace_seconds", r->cancel_grace_seconds}});
}

void WorkerApi::handle_lease(const Request& req, Response& res) {
  if (!authenticated(req, res)) return;
  json body;
  if (!parse_body(req, res, &body)) return;
  auto leased =
      protocol_.lease(body.value("worker_id", std::string()), body.value("free_slots", 0));
  if (!leased.is_ok()) return send_status(res, leased.status());
  json tasks = json::array();
  for (const auto& t : *leased) tasks.push_back(task_json(t));
  send_json(res, 200, {{"tasks", tasks}});
}

void WorkerApi::handle_claim(const Request& req, Response& res) {
  if (!authenticated(req, res)) return;
  json body;
  if (!parse_body(req, res, &body)) return;
  const json* step = body.contains("step_id") ? &body["step_id"] : nullptr;
  const json* index = body.contains("index") ? &body["index"] : nullptr;
  if (!step || !step->is_string() || !index || !index->is_number_integer()) {
    return send_error(res, 400, "invalid_request",
                      "claim needs step_id (string) and index (integer; -1: the commit task)");
  }
  auto c = protocol_.claim(body.value("worker_id", std::string()), step->get<std::string>(),
                           index->get<int64_t>());
  if (!c.is_ok()) return send_status(res, c.status());
  using Outcome = cluster::ClaimReply::Outcome;
  switch (c->outcome) {
    case Outcome::kLeased:
      return send_json(res, 200, {{"outcome", "leased"}, {"task", task_json(*c->task)}});
    case Outcome::kWait:
      return send_json(
          res, 200, {{"outcome", "wait"}, {"retry_after_ms", c->retry_after_ms}, {"why", c->why}});
    case Outcome::kDone:
      return send_json(res, 200, {{"outcome", "done"}, {"why", c->why}});
    case Outcome::kGone:
      return send_json(res, 200, {{"outcome", "gone"}, {"why", c->why}});
  }
}

void WorkerApi::handle_leave(const Request& req, Response& res) {
  if (!authenticated(req, res)) return;
  json body;
  if (!parse_body(req, res, &body)) return;
  Status st = protocol_.leave(body.value("worker_id", std::string()));
  if (!st.is_ok()) return send_status(res, st);
  send_json(res, 200, {{"left", true}});
}

void WorkerApi::handle_heartbeat(const Request& req, Response& res) {
  if (!authenticated(req, res)) return;
  json body;
  if (!parse_body(req, res, &body)) return;
  std::vector<store::JobStore::Heartbeat> beats;
  if (body.contains("tasks") && body["tasks"].is_array()) {
    for (const auto& t : body["tasks"]) {
      store::JobStore::Heartbeat h;
      h.task_id = t.value("task_id", int64_t{0});
      h.attempt = t.value("attempt", 0);
      h.tiles_done = t.value("tiles_done", int64_t{0});
      h.bytes_read = t.value("bytes_read", uint64_t{0});
      h.bytes_written = t.value("bytes_written", uint64_t{0});
      beats.push_back(h);
    }
  }
  auto r = protocol_.heartbeat(body.value("worker_id", std::string()), beats);
  if (!r.is_ok()) return send_status(res, r.status());
  json c = json::array();
  for (const auto& [task, sig] : r->cancel) c.push_back({{"task_id", task}, {"signal", sig}});
  send_json(res, 200, {{"cancel", c}, {"unknown", r->unknown}});
}

void WorkerApi::handle_complete(const Request& req, Response& res) {
  if (!authenticated(req, res)) return;
  json body;
  if (!parse_body(req, res, &body)) return;
  cluster::Completion c;
  c.worker_id = body.value("worker_id", std::string());
  c.step_id = body.value("step_id", std::string());
  c.task_id = body.value("task_id", int64_t{0});
  c.attempt = body.value("attempt", 0);
  c.ok = body.value("ok", false);
  c.result = body.value("result", json::object());
  if (body.contains("error") && body["error"].is_object()) {
    c.error.reason = body["error"].value("reason", std::string("TASK_FAILED"));
    c.error.message = body["error"].value("message", std::string());
  }
  auto taken = protocol_.complete(c);
  if (!taken.is_ok()) return send_status(res, taken.status());
  send_json(res, 200, {{"accepted", *taken}});
}

}  // namespace kiln::server
