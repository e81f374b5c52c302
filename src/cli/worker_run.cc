#include "cli/worker_run.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "cli/exit_codes.h"
#include "common/cancel.h"
#include "common/log.h"
#include "common/process.h"
#include "worker/worker.h"

namespace kiln::cli {
namespace {

CancelToken g_worker_stop;

extern "C" void on_worker_signal(int) { g_worker_stop.cancel(); }

}  // namespace

void add_worker_flags(CLI::App* app, WorkerFlags* flags) {
  app->add_option("--server", flags->server, "The server's URL, e.g. http://127.0.0.1:8470")
      ->required();
  app->add_option("--slots", flags->slots, "Tasks to run at once")->capture_default_str();
  app->add_option("--node", flags->node,
                  "The cluster node this worker stands for, reported when it registers "
                  "(default: this machine's host name); kiln serve names each node it starts");
  app->add_option("--nice", flags->nice,
                  "Run this worker and its tasks at this nice level (0-19), so that tasks "
                  "filling every core do not slow the server's API down")
      ->capture_default_str();
}

int run_worker(const WorkerFlags& f, const std::vector<std::string>& task_command) {
  // A worker outliving the server that started it would hold tasks nobody
  // tracks: it gets SIGTERM when its parent goes, like a `kiln serve` stop.
  const pid_t parent = ::getppid();
  os::stop_with_parent_or_signal(on_worker_signal);
  ::signal(SIGPIPE, SIG_IGN);  // a dead server's socket must not kill us mid-write
  if (::getppid() != parent) g_worker_stop.cancel();  // it went before prctl took effect

  const char* token = std::getenv("KILN_WORKER_TOKEN");
  if (!token || !*token) {
    return report_error(invalid_argument(
        "KILN_WORKER_TOKEN is not set: the worker token comes from the environment"));
  }
  if (f.slots < 1) return report_error(invalid_argument("--slots: must be >= 1"));
  if (f.nice < 0 || f.nice > 19) return report_error(invalid_argument("--nice: must be 0-19"));
  // Task processes inherit the worker's priority, so lowering ours lowers
  // theirs: batch work then yields the cores to the server's API.
  if (f.nice > 0 && ::getpriority(PRIO_PROCESS, 0) < f.nice &&
      ::setpriority(PRIO_PROCESS, 0, f.nice) != 0) {
    log::warn(std::string("--nice ") + std::to_string(f.nice) +
              ": cannot lower this worker's priority: " + std::strerror(errno));
  }
  worker::WorkerOptions o;
  o.server_url = f.server;
  o.token = token;
  o.slots = f.slots;
  o.host = f.node;
  o.task_command = task_command;
  Status st = worker::run_worker(o, g_worker_stop);
  if (!st.is_ok()) {
    log::error(st.message());
    // Whatever went wrong, the server restarts workers that exit; 1 says
    // "not a clean stop" whatever the status code.
    return kExitInternal;
  }
  return kExitOk;
}

}  // namespace kiln::cli
