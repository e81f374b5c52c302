#include "worker/server_client.h"

#include <httplib.h>

namespace kiln::worker {
namespace {

using nlohmann::json;

// Loopback: a server that takes longer than this to answer is as good as
// unreachable, and the worker must get back to its tasks' pipes.
constexpr int kConnectTimeoutSeconds = 2;
constexpr int kReadTimeoutSeconds = 5;

}  // namespace

ServerClient::ServerClient(const std::string& url, const std::string& token)
    : url_(url), client_(std::make_unique<httplib::Client>(url)) {
  client_->set_connection_timeout(kConnectTimeoutSeconds, 0);
  client_->set_read_timeout(kReadTimeoutSeconds, 0);
  client_->set_write_timeout(kReadTimeoutSeconds, 0);
  client_->set_bearer_token_auth(token);
  client_->set_keep_alive(true);
}

ServerClient::~ServerClient() = default;

Result<json> ServerClient::post(const std::string& path, const json& body) {
  auto res = client_->Post(path.c_str(), body.dump(), "application/json");
  if (!res) {
    return io_error("cannot reach the server at " + url_ + path + ": " +
                    httplib::to_string(res.error()));
  }
  const std::string what =
      "the server at " + url_ + path + " answered " + std::to_string(res->status);
  if (res->status >= 400 && res->status < 500) {
    return invalid_argument(what + ": " + res->body.substr(0, 300));
  }
  if (res->status < 200 || res->status >= 300) return io_error(what);
  json reply = json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (reply.is_discarded() || !reply.is_object()) {
    return io_error(what + " with a body that is not a JSON object");
  }
  return reply;
}

Result<Registration> ServerClient::register_worker(int64_t pid, int slots, const std::string& host,
                                                   const std::string& key) {
  json body = {{"pid", pid}, {"slots", slots}, {"host", host}};
  if (!key.empty()) body["registration_key"] = key;
  KILN_ASSIGN_OR_RETURN(json reply, post("/internal/v1/register", body));
  try {
    Registration r;
    r.worker_id = reply.at("worker_id").get<std::string>();
    r.lease_seconds = reply.value("lease_seconds", r.lease_seconds);
    r.heartbeat_seconds = reply.value("heartbeat_seconds", r.heartbeat_seconds);
    if (r.lease_seconds < 1 || r.heartbeat_seconds < 1) {
      return io_error("register: lease_seconds and heartbeat_seconds must be >= 1");
    }
    return r;
  } catch (const json::exception& e) {
    return io_error(std::string("register: unexpected reply: ") + e.what());
  }
}

namespace {

// One task of a lease or claim reply. Throws json::exception on a bad shape.
LeasedTask leased_task_from(const json& t) {
  LeasedTask lt;
  lt.task_id = t.at("task_id").get<int64_t>();
  lt.attempt = t.at("attempt").get<int>();
  lt.step_id = t.at("step_id").get<std::string>();
  lt.spec = t.at("spec");
  lt.log_path = t.at("log_path").get<std::string>();
  if (auto sb = t.find("sandbox"); sb != t.end()) lt.sandbox = *sb;
  return lt;
}

}  // namespace

Result<std::vector<LeasedTask>> ServerClient::lease(const std::string& worker_id, int free_slots) {
  KILN_ASSIGN_OR_RETURN(json reply, post("/internal/v1/lease",
                                         {{"worker_id", worker_id}, {"free_slots", free_slots}}));
  try {
    std::vector<LeasedTask> tasks;
    for (const json& t : reply.at("tasks")) tasks.push_back(leased_task_from(t));
    return tasks;
  } catch (const json::exception& e) {
    return io_error(std::string("lease: unexpected reply: ") + e.what());
  }
}

Result<HeartbeatReply> ServerClient::heartbeat(const std::string& worker_id,
                                               const std::vector<TaskProgress>& tasks) {
  json list = json::array();
  for (const TaskProgress& t : tasks) {
    list.push_back({{"task_id", t.task_id},
                    {"attempt", t.attempt},
                    {"tiles_done", t.tiles_done},
                    {"bytes_read", t.bytes_read},
                    {"bytes_written", t.bytes_written}});
  }
  KILN_ASSIGN_OR_RETURN(
      json reply, post("/internal/v1/heartbeat", {{"worker_id", worker_id}, {"tasks", list}}));
  try {
    HeartbeatReply r;
    if (auto it = reply.find("cancel"); it != reply.end() && !it->is_null()) {
      for (const json& c : *it) {
        r.cancel.emplace_back(c.at("task_id").get<int64_t>(), c.value("signal", "TERM"));
      }
    }
    if (auto it = reply.find("unknown"); it != reply.end() && !it->is_null()) {
      for (const json& u : *it) r.unknown.push_back(u.get<int64_t>());
    }
    return r;
  } catch (const json::exception& e) {
    return io_error(std::string("heartbeat: unexpected reply: ") + e.what());
  }
}

Status ServerClient::complete(const std::string& worker_id, const Completion& c) {
  json body = {
      {"worker_id", worker_id}, {"task_id", c.task_id}, {"attempt", c.attempt}, {"ok", c.ok}};
  if (!c.step_id.empty()) body["step_id"] = c.step_id;
  if (c.ok) {
    body["result"] = c.result;
  } else {
    body["error"] = {{"reason", c.reason}, {"message", c.message}, {"permanent", c.permanent}};
  }
  auto reply = post("/internal/v1/complete", body);
  return reply.is_ok() ? Status::ok() : reply.status();
}

Result<ClaimReply> ServerClient::claim(const std::string& worker_id, const std::string& step_id,
                                       int64_t index) {
  KILN_ASSIGN_OR_RETURN(json reply,
                        post("/internal/v1/claim",
                             {{"worker_id", worker_id}, {"step_id", step_id}, {"index", index}}));
  try {
    ClaimReply r;
    const std::string outcome = reply.at("outcome").get<std::string>();
    r.why = reply.value("why", std::string());
    if (outcome == "leased") {
      r.outcome = ClaimReply::Outcome::kLeased;
      r.task = leased_task_from(reply.at("task"));
    } else if (outcome == "wait") {
      r.outcome = ClaimReply::Outcome::kWait;
      r.retry_after = std::chrono::milliseconds(reply.value("retry_after_ms", int64_t{1000}));
    } else if (outcome == "done") {
      r.outcome = ClaimReply::Outcome::kDone;
    } else if (outcome == "gone") {
      r.outcome = ClaimReply::Outcome::kGone;
    } else {
      return io_error("claim: unexpected outcome '" + outcome + "'");
    }
    return r;
  } catch (const json::exception& e) {
    return io_error(std::string("claim: unexpected reply: ") + e.what());
  }
}

Status ServerClient::leave(const std::string& worker_id) {
  auto reply = post("/internal/v1/leave", {{"worker_id", worker_id}});
  return reply.is_ok() ? Status::ok() : reply.status();
}

}  // namespace kiln::worker
