// Fuzz target for the native API's request bodies (server/http_util.h):
// parse_body, which every JSON body of the REST door (/v1/steps,
// /v1/steps/{id}/cancel, /v1/environment) and the worker door goes
// through, and only_known, which each handler applies to what it parsed.
//
// Input: the body bytes. They are handed over as the HTTP server hands
// them, in a Request whose body they are.
//
// Refusals are expected: a 400 with {"error": {"code", "message"}}. What is
// a finding: a crash or sanitizer report (issue 14's 100,000-level nesting
// killed the server in a copy of the parsed value, so the target copies
// it as the submit handler does), an exception escaping, a refusal that is
// not a 400 with that shape, and an accepted body that is not an object.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "http/message.h"
#include "server/http_util.h"

namespace {

using nlohmann::json;

size_t g_checked = 0;  // bodies accepted

[[noreturn]] void fail(const std::string& what, std::string_view input) {
  std::fprintf(stderr, "kiln_fuzz_native_body: %s\n  input: %.*s\n", what.c_str(),
               static_cast<int>(input.size()), input.data());
  std::abort();
}

void check_refusal(const kiln::http::Response& res, std::string_view input) {
  if (res.status != 400) fail("refused with status " + std::to_string(res.status), input);
  const json answer = json::parse(res.body, nullptr, /*allow_exceptions=*/false);
  if (!answer.is_object() || !answer.contains("error") || !answer["error"].is_object() ||
      !answer["error"].contains("code") || !answer["error"].contains("message")) {
    fail("a refusal not shaped {\"error\": {code, message}}: " + res.body, input);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  kiln::http::Request req;
  req.method = "POST";
  req.path = "/v1/steps";
  req.body.assign(input);
  kiln::http::Response res;
  json body;
  if (!kiln::server::parse_body(req, res, &body)) {
    check_refusal(res, input);
    return 0;
  }
  if (!body.is_object()) fail("parse_body accepted a body that is not an object", input);

  // What the handlers then do: check the members they know (the submit
  // body's, then its action's), and copy what they keep.
  kiln::http::Response known_res;
  if (!kiln::server::only_known(known_res, body, {"name", "action", "action_on_failure"}, "")) {
    check_refusal(known_res, input);
    return 0;
  }
  if (body.contains("action") && body["action"].is_object()) {
    kiln::http::Response action_res;
    if (!kiln::server::only_known(action_res, body["action"], {"ingest", "ingest_uri"},
                                  "action: ")) {
      check_refusal(action_res, input);
      return 0;
    }
    if (body["action"].contains("ingest")) {
      const json kept = body["action"]["ingest"];  // as SubmitRequest::definition
      (void)kept;
    }
  }
  ++g_checked;
  return 0;
}

extern "C" size_t kiln_fuzz_checked_count() { return g_checked; }
