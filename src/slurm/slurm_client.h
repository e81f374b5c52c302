// SlurmClient: Slurm's command-line clients (sbatch, squeue, scancel,
// scontrol, sinfo) run as argv through os::ProcessLauncher, never through a shell, and
// always with SLURM_CONF set: without it Slurm 22.05's clients look the
// controller up in DNS, which must not leave this machine. Their output is
// parsed from fixed `--format` strings, not from human tables.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::slurm {

struct SlurmClientOptions {
  std::string conf;     // SLURM_CONF for every call; required
  std::string bin_dir;  // where sbatch & co. are; empty: searched in PATH
  // A client that has not answered by then is killed: a controller that
  // hangs must not hang the server's scheduler.
  std::chrono::milliseconds timeout{20000};
};

// One batch job to submit.
struct JobRequest {
  std::string name;                      // --job-name
  std::string partition;                 // --partition
  std::string array;                     // --array ("0-7", "3,5"); empty: not an array
  std::vector<std::string> after_ok;     // --dependency=afterok:ID:ID, --kill-on-invalid-dep=yes
  std::string output;                    // --output, opened in append mode
  std::string workdir;                   // --chdir
  std::string script;                    // the batch script's path
  std::vector<std::string> script_args;  // passed to the script as its arguments
  int cpus_per_task = 1;
};

// One job, or one element of a job array, as squeue shows it.
struct JobInfo {
  std::string job_id;  // the array's job id for an element, else the job's
  int64_t index = -1;  // the array element's index; -1: not an array element
  std::string state;   // "PENDING", "RUNNING", "COMPLETED", "NODE_FAIL", ...
  std::string node;    // where it runs or ran; empty while pending
  std::string reason;  // why it waits or ended ("Priority", "Dependency", "None")
};

struct NodeInfo {
  std::string name;
  std::string state;  // sinfo's long form: "idle", "allocated", "down*", "idle~", ...
  int cpus = 0;
};

// "a,b,c": Slurm's list syntax (job ids, node names).
std::string join(const std::vector<std::string>& items, const std::string& sep = ",");

// States in which a job may still run (or is running): the dispatcher does
// not submit the work again while its job is in one of these.
bool is_live_state(const std::string& state);

class SlurmClient {
 public:
  // InvalidArgument when conf is empty; NotFound naming the client that is
  // missing (with the package to install).
  static Result<SlurmClient> create(SlurmClientOptions options);

  // sbatch --parsable: the new job's id.
  Result<std::string> submit(const JobRequest& job) const;
  // Every job and array element the controller still knows (finished ones
  // for MinJobAge), of this user.
  Result<std::vector<JobInfo>> queue() const;
  // scancel. `signal` "TERM": Slurm's own sequence (SIGTERM, then SIGKILL
  // after KillWait); "KILL": SIGKILL at once, then the jobs are cancelled.
  Status cancel(const std::vector<std::string>& job_ids, const std::string& signal) const;
  // scontrol release: lets held jobs (a launch that failed on a node
  // powering down is requeued held) be scheduled again. Ids like "12_3".
  Status release(const std::vector<std::string>& job_ids) const;
  // scontrol update NodeName=... State=POWER_UP | POWER_DOWN.
  Status power(const std::string& nodes, bool up) const;
  // scontrol update NodeName=<nodes> State=<state> [Reason=<reason>]
  // (DRAIN needs a reason; RESUME, POWER_DOWN_FORCE, ... do not).
  Status update_nodes(const std::string& nodes, const std::string& state,
                      const std::string& reason) const;
  Result<std::vector<NodeInfo>> nodes() const;
  // The cluster's partition names (sinfo --format=%R).
  Result<std::vector<std::string>> partitions() const;

  const SlurmClientOptions& options() const { return o_; }

 private:
  explicit SlurmClient(SlurmClientOptions o) : o_(std::move(o)) {}
  struct Output {
    int code = 0;
    std::string out, err;
  };
  // Runs bin_dir/argv[0] with argv[1..]; an error unless it exits 0,
  // quoting its stderr.
  Result<Output> run(const std::vector<std::string>& argv) const;

  SlurmClientOptions o_;
};

}  // namespace kiln::slurm
