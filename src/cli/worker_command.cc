// `kiln worker --server URL --slots N [--node ID]`: a worker of the warm cluster
// (docs/cluster.md, "Worker protocol"). The token comes from
// KILN_WORKER_TOKEN so that it never shows in a process list. `kiln serve`
// starts the lean `kiln-worker` instead when it sits next to `kiln`
// (cli/worker_run.h says why); both run the same code.
#include <memory>

#include "cli/commands.h"
#include "cli/worker_run.h"

namespace kiln::cli {

Command add_worker_command(CLI::App& app) {
  Command c;
  c.app = app.add_subcommand(
      "worker",
      "Run a worker of a `kiln serve` cluster: lease tasks, run each as `kiln task run`, report "
      "back. The worker token is read from KILN_WORKER_TOKEN.");
  auto flags = std::make_shared<WorkerFlags>();
  add_worker_flags(c.app, flags.get());
  c.run = [flags] { return run_worker(*flags, {}); };
  return c;
}

}  // namespace kiln::cli
