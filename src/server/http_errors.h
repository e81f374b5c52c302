// The one table from a Status code to what each door answers: the HTTP
// status, the native API's error code ({"error": {"code": ...}}) and the
// EMR endpoint's error type ("__type"). Every door (REST, EMR, the workers'
// internal one) and the CLI reading the native API's errors go through it,
// so a code cannot mean 400 at one door and 500 at another.
#pragma once

#include <string>

#include "common/status.h"

namespace kiln::server {

struct HttpError {
  StatusCode code;
  int http_status;
  const char* native_code;  // "bad_request", "not_found", ...
  // EMR's "__type"; nullptr: the operation's own modelled server error
  // (InternalServerError or InternalServerException, by operation).
  const char* emr_type;
  // The EMR endpoint's HTTP status when it differs from http_status (0: the same).
  int emr_http_status = 0;
};

// The row for `code` (kOk maps to 200 and is never sent as an error).
const HttpError& http_error(StatusCode code);

// The Status code a native error code stands for (the CLI reads replies
// through this); kInternal for codes it does not know.
StatusCode status_code_for_native(const std::string& native_code);

}  // namespace kiln::server
