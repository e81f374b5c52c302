// Dispatcher: the Slurm executor's scheduling half (docs/slurm.md). The job
// store still decides which steps run (environments' concurrency) and
// records every task attempt; Slurm decides where and when each task runs.
//
// Each pass (a few a second from kiln serve's scheduler, Slurm polled at
// most every poll_ms):
//   - a RUNNING step with no Slurm jobs yet gets one job array, one element
//     per PENDING partition task, in its environment's partition, and a
//     commit job with afterok on the array (kill_invalid_depend ends it
//     when the array fails); each is recorded in the store as soon as
//     sbatch returns its id, so a restarted server re-attaches instead of
//     submitting again; a refusal goes to the step's log, and one that
//     keeps coming back fails the step;
//   - a PENDING partition task that no live Slurm job covers any more (its
//     element ended without finishing it: node failure without requeue, a
//     crash, a lease that lapsed) is submitted again as a new array element
//     after resubmit_after_ms; the commit likewise once every partition is
//     DONE;
//   - a CANCEL_PENDING step's live jobs are scancel-ed with the signal the
//     client asked for; a step that ended (FAILED) has its leftover jobs
//     cancelled; jobs with nothing live left are marked ended;
//   - an element Slurm holds (its launch failed) is released;
//   - each element's Slurm state changes are written to the step's log
//     ("slurm: job 12_3 RUNNING on node2").
// Not thread-safe: the scheduler thread calls tick().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "common/status.h"
#include "slurm/slurm_client.h"
#include "store/job_store.h"

namespace kiln::slurm {

struct DispatcherOptions {
  std::string kiln_exe;    // the kiln binary compute nodes run (same path on every node)
  std::string server_url;  // how compute nodes reach kiln serve
  std::string state_dir;   // shared storage: the batch script, token file, job workdir
  std::string token;       // the worker token, written to <state_dir>/slurm/worker-token
  // Environment name -> Slurm partition; an environment not listed uses
  // the partition of its own name.
  std::map<std::string, std::string> partitions;
  // The configured environments: start() checks each one's partitions
  // exist, so a typo fails at start instead of at the first step.
  std::vector<std::string> environments;
  int64_t poll_ms = 1000;
  // A PENDING task no live job covers is submitted again after this long.
  int64_t resubmit_after_ms = 5000;
  // The step's log file (Slurm's output is appended there).
  std::function<std::string(const std::string& step_id)> log_path;
  // A line in the step's log.
  std::function<void(const std::string& step_id, const std::string& line)> step_log;
};

class Dispatcher {
 public:
  Dispatcher(store::JobStore* store, SlurmClient client, DispatcherOptions options);

  // Checks the environments' partitions exist in Slurm; writes the batch
  // script and the token file under <state_dir>/slurm/.
  Status start();
  void tick(int64_t now_ms);

  const std::string& script_path() const { return script_; }
  std::string partition_of(const std::string& environment) const;

 private:
  Status dispatch_running(const store::Step& step, const std::vector<store::BatchJob>& jobs,
                          int64_t now_ms);
  // Submits and records one job; its id.
  Result<std::string> submit(const store::Step& step, const std::string& kind,
                             const std::string& indexes, const std::vector<std::string>& after_ok,
                             int64_t now_ms);
  bool live(const store::BatchJob& job) const;
  // Slurm holds a job whose launch failed (on a node powering down, say):
  // held jobs never run, so they are released.
  void release_held(const store::Step& step, const std::vector<store::BatchJob>& jobs,
                    int64_t now_ms);
  // Every task of the step is DONE (it COMPLETED).
  bool completed(const std::string& step_id) const;
  // Logs state changes of this step's elements.
  void log_changes(const store::Step& step, const std::vector<store::BatchJob>& jobs);

  store::JobStore* store_;
  SlurmClient client_;
  DispatcherOptions o_;
  std::string script_, token_file_;
  int64_t next_poll_ms_ = 0;
  std::string last_error_;  // logged once until it changes
  // The last squeue: job id -> its elements (index -1: a plain job).
  std::map<std::string, std::vector<JobInfo>> queue_;
  static constexpr int kMaxRefusals = 3;
  std::map<std::string, std::string> seen_state_;  // "job_index" -> "STATE node"
  // "step|SIGNAL" scancel-ed while CANCEL_PENDING; "job|ended" for jobs of
  // steps that ended.
  std::set<std::string> cancel_sent_;
  static constexpr int64_t kReleaseAgainMs = 10000;
  std::map<std::string, int64_t> released_;          // held element -> when it was last released
  std::map<std::string, int> refusals_;              // step -> sbatch refusals in a row
  std::map<std::string, std::string> last_refusal_;  // step -> the last refusal's message
};

// "0-3,5,7-8" for sorted indexes {0,1,2,3,5,7,8}.
std::string index_ranges(const std::vector<int64_t>& sorted);

}  // namespace kiln::slurm
