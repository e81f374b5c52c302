// The worker's side of the worker protocol (docs/cluster.md, "Worker
// protocol"): register, lease, heartbeat, complete, as JSON over HTTP on
// loopback with the worker token.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace httplib {
class Client;
}

namespace kiln::worker {

struct Registration {
  std::string worker_id;
  int lease_seconds = 15;
  int heartbeat_seconds = 2;
};

struct LeasedTask {
  int64_t task_id = 0;
  int attempt = 0;
  std::string step_id;
  nlohmann::json spec;  // what `kiln task run --spec` reads
  std::string log_path;
  // How to sandbox it (sandbox::policy_to_json plus "source_roots"); null
  // from a server that sends none.
  nlohmann::json sandbox;
};

struct TaskProgress {
  int64_t task_id = 0;
  int attempt = 0;
  int64_t tiles_done = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
};

struct HeartbeatReply {
  std::vector<std::pair<int64_t, std::string>> cancel;  // task id, "TERM" | "KILL"
  std::vector<int64_t> unknown;                         // leases no longer held
};

struct Completion {
  int64_t task_id = 0;
  int attempt = 0;
  std::string step_id;  // for the server's step log; not part of the lease key
  bool ok = false;
  nlohmann::json result;  // when ok
  std::string reason;     // when not ok
  std::string message;
  bool permanent = false;  // another attempt would fail the same way: do not retry
};

// The reply to a claim of one named task (a batch task asking for the task
// it was started for).
struct ClaimReply {
  enum class Outcome { kLeased, kWait, kDone, kGone };
  Outcome outcome = Outcome::kWait;
  LeasedTask task;                           // kLeased
  std::chrono::milliseconds retry_after{0};  // kWait
  std::string why;                           // kWait, kGone: the server's reason
};

// Errors: kIOError when the server cannot be reached or fails (5xx, a reply
// that is not the expected JSON): worth retrying. kInvalidArgument when it
// refuses the request (4xx: a wrong token, a worker it no longer knows):
// retrying will not help. Not thread-safe: one worker thread uses it.
class ServerClient {
 public:
  // `url`: "http://127.0.0.1:PORT".
  ServerClient(const std::string& url, const std::string& token);
  ~ServerClient();

  // `key`: this process's registration key (the same on every attempt), so
  // the server turns a retry whose first answer was lost into the same
  // registration; empty: none sent.
  Result<Registration> register_worker(int64_t pid, int slots, const std::string& host,
                                       const std::string& key);
  Result<std::vector<LeasedTask>> lease(const std::string& worker_id, int free_slots);
  Result<HeartbeatReply> heartbeat(const std::string& worker_id,
                                   const std::vector<TaskProgress>& tasks);
  Status complete(const std::string& worker_id, const Completion& c);
  // Leases task `index` of `step_id` (-1: its commit task), if it can run.
  Result<ClaimReply> claim(const std::string& worker_id, const std::string& step_id, int64_t index);
  // The worker stops for good: the server returns its leases at once.
  Status leave(const std::string& worker_id);

 private:
  Result<nlohmann::json> post(const std::string& path, const nlohmann::json& body);

  std::string url_;
  std::unique_ptr<httplib::Client> client_;
};

}  // namespace kiln::worker
