// The workers' internal door (docs/cluster.md, "Worker protocol"):
// /internal/v1/{register,lease,heartbeat,complete,claim,leave}, for the
// worker token only. Translates JSON to cluster::WorkerProtocol calls and
// back; no state or logic of its own.
#pragma once

#include <string>

#include "cluster/worker_protocol.h"
#include "http/server.h"

namespace kiln::server {

class WorkerApi {
 public:
  // `protocol` must outlive this object.
  WorkerApi(cluster::WorkerProtocol& protocol, std::string worker_token)
      : protocol_(protocol), token_(std::move(worker_token)) {}

  void install(http::Server& http);

 private:
  bool authenticated(const http::Request& req, http::Response& res) const;

  void handle_register(const http::Request& req, http::Response& res);
  void handle_lease(const http::Request& req, http::Response& res);
  void handle_heartbeat(const http::Request& req, http::Response& res);
  void handle_complete(const http::Request& req, http::Response& res);
  // A batch task (Slurm) claims the task it was started for; a worker that
  // stops (preempted, cancelled) leaves, returning its leases at once.
  void handle_claim(const http::Request& req, http::Response& res);
  void handle_leave(const http::Request& req, http::Response& res);

  cluster::WorkerProtocol& protocol_;
  const std::string token_;
};

}  // namespace kiln::server
