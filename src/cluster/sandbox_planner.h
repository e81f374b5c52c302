// SandboxPlanner: planning at submit in a child process, never in the
// server (docs/security.md). The child is `kiln task plan`, started in the
// sandbox tasks get (common/sandbox.h) with the environment's source roots
// read-only and nothing writable, a wall-clock deadline and its own CPU
// limit; it reads the definition from a file bound into its view and
// prints one JSON line: {"plan": {...}} or {"error": {...}}.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cluster/planner.h"
#include "common/clock.h"
#include "common/process.h"
#include "common/sandbox.h"
#include "config/server_config.h"

namespace kiln::cluster {

class SandboxPlanner final : public Planner {
 public:
  // `kiln_exe`: the binary whose `task plan` runs. `work_dir`: a private
  // directory (created if missing) for the definitions handed to children.
  // `launcher` and `clock` must outlive the planner.
  SandboxPlanner(const config::ServerConfig& config, std::string kiln_exe, std::string work_dir,
                 os::ProcessLauncher* launcher, const Clock& clock);

  // Plans def (its output.environment names the environment whose roots the
  // child sees). kInvalidArgument/kInputError/kEmpty with the child's
  // message, or naming how it died; kUnavailable when it did not answer
  // within plan_timeout_seconds (it is killed). Thread-safe: each call has
  // its own child.
  Result<PlanSummary> plan(const ingest::IngestDefinition& def, int threads) override;

 private:
  const sandbox::Policy policy_;
  const std::map<std::string, std::vector<std::string>> roots_;  // by environment
  const std::string kiln_exe_;
  const std::string work_dir_;
  os::ProcessLauncher* launcher_;
  const Clock& clock_;
};

}  // namespace kiln::cluster
