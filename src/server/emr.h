// The Amazon EMR Step API (JSON 1.1 protocol) over StepService, so awscli,
// boto3 and Airflow's EMR operators drive Kiln unchanged. Request and
// response shapes follow botocore's EMR service model
// (botocore/data/emr/2009-03-31/service-2.json).
//
// Each environment appears as one cluster of its own: id emr_cluster_id(),
// name "kiln-<environment>", backed by the shared worker pool. A cluster or
// step id of another environment answers exactly like one that never
// existed.
//
// Operations: AddJobFlowSteps, ListSteps, DescribeStep, CancelSteps,
// DescribeCluster, ListClusters, ModifyCluster, and ListInstanceGroups /
// ListBootstrapActions (both empty) so `aws emr describe-cluster` works.
// What a step may run: server/emr_args.h.
#pragma once

#include <cstddef>
#include <string>

#include "server/core_names.h"
#include "server/list_marker.h"

namespace kiln::server {

// "ElasticMapReduce." + operation is the X-Amz-Target of every EMR call.
inline constexpr char kEmrTargetPrefix[] = "ElasticMapReduce.";
inline constexpr char kEmrContentType[] = "application/x-amz-json-1.1";

// "j-" and 13 characters of [0-9A-Z] (EMR's shape) derived from the
// SHA-256 of the environment name: the same id on every server and restart,
// so a client can keep it in its configuration.
std::string emr_cluster_id(const std::string& environment);
// "kiln-<environment>": what ListClusters and DescribeCluster call it.
std::string emr_cluster_name(const std::string& environment);

struct EmrResponse {
  int http_status = 200;
  std::string body;        // JSON
  std::string error_type;  // the body's "__type"; empty on success
};

class EmrApi {
 public:
  // `steps` must outlive this object. Thread-safe when `steps` is: handle()
  // keeps no state between calls.
  // `markers` (ListSteps' Marker) must outlive this object.
  EmrApi(StepService& steps, const ServerConfig& config, const ListMarkers& markers);

  // Answers one call. The caller has authenticated it (SigV4) and resolved
  // `env` from the credentials; it sends the result with Content-Type
  // kEmrContentType and an x-amzn-RequestId header. `target` is the
  // X-Amz-Target header value, `body` the request body.
  //
  // Errors: UnknownOperationException (400), SerializationException (400:
  // malformed JSON, a field of the wrong type), ValidationException (400: a
  // missing or unknown field, a value out of range, a step Kiln does not
  // run), InvalidRequestException (400: a cluster or step id this
  // environment does not have, a bad Marker), ServiceUnavailableException
  // (503: the server is shutting down), InternalServerException or
  // InternalServerError as the operation's model names it (500).
  EmrResponse handle(const EnvironmentConfig& env, const std::string& target,
                     const std::string& body) const;

 private:
  StepService& steps_;
  std::string release_label_;
  size_t max_body_bytes_;
  const ListMarkers& markers_;  // ListSteps' Marker
};

}  // namespace kiln::server
