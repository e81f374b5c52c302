#include "server/worker_api.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

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

// The fields of one worker request, read with their types checked: a
// missing field takes its default, a wrong-typed or out-of-range one is
// remembered (the first) and answered as a 400 naming it, never thrown.
class Fields {
 public:
  Fields(const json& object, std::string prefix) : o_(object), prefix_(std::move(prefix)) {
    if (!o_.is_object()) fail("", "an object");
  }

  std::string string(const char* name) {
    const json* v = find(name);
    if (!v) return {};
    if (!v->is_string()) return fail(name, "a string"), std::string();
    return v->get<std::string>();
  }
  int64_t integer(const char* name, int64_t min, int64_t max) {
    const json* v = find(name);
    if (!v) return 0;
    if (!v->is_number_integer()) return fail(name, "an integer"), 0;
    // An unsigned above int64's range reads as negative here: refused too.
    const int64_t n = v->is_number_unsigned() && v->get<uint64_t>() > uint64_t{INT64_MAX}
                          ? -1
                          : v->get<int64_t>();
    if (n < min || n > max) {
      return fail(name, "within " + std::to_string(min) + ".." + std::to_string(max)), 0;
    }
    return n;
  }
  bool boolean(const char* name) {
    const json* v = find(name);
    if (!v) return false;
    if (!v->is_boolean()) return fail(name, "true or false"), false;
    return v->get<bool>();
  }
  // Null when missing.
  const json* object(const char* name) {
    const json* v = find(name);
    if (v && !v->is_object()) return fail(name, "an object"), nullptr;
    return v;
  }
  const json* array(const char* name) {
    const json* v = find(name);
    if (v && !v->is_array()) return fail(name, "an array"), nullptr;
    return v;
  }

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  const json* find(const char* name) const {
    if (!o_.is_object()) return nullptr;
    auto it = o_.find(name);
    return it == o_.end() || it->is_null() ? nullptr : &*it;
  }
  void fail(const std::string& name, const std::string& want) {
    if (!error_.empty()) return;
    const std::string where = prefix_ + (prefix_.empty() || name.empty() ? "" : ".") + name;
    error_ = (where.empty() ? std::string("the body") : where) + ": must be " + want;
  }

  const json& o_;
  const std::string prefix_;
  std::string error_;
};

constexpr int64_t kMaxInt = INT32_MAX;

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
  Fields f(body, "");
  const int64_t pid = f.integer("pid", 0, INT64_MAX);
  std::string host = f.string("host");
  const int64_t slots = f.integer("slots", 0, kMaxInt);
  if (!f.ok()) return send_error(res, 400, "invalid_request", f.error());
  if (host.empty()) host = "local";
  // Optional (workers before issue 14 send none): the key a worker process
  // sends with each attempt, so that a retry is the same registration.
  std::string key;
  if (auto k = body.find("registration_key"); k != body.end()) {
    if (!valid_registration_key(*k)) {
      return send_error(res, 400, "invalid_request",
                        "registration_key: 8 to 64 characters of [0-9A-Za-z_-]");
    }
    key = k->get<std::string>();
  }
  auto r = protocol_.register_worker(pid, host, static_cast<int>(slots), key);
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
  Fields f(body, "");
  const std::string worker_id = f.string("worker_id");
  const int64_t free_slots = f.integer("free_slots", 0, kMaxInt);
  if (!f.ok()) return send_error(res, 400, "invalid_request", f.error());
  auto leased = protocol_.lease(worker_id, static_cast<int>(free_slots));
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
  Fields f(body, "");
  const std::string worker_id = f.string("worker_id");
  if (!f.ok()) return send_error(res, 400, "invalid_request", f.error());
  auto c = protocol_.claim(worker_id, step->get<std::string>(), index->get<int64_t>());
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
  Fields f(body, "");
  const std::string worker_id = f.string("worker_id");
  if (!f.ok()) return send_error(res, 400, "invalid_request", f.error());
  Status st = protocol_.leave(worker_id);
  if (!st.is_ok()) return send_status(res, st);
  send_json(res, 200, {{"left", true}});
}

void WorkerApi::handle_heartbeat(const Request& req, Response& res) {
  if (!authenticated(req, res)) return;
  json body;
  if (!parse_body(req, res, &body)) return;
  Fields f(body, "");
  const std::string worker_id = f.string("worker_id");
  std::vector<store::JobStore::Heartbeat> beats;
  if (const json* tasks = f.array("tasks")) {
    for (size_t i = 0; i < tasks->size(); ++i) {
      Fields t((*tasks)[i], "tasks[" + std::to_string(i) + "]");
      store::JobStore::Heartbeat h;
      h.task_id = t.integer("task_id", 0, INT64_MAX);
      h.attempt = static_cast<int>(t.integer("attempt", 0, kMaxInt));
      h.tiles_done = t.integer("tiles_done", 0, INT64_MAX);
      h.bytes_read = static_cast<uint64_t>(t.integer("bytes_read", 0, INT64_MAX));
      h.bytes_written = static_cast<uint64_t>(t.integer("bytes_written", 0, INT64_MAX));
      if (!t.ok()) return send_error(res, 400, "invalid_request", t.error());
      beats.push_back(h);
    }
  }
  if (!f.ok()) return send_error(res, 400, "invalid_request", f.error());
  auto r = protocol_.heartbeat(worker_id, beats);
  if (!r.is_ok()) return send_status(res, r.status());
  json c = json::array();
  for (const auto& [task, sig] : r->cancel) c.push_back({{"task_id", task}, {"signal", sig}});
  send_json(res, 200, {{"cancel", c}, {"unknown", r->unknown}});
}

void WorkerApi::handle_complete(const Request& req, Response& res) {
  if (!authenticated(req, res)) return;
  json body;
  if (!parse_body(req, res, &body)) return;
  Fields f(body, "");
  cluster::Completion c;
  c.worker_id = f.string("worker_id");
  c.step_id = f.string("step_id");
  c.task_id = f.integer("task_id", 0, INT64_MAX);
  c.attempt = static_cast<int>(f.integer("attempt", 0, kMaxInt));
  c.ok = f.boolean("ok");
  const json* result = f.object("result");
  c.result = result ? *result : json::object();
  if (const json* error = f.object("error")) {
    Fields e(*error, "error");
    c.error.reason = e.string("reason");
    c.error.message = e.string("message");
    // A worker from before the field says nothing: transient, retried.
    c.error.permanent = e.boolean("permanent");
    if (!e.ok()) return send_error(res, 400, "invalid_request", e.error());
    if (c.error.reason.empty()) c.error.reason = "TASK_FAILED";
  }
  if (!f.ok()) return send_error(res, 400, "invalid_request", f.error());
  auto taken = protocol_.complete(c);
  if (!taken.is_ok()) return send_status(res, taken.status());
  send_json(res, 200, {{"accepted", *taken}});
}

}  // namespace kiln::server
