#include "slurm/dispatcher.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/log.h"

namespace kiln::slurm {
namespace {

namespace fs = std::filesystem;

// Linux reads at most this much of a #! line (BINPRM_BUF_SIZE in 5.x is
// 256; older kernels 128): the kiln path must fit with " slurm-task".
constexpr size_t kMaxShebang = 120;

// Writes `text` to `path` atomically with mode `mode` from the start (the
// token file is never readable by others, even briefly): a temporary file
// of a unique name, created exclusively, synced, renamed over `path`.
Status write_file(const fs::path& path, const std::string& text, mode_t mode) {
  const std::string tmp = path.string() + ".tmp-" + std::to_string(::getpid());
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return io_error("cannot create '" + tmp + "': " + std::strerror(errno));
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return io_error("cannot write '" + tmp + "': " + why);
    }
    off += static_cast<size_t>(n);
  }
  const bool synced = ::fchmod(fd, mode) == 0 && ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return io_error("cannot write '" + path.string() + "': " + why);
  }
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
    if (j > i) {
      // Not "-" + std::to_string(...): GCC 12 at -O3 warns (-Wrestrict,
      // its bug 105651).
      out += '-';
      out += std::to_string(sorted[j]);
    }
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
  if (o_.state_dir.find_first_of("%\\") != std::string::npos) {
    return invalid_argument(
        "server.state_dir '" + o_.state_dir +
        "': Slurm expands % and \\ in output paths; choose a path without them");
  }
  for (const auto& [env, part] : o_.partitions) {
    if (std::find(o_.environments.begin(), o_.environments.end(), env) == o_.environments.end()) {
      return invalid_argument("slurm.partitions." + env + ": no environment of that name");
    }
  }
  if (!o_.environments.empty()) {
    KILN_ASSIGN_OR_RETURN(std::vector<std::string> known, client_.partitions());
    for (const std::string& env : o_.environments) {
      std::stringstream list(partition_of(env));
      std::string part;
      while (std::getline(list, part, ',')) {
        if (std::find(known.begin(), known.end(), part) == known.end()) {
          return invalid_argument("environment '" + env + "': Slurm has no partition '" + part +
                                  "' (known: " + join(known, ", ") +
                                  "); map it with [slurm] partitions");
        }
      }
    }
  }
  const fs::path dir = fs::path(o_.state_dir) / "slurm";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return io_error("cannot create '" + dir.string() + "': " + ec.message());
  // The whole script: the kernel starts kiln with the script's path and
  // sbatch's script arguments; nothing is ever read by a shell.
  script_ = (dir / "kiln-task.sbatch").string();
  KILN_RETURN_IF_ERROR(write_file(script_, "#!" + o_.kiln_exe + " slurm-task\n", 0755));
  token_file_ = (dir / "worker-token").string();
  KILN_RETURN_IF_ERROR(write_file(token_file_, o_.token + "\n", 0600));
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
  if (!id.is_ok()) {
    // Said in the step's log (once per message): the step would otherwise
    // look RUNNING with nothing happening. A refusal that keeps coming
    // back (no such partition, an array over MaxArraySize) fails the step.
    const std::string msg = id.status().message();
    int& refusals = refusals_[step.id];
    if (++refusals == 1 || msg != last_refusal_[step.id]) {
      o_.step_log(step.id, "slurm: cannot submit: " + msg);
    }
    last_refusal_[step.id] = msg;
    if (refusals >= kMaxRefusals) {
      store::Failure f{
          "EXECUTOR_ERROR",
          "Slurm refused the step's jobs " + std::to_string(refusals) + " times: " + msg, ""};
      auto failed = store_->fail_step(step.id, f, now_ms);
      if (failed.is_ok() && *failed) o_.step_log(step.id, "step FAILED: " + f.message);
    }
    return id.status().with_context("step " + step.id);
  }
  refusals_.erase(step.id);
  last_refusal_.erase(step.id);
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

  // The step's first dispatch: no job was ever recorded for it. Then the
  // array covers every PENDING partition and the commit waits on it.
  KILN_ASSIGN_OR_RETURN(bool dispatched, store_->has_batch_jobs(step.id));
  std::vector<int64_t> first, again;
  bool all_done = true;
  const store::Task* commit = nullptr;
  for (const store::Task& t : tasks) {
    if (t.kind == store::TaskKind::kCommit) {
      commit = &t;
      continue;
    }
    if (t.state != store::TaskState::kDone) all_done = false;
    if (t.state != store::TaskState::kPending || covered.count(t.index)) continue;
    if (!dispatched) {
      first.push_back(t.index);
    } else if (now_ms - t.queued_ms >= o_.resubmit_after_ms) {
      again.push_back(t.index);
    }
  }
  if (!dispatched) {
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
      const bool routine_wait =
          j.state == "PENDING" && seen.empty() &&
          (j.reason == "Priority" || j.reason == "Resources" || j.reason == "None" ||
           j.reason.empty() || j.reason.rfind("Nodes required for job are DOWN", 0) == 0);
      seen = now;
      if (!routine_wait) o_.step_log(step.id, "slurm: job " + key + " " + now);
    }
  }
}

void Dispatcher::release_held(const store::Step& step, const std::vector<store::BatchJob>& jobs,
                              int64_t now_ms) {
  std::vector<std::string> held;
  for (const store::BatchJob& job : jobs) {
    auto it = queue_.find(job.job_id);
    if (it == queue_.end()) continue;
    for (const JobInfo& j : it->second) {
      // Only Slurm's own hold after a failed launch: a hold an operator put
      // on (JobHeldAdmin, JobHeldUser) is theirs to lift.
      if (j.state != "PENDING" || j.reason.find("launch failed requeued held") == std::string::npos)
        continue;
      // Once per few seconds each: squeue may still show the hold just
      // released, and an element can be held again by a later launch.
      const std::string name = element_name(j);
      auto [at, fresh] = released_.emplace(name, now_ms);
      if (!fresh && now_ms - at->second < kReleaseAgainMs) continue;
      at->second = now_ms;
      held.push_back(name);
    }
  }
  if (held.empty()) return;
  Status st = client_.release(held);
  if (!st.is_ok()) {
    for (const std::string& h : held) released_.erase(h);  // tried again next time
  }
  o_.step_log(step.id, "slurm: released held job(s) " + join(held, ",") +
                           (st.is_ok() ? "" : ": " + st.message()));
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
    if (step.state == store::StepState::kCancelPending) {
      std::vector<std::string> ids;
      for (const store::BatchJob& j : jobs)
        if (live(j)) ids.push_back(j.job_id);
      const std::string sig = step.cancel_signal.empty() ? "TERM" : step.cancel_signal;
      // Once per step and signal (a TERM may be followed by a KILL), and
      // again next time if scancel failed.
      const std::string key = step.id + "|" + sig;
      if (!ids.empty() && !cancel_sent_.count(key)) {
        Status st = client_.cancel(ids, sig);
        if (st.is_ok()) cancel_sent_.insert(key);
        o_.step_log(step.id, "slurm: scancel (" + sig + ") of job(s) " + join(ids, ",") +
                                 (st.is_ok() ? "" : ": " + st.message()));
      }
      continue;
    }
    release_held(step, jobs, now_ms);
    note(dispatch_running(step, jobs, now_ms));
  }
  // Jobs of steps that ended. A step that failed or was cancelled: what
  // still runs of it is wasted, and is cancelled. A COMPLETED step: its
  // running elements are only finishing (the commit job exits once it has
  // reported), but elements still pending (a resubmission that turned out
  // not to be needed) would take a slot just to hear "done", so they go.
  // The records are closed once nothing of them is live.
  for (const store::BatchJob& j : *open) {
    if (active.count(j.step_id)) continue;
    if (live(j)) {
      const bool done = completed(j.step_id);
      std::vector<std::string> ids;
      for (const JobInfo& e : queue_[j.job_id]) {
        if (!is_live_state(e.state)) continue;
        if (!done || e.state == "PENDING") ids.push_back(element_name(e));
      }
      if (!ids.empty() && !cancel_sent_.count(j.job_id + "|ended")) {
        Status st = client_.cancel(ids, "TERM");
        if (st.is_ok()) cancel_sent_.insert(j.job_id + "|ended");
        o_.step_log(j.step_id, "slurm: step ended; scancel of job(s) " + join(ids, ",") +
                                   (st.is_ok() ? "" : ": " + st.message()));
      }
      continue;
    }
    if (now_ms - j.submitted_ms < o_.poll_ms * 2) continue;  // squeue may not list it yet
    note(store_->end_batch_job(j.job_id));
    // What was kept about the job's elements is not needed any more.
    for (auto it = seen_state_.begin(); it != seen_state_.end();) {
      const bool mine = it->first == j.job_id || it->first.rfind(j.job_id + "_", 0) == 0;
      it = mine ? seen_state_.erase(it) : std::next(it);
    }
    for (auto it = released_.begin(); it != released_.end();) {
      it = it->first.rfind(j.job_id + "_", 0) == 0 ? released_.erase(it) : std::next(it);
    }
    cancel_sent_.erase(j.job_id + "|ended");
  }
  for (auto it = cancel_sent_.begin(); it != cancel_sent_.end();) {
    const std::string id = it->substr(0, it->find('|'));
    const bool stale = id.rfind("s-", 0) == 0 && !active.count(id);
    it = stale ? cancel_sent_.erase(it) : std::next(it);
  }
  for (auto it = refusals_.begin(); it != refusals_.end();) {
    if (active.count(it->first)) {
      ++it;
      continue;
    }
    last_refusal_.erase(it->first);
    it = refusals_.erase(it);
  }
}

}  // namespace kiln::slurm
