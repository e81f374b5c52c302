// `kiln slurm-task`: one task of a step, run as a Slurm job (docs/slurm.md).
// The Slurm executor submits a batch script whose only line is
// "#!<kiln> slurm-task", with the step and server as the script's
// arguments, so Slurm execs kiln directly and no shell ever reads them. Each
// array task claims its partition from the server (its index is
// SLURM_ARRAY_TASK_ID), runs it as `kiln task run` like a worker does,
// heartbeats its progress and reports its end; the commit job claims the
// commit task. A requeued array task (preemption, node failure) claims the
// same partition again as a new attempt.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "common/cancel.h"
#include "common/log.h"
#include "common/process.h"
#include "worker/worker.h"

namespace kiln::cli {
namespace {

CancelToken g_slurm_task_stop;

extern "C" void on_slurm_task_signal(int) { g_slurm_task_stop.cancel(); }

struct SlurmTaskFlags {
  std::string script;  // the batch script's own path (the shebang passes it)
  std::string server;
  std::string token_file;
  std::string step;
  int64_t index = -2;  // -2: from SLURM_ARRAY_TASK_ID
  bool commit = false;
  int outage_limit_seconds = 600;
};

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

Result<std::string> read_token(const std::string& path) {
  std::ifstream in(path);
  if (!in) return invalid_argument("--token-file '" + path + "': cannot read it");
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.empty()) return invalid_argument("--token-file '" + path + "' is empty");
  return token;
}

int run_slurm_task(SlurmTaskFlags f) {
  os::stop_with_parent_or_signal(on_slurm_task_signal);
  ::signal(SIGPIPE, SIG_IGN);

  if (f.commit) {
    f.index = -1;
  } else if (f.index == -2) {
    const std::string id = env_or("SLURM_ARRAY_TASK_ID", "");
    if (id.empty()) {
      return report_error(
          invalid_argument("no partition index: give --index, --commit, or run as a Slurm array "
                           "task (SLURM_ARRAY_TASK_ID)"));
    }
    try {
      size_t used = 0;
      f.index = std::stoll(id, &used);
      if (used != id.size() || f.index < 0) throw std::invalid_argument(id);
    } catch (const std::exception&) {
      return report_error(invalid_argument("SLURM_ARRAY_TASK_ID '" + id + "' is not an index"));
    }
  } else if (f.index < 0) {
    return report_error(invalid_argument("--index: must be >= 0 (--commit for the commit task)"));
  }
  auto token = read_token(f.token_file);
  if (!token.is_ok()) return report_error(token.status());

  // Which Slurm run this is, for the step's log: "job 12_3 on node2,
  // restart 1".
  const std::string job = env_or("SLURM_ARRAY_JOB_ID", env_or("SLURM_JOB_ID", "?"));
  const std::string array_index = env_or("SLURM_ARRAY_TASK_ID", "");
  const std::string node = env_or("SLURMD_NODENAME", "");
  const std::string restarts = env_or("SLURM_RESTART_COUNT", "0");
  std::ostringstream who;
  who << "slurm job " << job << (array_index.empty() ? "" : "_" + array_index);
  if (!node.empty()) who << " on " << node;
  if (restarts != "0") who << ", restart " << restarts;
  log::info(who.str() + ": " +
            (f.index < 0 ? std::string("commit task") : "partition " + std::to_string(f.index)) +
            " of step " + f.step);

  worker::WorkerOptions o;
  o.server_url = f.server;
  o.token = *token;
  o.slots = 1;
  // The Slurm node's name: the fleet's node of that name counts this
  // task as its busy slot.
  o.host = node;
  o.claim_step = f.step;
  o.claim_index = f.index;
  o.outage_limit = std::chrono::seconds(f.outage_limit_seconds);
  Status st = worker::run_worker(o, g_slurm_task_stop);
  if (st.is_ok()) return kExitOk;
  log::error(st.message());
  // Slurm reads a non-zero exit as a failed job, so a commit job waiting
  // on this array (afterok) is not started.
  return exit_code_for(st);
}

}  // namespace

Command add_slurm_task_command(CLI::App& app) {
  Command c;
  c.app = app.add_subcommand(
      "slurm-task",
      "Run one task of a step as a Slurm job: the Slurm executor's batch script starts this on "
      "the compute nodes (docs/slurm.md). It claims its partition (SLURM_ARRAY_TASK_ID) or the "
      "commit task from the server, runs it, and reports back.");
  auto flags = std::make_shared<SlurmTaskFlags>();
  c.app->add_option("script", flags->script,
                    "The batch script's path, which the kernel passes when the script's "
                    "#! line starts kiln (ignored)");
  c.app->add_option("--server", flags->server, "The server's URL, e.g. http://127.0.0.1:8470")
      ->required();
  c.app
      ->add_option("--token-file", flags->token_file,
                   "File holding the worker token (the server writes it, mode 0600)")
      ->required();
  c.app->add_option("--step", flags->step, "The step's id")->required();
  c.app->add_option("--index", flags->index, "Partition index (default: SLURM_ARRAY_TASK_ID)");
  c.app->add_flag("--commit", flags->commit, "Run the step's commit task");
  c.app
      ->add_option("--outage-limit", flags->outage_limit_seconds,
                   "Seconds the server may stay unreachable (a restart) before the task gives up")
      ->capture_default_str();
  c.run = [flags] { return run_slurm_task(*flags); };
  return c;
}

}  // namespace kiln::cli
