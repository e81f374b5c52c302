// How a leased task's process is started: its argv and environment, inside
// the sandbox the lease asks for (common/sandbox.h, docs/security.md).
#pragma once

#include <string>
#include <vector>

#include "common/sandbox.h"
#include "common/status.h"
#include "worker/server_client.h"

namespace kiln::worker {

struct TaskLaunch {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // empty: the worker's own (unsandboxed only)
  // When sandboxed: the bwrap argv, rlimits and seccomp program to spawn
  // (argv above is then the command it wraps).
  sandbox::Wrapped wrapped;
  bool sandboxed = false;
  bool network = false;  // start with sandbox::start() (common/sandbox_net.h)
};

// `command`: the task command with its "--spec FILE" (FILE = spec_path).
// Without a sandbox in the lease, or with mode "none", the command runs as
// today. With mode "bwrap": the task sees its environment's source roots
// (lease "source_roots") read-only, its spec file and `command[0]`
// read-only, and its layer directory (<catalog>/<env>/<layer>, from the
// spec's definition: its staging and the versions its commit publishes)
// read-write; that directory is created here and, when the worker runs as
// root, handed to the sandbox user. Errors name the field or path at fault.
Result<TaskLaunch> task_launch(const LeasedTask& task, const std::vector<std::string>& command,
                               const std::string& spec_path);

}  // namespace kiln::worker
