#include "slurm/dispatcher.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/log.h"

namespace kiln::slurm {
namespace {

namespace fs = std::filesystem;

// Linux reads at most this much of a #! line (BINPRM_BUF_SIZE in 5.x is
// 256; older kernels 128): the kiln path must fit with " slurm-task".
constexpr size_t kMaxShebang = 120;

Status write_file(const fs::path& path, const std::string& text, fs::perms perms) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return io_error("cannot write '" + tmp.string() + "'");
    out << text;
    if (!out.flush()) return io_error("cannot write '" + tmp.string() + "'");
  }
  std::error_code ec;
  fs::permissions(tmp, perms, ec);
  if (ec) return io_error("cannot set the mode of '" + tmp.string() + "': " + ec.message());
  fs::rename(tmp, path, ec);
  if (ec) return io_error("cannot rename '" + tmp.string() + "': " + ec.message());
  return Status::ok();
}

std::string element_name(const JobInfo& j) {
  return j.index < 0 ? j.job_id : j.job_id + "_" + std::to_string(j.index);
}

}  // namespace

std::string index_ranges(const std::vector<int64_t>& sorted) {
  std::string out;
  size_t i = 0;
  while (i < sorted.size()) {
    size_t j = i;
    while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) ++j;
    if (!out.empty()) out += ",";
    out += std::to_string(sorted[i]);
    if (j > i) out += "-" + std::to_string(sorted[j]);
    i = j + 1;
  }
  return out;
}

Dispatcher::Dispatcher(store::JobStore* store, SlurmClient client, DispatcherOptions options)
    : store_(store), client_(std::move(client)), o_(std::move(options)) {}

std::string Dispatcher::partition_of(const std::string& environment) const {
  auto it = o_.partitions.find(environment);
  return it != o_.partitions.end() ? it->second : environment;
}

Status Dispatcher::start() {
  if (o_.kiln_exe.empty() || o_.kiln_exe.front() != '/') {
    return invalid_argument("slurm: the kiln binary's path must be absolute, not '" + o_.kiln_exe +
                            "'");
  }
  if (o_.kiln_exe.find_first_of(" \t\n") != std::string::npos ||
      o_.kiln_exe.size() + 12 > kMaxShebang) {
    return invalid_argument(
        "slurm: the kiln binary's path '" + o_.kiln_exe + "' must have no blanks and be under " +
        std::to_string(kMaxShebang - 12) + " characters: it is the batch script's #! line");
  }
  const fs::path dir = fs::path(o_.state_dir) / "slurm";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return io_error("cannot create '" + dir.string() + "': " + ec.message());
  // The whole script: the kernel starts kiln with the script's path and
  // sbatch's script arguments; nothing is ever read by a shell.
  script_ = (dir / "kiln-task.sbatch").string();
  KILN_RETURN_IF_ERROR(write_file(script_, "#!" + o_.kiln_exe + " slurm-task\n",
                                  fs::perms::owner_all | fs::perms::group_read |
                                      fs::perms::group_exec | fs::perms::others_read |
                                      fs::perms::others_exec));
  token_file_ = (dir / "worker-token").string();
  KILN_RETURN_IF_ERROR(
      write_file(token_file_, o_.token + "\n", fs::perms::owner_read | fs::perms::owner_write));
  return Status::ok();
}

bool Dispatcher::live(const store::BatchJob& job) const {
  auto it = queue_.find(job.job_id);
  if (it == queue_.end()) return false;
  for (const JobInfo& j : it->second)
    if (is_live_state(j.state)) return true;
  return false;
}

Result<std::string> Dispatcher::submit(const store::Step& step, const std::string& kind,
                                       const std::string& indexes,
                                       const std::vector<std::string>& after_ok, int64_t now_ms) {
  JobRequest r;
  const bool commit = kind == "commit";
  r.name = "kiln-" + step.id + (commit ? "-commit" : "");
  r.partition = partition_of(step.environment);
  r.array = commit ? "" : indexes;
  r.after_ok = after_ok;
  r.output = o_.log_path(step.id);
  r.workdir = o_.state_dir;
  r.script = script_;
  r.script_args = {"--server", o_.server_url, "--token-file", token_file_, "--step", step.id};
  if (commit) r.script_args.push_back("--commit");
  auto id = client_.submit(r);
  if (!id.is_ok()) return id.status().with_context("step " + step.id);
  store::BatchJob job{*id, step.id, kind, commit ? "" : indexes, now_ms, false};
  KILN_RETURN_IF_ERROR(store_->add_batch_job(job));
  // Counted as live until the next squeue says otherwise.
  queue_[*id].push_back({*id, commit ? -1 : 0, "PENDING", "", "submitted"});
  o_.step_log(step.id, "slurm: submitted " +
                           (commit ? std::string("commit job ") + *id
                                   : "array job " + *id + " [" + indexes + "]") +
                           " to partition " + r.partition +
                           (after_ok.empty() ? "" : ", afterok:" + after_ok.front()));
  return *id;
}

Status Dispatcher::dispatch_running(const store::Step& step,
                                    const std::vector<store::BatchJob>& jobs, int64_t now_ms) {
  KILN_ASSIGN_OR_RETURN(std::vector<store::Task> tasks, store_->tasks_of(step.id));
  std::set<int64_t> covered;  // partition indexes a live element will run
  bool commit_live = false;
  for (const store::BatchJob& job : jobs) {
    auto it = queue_.find(job.job_id);
    if (it == queue_.end()) continue;
    for (const JobInfo& j : it->second) {
      if (!is_live_state(j.state)) continue;
      if (job.kind == "commit") {
        commit_live = true;
      } else if (j.index >= 0) {
        covered.insert(j.index);
      }
    }
  }
  // Just submitted: the array's elements are not in queue_ individually.
  for (const store::BatchJob& job : jobs) {
    if (job.kind == "partitions" && now_ms - job.submitted_ms < o_.poll_ms * 2) {
      for (const store::Task& t : tasks)
        if (t.kind == store::TaskKind::kPartition) covered.insert(t.index);
    }
  }

  std::vector<int64_t> first, again;
  bool all_done = true, never_attempted = true;
  const store::Task* commit = nullptr;
  for (const store::Task& t : tasks) {
    if (t.attempt > 0) never_attempted = false;
    if (t.kind == store::TaskKind::kCommit) {
      commit = &t;
      continue;
    }
    if (t.state != store::TaskState::kDone) all_done = false;
    if (t.state != store::TaskState::kPending || covered.count(t.index)) continue;
    if (jobs.empty() && never_attempted) {
      first.push_back(t.index);
    } else if (now_ms - t.queued_ms >= o_.resubmit_after_ms) {
      again.push_back(t.index);
    }
  }
  if (jobs.empty() && never_attempted) {
    // The step's first dispatch: the array, then the commit after it.
    std::vector<std::string> after;
    if (!first.empty()) {
      KILN_ASSIGN_OR_RETURN(std::string array_id,
                            submit(step, "partitions", index_ranges(first), {}, now_ms));
      after.push_back(array_id);
    }
    return submit(step, "commit", "", after, now_ms).status();
  }
  if (!again.empty()) {
    std::sort(again.begin(), again.end());
    KILN_RETURN_IF_ERROR(submit(step, "partitions", index_ranges(again), {}, now_ms).status());
    o_.step_log(step.id, "slurm: partition(s) " + index_ranges(again) +
                             " had no live Slurm job left; submitted again");
  }
  if (commit && commit->state == store::TaskState::kPending && all_done && !commit_live) {
    KILN_RETURN_IF_ERROR(submit(step, "commit", "", {}, now_ms).status());
  }
  return Status::ok();
}

void Dispatcher::log_changes(const store::Step& step, const std::vector<store::BatchJob>& jobs) {
  for (const store::BatchJob& job : jobs) {
    auto it = queue_.find(job.job_id);
    if (it == queue_.end()) continue;
    for (const JobInfo& j : it->second) {
      if (j.reason == "submitted") continue;  // our placeholder, not squeue's
      const std::string key = element_name(j);
      std::string now = j.state;
      if (!j.node.empty() && j.state != "PENDING") now += " on " + j.node;
      if (j.state == "PENDING" && !j.reason.empty() && j.reason != "None") {
        now += " (" + j.reason + ")";
      }
      std::string& seen = seen_state_[key];
      if (seen == now) continue;
      // Waiting for a slot or a node is the normal state of most elements
      // of a big array: logged only when it says something (a requeued
      // element, a hold, a dependency), not for every element.
      const bool routine_wait = j.state == "PENDING" && seen.empty() &&
                                j.reason.find("held") == std::string::npos &&
                                j.reason.find("Dependency") == std::string::npos;
      seen = now;
      if (!routine_wait) o_.step_log(step.id, "slurm: job " + key + " " + now);
    }
  }
}

void Dispatcher::release_held(const store::Step& step, const std::vector<store::BatchJob>& jobs) {
  std::vector<std::string> held;
  for (const store::BatchJob& job : jobs) {
    auto it = queue_.find(job.job_id);
    if (it == queue_.end()) continue;
    for (const JobInfo& j : it->second) {
      if (j.state != "PENDING") continue;
      std::string reason = j.reason;
      std::transform(reason.begin(), reason.end(), reason.begin(), ::tolower);
      if (reason.find("held") != std::string::npos) held.push_back(element_name(j));
    }
  }
  if (held.empty()) return;
  std::string list;
  for (const std::string& h : held) list += (list.empty() ? "" : ",") + h;
  Status st = client_.release(held);
  o_.step_log(step.id,
              "slurm: released held job(s) " + list + (st.is_ok() ? "" : ": " + st.message()));
}

bool Dispatcher::completed(const std::string& step_id) const {
  auto tasks = store_->tasks_of(step_id);
  if (!tasks.is_ok()) return false;
  for (const store::Task& t : *tasks)
    if (t.state != store::TaskState::kDone) return false;
  return true;
}

void Dispatcher::tick(int64_t now_ms) {
  if (now_ms < next_poll_ms_) return;
  next_poll_ms_ = now_ms + o_.poll_ms;
  auto note = [this](const Status& st) {
    if (st.is_ok()) return;
    if (st.message() != last_error_) log::error("slurm: " + st.message());
    last_error_ = st.message();
  };

  // What Slurm runs; without it nothing is submitted (the work may be
  // live and submitting blind would run it twice).
  auto q = client_.queue();
  if (!q.is_ok()) return note(q.status());
  queue_.clear();
  for (JobInfo& j : *q) queue_[j.job_id].push_back(std::move(j));

  auto steps =
      store_->steps_in_states({store::StepState::kRunning, store::StepState::kCancelPending});
  if (!steps.is_ok()) return note(steps.status());
  auto open = store_->open_batch_jobs();
  if (!open.is_ok()) return note(open.status());
  std::map<std::string, std::vector<store::BatchJob>> by_step;
  for (const store::BatchJob& j : *open) by_step[j.step_id].push_back(j);

  std::set<std::string> active;
  for (const store::Step& step : *steps) {
    active.insert(step.id);
    const std::vector<store::BatchJob>& jobs = by_step[step.id];
    log_changes(step, jobs);
    release_held(step, jobs);
    if (step.state == store::StepState::kCancelPending) {
      std::vector<std::string> ids;
      for (const store::BatchJob& j : jobs)
        if (live(j)) ids.push_back(j.job_id);
      if (!ids.empty() && cancel_sent_.insert(step.id).second) {
        const std::string sig = step.cancel_signal.empty() ? "TERM" : step.cancel_signal;
        Status st = client_.cancel(ids, sig);
        std::string list;
        for (const std::string& id : ids) list += (list.empty() ? "" : ",") + id;
        o_.step_log(step.id, "slurm: scancel (" + sig + ") of job(s) " + list +
                                 (st.is_ok() ? "" : ": " + st.message()));
      }
      continue;
    }
    note(dispatch_running(step, jobs, now_ms));
  }
  // Jobs of steps that ended: whatever still runs of a step that failed
  // or was cancelled is wasted, and is cancelled; a COMPLETED step's jobs
  // are only finishing (its commit job exits once it has reported). The
  // records are closed once nothing of them is live.
  for (const store::BatchJob& j : *open) {
    const bool step_active = active.count(j.step_id) > 0;
    if (live(j)) {
      if (!step_active && !completed(j.step_id) && cancel_sent_.insert(j.job_id).second) {
        note(client_.cancel({j.job_id}, "TERM"));
        o_.step_log(j.step_id, "slurm: step ended; scancel of job " + j.job_id);
      }
      continue;
    }
    if (now_ms - j.submitted_ms < o_.poll_ms * 2) continue;  // squeue may not list it yet
    note(store_->end_batch_job(j.job_id));
  }
}

}  // namespace kiln::slurm
