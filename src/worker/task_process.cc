#include "worker/task_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/log.h"
#include "common/sandbox.h"
#include "common/sandbox_net.h"
#include "worker/task_sandbox.h"

namespace kiln::worker {
namespace {

using nlohmann::json;

// A result line holds a partition's statistics (a few thousand histogram
// bins per band); anything far beyond that is not a task talking.
constexpr size_t kMaxLineBytes = 64 << 20;

}  // namespace

Result<std::unique_ptr<TaskProcess>> TaskProcess::start(const LeasedTask& task,
                                                        const std::vector<std::string>& command,
                                                        const std::string& spec_dir,
                                                        os::ProcessLauncher* launcher,
                                                        const Clock* clock) {
  std::unique_ptr<TaskProcess> p(new TaskProcess(task, clock));
  p->progress_.task_id = task.task_id;
  p->progress_.attempt = task.attempt;
  p->spec_path_ = spec_dir + "/task-" + std::to_string(task.task_id) + "-" +
                  std::to_string(task.attempt) + ".json";
  {
    std::ofstream spec(p->spec_path_, std::ios::binary | std::ios::trunc);
    spec << task.spec.dump() << "\n";
    spec.close();
    if (!spec) return io_error("cannot write task spec '" + p->spec_path_ + "'");
  }

  std::error_code ec;
  const std::filesystem::path log_dir = std::filesystem::path(task.log_path).parent_path();
  if (!log_dir.empty()) std::filesystem::create_directories(log_dir, ec);
  os::Fd log(::open(task.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!log.valid()) {
    return io_error("cannot open task log '" + task.log_path + "': " + std::strerror(errno));
  }
  os::Fd write_end;
  KILN_RETURN_IF_ERROR(os::make_pipe(&p->out_, &write_end));
  if (::fcntl(p->out_.get(), F_SETFL, O_NONBLOCK) != 0) {
    return internal_error(std::string("cannot make a pipe non-blocking: ") + std::strerror(errno));
  }

  std::vector<std::string> argv = command;
  argv.push_back("--spec");
  argv.push_back(p->spec_path_);
  KILN_ASSIGN_OR_RETURN(TaskLaunch launch, task_launch(task, argv, p->spec_path_));
  os::SpawnOptions so;
  if (launch.sandboxed) {
    launch.wrapped.hand_on(&so);
  } else {
    so.argv = std::move(launch.argv);
  }
  so.env = std::move(launch.env);
  so.nice = task_nice_for(::getpriority(PRIO_PROCESS, 0));
  so.stdout_fd = write_end.get();
  so.stderr_fd = log.get();
  KILN_ASSIGN_OR_RETURN(p->child_, sandbox::start(launcher, so, launch.network, &p->net_));
  p->sandboxed_ = launch.sandboxed;
  // write_end and log close here: the child holds the only copies, so the
  // pipe reports EOF when it exits.
  return Result<std::unique_ptr<TaskProcess>>(std::move(p));
}

int task_nice_for(int worker_nice) { return worker_nice <= 0 ? 0 : std::min(worker_nice + 9, 19); }

TaskProcess::~TaskProcess() {
  child_.kill_and_reap();  // before the spec file goes: the task may still read it
  if (!spec_path_.empty()) ::unlink(spec_path_.c_str());
}

void TaskProcess::read_output() {
  char buf[1 << 16];
  while (out_.valid()) {
    ssize_t n = ::read(out_.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      log::warn("task " + std::to_string(task_.task_id) +
                ": cannot read its output: " + std::strerror(errno));
      out_.reset();
      return;
    }
    if (n == 0) {
      out_.reset();
      break;
    }
    pending_.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
      handle_line(pending_.substr(start, nl - start));
    }
    pending_.erase(0, start);
    if (pending_.size() > kMaxLineBytes) {
      log::warn("task " + std::to_string(task_.task_id) + ": dropping an output line over " +
                std::to_string(kMaxLineBytes) + " bytes");
      pending_.clear();
    }
  }
  // EOF: a last line without its newline still counts.
  if (!pending_.empty()) {
    handle_line(pending_);
    pending_.clear();
  }
}

void TaskProcess::handle_line(const std::string& line) {
  if (line.empty()) return;
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  // value() throws on a member of the wrong type: the line is then ignored.
  try {
    if (j.is_object()) {
      if (auto it = j.find("result"); it != j.end()) {
        result_ = *it;
        return;
      }
      if (auto it = j.find("error"); it != j.end() && it->is_object()) {
        error_ = ErrorLine{it->value("reason", "TASK_FAILED"), it->value("message", ""),
                           it->value("permanent", false)};
        return;
      }
      if (j.contains("tiles_done")) {
        TaskProgress p = progress_;
        p.tiles_done = j.value("tiles_done", p.tiles_done);
        p.bytes_read = j.value("bytes_read", p.bytes_read);
        p.bytes_written = j.value("bytes_written", p.bytes_written);
        progress_ = p;
        return;
      }
    }
  } catch (const json::exception&) {
  }
  log::warn("task " + std::to_string(task_.task_id) + ": ignoring an output line that is not " +
            "progress, a result or an error: " + line.substr(0, 200));
}

std::optional<os::ExitStatus> TaskProcess::poll_exit() {
  if (exit_) return exit_;
  auto r = child_.reap(/*wait=*/false);
  if (!r.is_ok()) {
    // Not our child (cannot happen unless someone else reaped it): treat it
    // as crashed rather than waiting forever.
    log::error("task " + std::to_string(task_.task_id) + ": " + r.status().message());
    exit_ = os::ExitStatus{true, 0, SIGKILL};
  } else if (!r->has_value()) {
    return std::nullopt;
  } else {
    exit_ = **r;
  }
  net_.stop();  // the sandbox's slirp4netns, if it had one
  // The child is gone and held the only write end: this reads to EOF.
  if (out_.valid()) {
    int flags = ::fcntl(out_.get(), F_GETFL);
    if (flags >= 0) ::fcntl(out_.get(), F_SETFL, flags & ~O_NONBLOCK);
    read_output();
  }
  return exit_;
}

void TaskProcess::signal(int sig, StopCause cause, std::chrono::milliseconds grace) {
  if (exit_) return;
  if (cause_ == StopCause::kNone || cause == StopCause::kShutdown) cause_ = cause;
  if (sig == SIGKILL) {
    killed_ = true;
  } else if (!kill_deadline_ms_) {
    kill_deadline_ms_ = clock_->now_ms() + grace.count();
  }
  // Sandboxed, the pid is bwrap's, which passes no signal on: SIGTERM goes
  // to the task inside, so it stops as it would unsandboxed.
  (void)(sandboxed_ ? sandbox::signal_command(&child_, sig) : child_.signal(sig));
}

bool TaskProcess::escalate(int64_t now_ms) {
  if (exit_ || killed_ || !kill_deadline_ms_ || now_ms < *kill_deadline_ms_) return false;
  log::warn("task " + std::to_string(task_.task_id) + " (pid " + std::to_string(pid()) +
            ") did not stop within its grace period; killing it");
  signal(SIGKILL, cause_, {});
  return true;
}

Completion TaskProcess::completion() const {
  Completion c;
  c.task_id = task_.task_id;
  c.attempt = task_.attempt;
  c.step_id = task_.step_id;
  if (exit_ && exit_->ok() && result_) {
    c.ok = true;
    c.result = *result_;
    // The task's last progress line comes right before its result; the
    // store keeps these as the finished task's share of the step's progress
    // (a task shorter than a heartbeat period would otherwise count 0).
    c.result["tiles_done"] = progress_.tiles_done;
    c.result["bytes_read"] = progress_.bytes_read;
    c.result["bytes_written"] = progress_.bytes_written;
    return c;
  }
  if (error_) {
    // A task stopped for the worker's own shutdown says CANCELLED; the step
    // was not cancelled, so the server must not read it that way.
    c.reason = cause_ == StopCause::kShutdown && error_->reason == "CANCELLED" ? "WORKER_STOPPED"
                                                                               : error_->reason;
    c.message = error_->message;
    // Only a task that ended on its own can know its failure would repeat;
    // one this worker stopped failed because it was stopped.
    c.permanent = cause_ == StopCause::kNone && error_->permanent;
    return c;
  }
  const std::string how = exit_ ? exit_->describe() : "an unknown status";
  switch (cause_) {
    case StopCause::kCancel:
      c.reason = "CANCELLED";
      c.message = "task process ended (" + how + ") after it was cancelled";
      break;
    case StopCause::kShutdown:
      c.reason = "WORKER_STOPPED";
      c.message = "task process ended (" + how + ") while its worker was stopping";
      break;
    case StopCause::kNone:
      c.reason = "TASK_CRASHED";
      c.message = "task process (pid " + std::to_string(pid()) + ") ended (" + how + ")" +
                  (exit_ && exit_->ok() ? " but reported no result" : " without reporting why") +
                  "; see the step's log";
      break;
  }
  return c;
}

bool TaskProcess::stopped_from_outside() const {
  if (cause_ != StopCause::kNone || !exit_) return false;
  if (error_) return error_->reason == "CANCELLED";
  auto is_stop = [](int sig) { return sig == SIGTERM || sig == SIGINT || sig == SIGHUP; };
  if (exit_->signaled) return is_stop(exit_->signal);
  // bwrap reports a command that died of signal N as exit status 128 + N.
  return sandboxed_ && exit_->code > 128 && is_stop(exit_->code - 128);
}

}  // namespace kiln::worker
