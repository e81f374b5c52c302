// Fuzz target for the EMR step arguments (server/emr_args.h): which
// command-runner / script-runner jar and spark-submit argument lists mean
// "ingest this definition", and the definition locations they name.
//
// Input: NUL-separated fields: the jar, the ActionOnFailure, then each
// argument (so an argument may hold any other byte, newlines included).
//
// Refusals are expected (kInvalidArgument with a message). What is a
// finding: a crash or sanitizer report, an exception escaping, a refusal
// with another code or no message, and an accepted step whose definition
// is not the absolute path local_definition_path gives for it (a relative
// path, an URI left undecoded, a NUL byte a path cannot hold) or whose
// ActionOnFailure is not one Kiln runs.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "server/emr_args.h"

namespace {

using kiln::StatusCode;
using kiln::server::EmrStepConfig;

size_t g_checked = 0;  // steps accepted

[[noreturn]] void fail(const std::string& what, std::string_view input) {
  std::string shown(input);
  for (char& c : shown)
    if (c == '\0') c = '|';
  std::fprintf(stderr, "kiln_fuzz_emr_args: %s\n  input (NUL shown as |): %s\n", what.c_str(),
               shown.c_str());
  std::abort();
}

std::vector<std::string> fields(std::string_view input) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t nul = input.find('\0', start);
    out.emplace_back(input.substr(start, nul == std::string_view::npos ? nul : nul - start));
    if (nul == std::string_view::npos) return out;
    start = nul + 1;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> f = fields(input);
  EmrStepConfig step;
  step.name = "fuzz";
  step.jar_step.jar = f[0];
  if (f.size() > 1) step.action_on_failure = f[1];
  for (size_t i = 2; i < f.size(); ++i) step.jar_step.args.push_back(f[i]);

  // Every argument as a definition location on its own.
  for (const std::string& arg : step.jar_step.args) {
    const auto path = kiln::server::local_definition_path(arg);
    if (!path.is_ok()) {
      if (path.status().code() != StatusCode::kInvalidArgument || path.status().message().empty())
        fail("local_definition_path refused without kInvalidArgument and a message", input);
      continue;
    }
    if (path->empty() || path->front() != '/' || path->find('\0') != std::string::npos)
      fail("local_definition_path gave '" + *path + "' for '" + arg + "'", input);
  }

  const auto req = kiln::server::to_submit_request(step);
  if (!req.is_ok()) {
    if (req.status().code() != StatusCode::kInvalidArgument || req.status().message().empty())
      fail("refused without kInvalidArgument and a message: " + req.status().message(), input);
    return 0;
  }
  const std::string& uri = req->definition_uri;
  if (uri.empty() || uri.front() != '/' || uri.find('\0') != std::string::npos)
    fail("accepted with definition '" + uri + "'", input);
  if (req->action_on_failure != "CONTINUE" && req->action_on_failure != "CANCEL_AND_WAIT")
    fail("accepted with ActionOnFailure '" + req->action_on_failure + "'", input);
  if (!req->emr_request.is_object() || !req->emr_request.contains("Args"))
    fail("accepted without the HadoopJarStep to echo", input);
  ++g_checked;
  return 0;
}

extern "C" size_t kiln_fuzz_checked_count() { return g_checked; }
