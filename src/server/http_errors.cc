#include "server/http_errors.h"

#include <array>

namespace kiln::server {
namespace {

// Side by side, one row per StatusCode, in the enum's order. The first row
// with a given native code is the one status_code_for_native() returns.
constexpr std::array<HttpError, 10> kTable = {{
    {StatusCode::kOk, 200, "ok", nullptr},
    {StatusCode::kInvalidArgument, 400, "bad_request", "ValidationException"},
    {StatusCode::kInputError, 400, "bad_request", "ValidationException"},
    {StatusCode::kNotFound, 404, "not_found", "ValidationException"},
    {StatusCode::kEmpty, 400, "bad_request", "ValidationException"},
    {StatusCode::kIOError, 500, "internal", nullptr},
    {StatusCode::kCancelled, 500, "internal", nullptr},
    {StatusCode::kInternal, 500, "internal", nullptr},
    // 503: every AWS SDK retries it, which is right for a server that is
    // restarting (nothing was done).
    {StatusCode::kUnavailable, 503, "unavailable", "ServiceUnavailableException"},
    // A quota: 429 natively; EMR's JSON protocol sends ThrottlingException
    // with 400, which every AWS SDK backs off and retries.
    {StatusCode::kResourceExhausted, 429, "too_many_requests", "ThrottlingException", 400},
}};

}  // namespace

const HttpError& http_error(StatusCode code) {
  for (const HttpError& e : kTable) {
    if (e.code == code) return e;
  }
  return kTable[static_cast<size_t>(StatusCode::kInternal)];
}

StatusCode status_code_for_native(const std::string& native_code) {
  for (const HttpError& e : kTable) {
    if (native_code == e.native_code) return e.code;
  }
  return StatusCode::kInternal;
}

}  // namespace kiln::server
