// The workers' internal door (docs/cluster.md, "Worker protocol"):
// /internal/v1/{register,lease,heartbeat,complete,claim,leave}, for the
// worker token only. Translates JSON to cluster::WorkerProtocol calls and
// back; no state or logic of its own.
#pragma once

#include <string>

#include <httplib.h>

#include "cluster/worker_protocol.h"

namespace kiln::server {

class WorkerApi {
 public:
  // `protocol` must outlive this object.
  WorkerApi(cluster::WorkerProtocol& protocol, std::string worker_token)
      : protocol_(protocol), token_(std::move(worker_token)) {}

  void install(httplib::Server& http);

 private:
  bool authenticated(const httplib::Request& req, httplib::Response& res) const;

  void handle_register(const httplib::Request& req, httplib::Response& res);
  void handle_lease(const httplib::Request& req, httplib::Response& res);
  void handle_heartbeat(const httplib::Request& req, httplib::Response& res);
  void handle_complete(const httplib::Request& req, httplib::Response& res);
  // A batch task (Slurm) claims the task it was started for; a worker that
  // stops (preempted, cancelled) leaves, returning its leases at once.
  void handle_claim(const httplib::Request& req, httplib::Response& res);
  void handle_leave(const httplib::Request& req, httplib::Response& res);

  cluster::WorkerProtocol& protocol_;
  const std::string token_;
};

}  // namespace kiln::server
