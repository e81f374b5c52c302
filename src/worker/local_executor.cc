#include "worker/local_executor.h"

#include <fcntl.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "common/log.h"

namespace kiln::worker {
namespace {

constexpr char kTokenVariable[] = "KILN_WORKER_TOKEN";

}  // namespace

LocalExecutor::LocalExecutor(LocalExecutorOptions options)
    : options_(std::move(options)),
      launcher_(options_.launcher ? options_.launcher : &posix_launcher()) {}

LocalExecutor::~LocalExecutor() {
  bool running;
  {
    std::lock_guard<std::mutex> lock(mu_);
    running = started_ && !stopped_;
  }
  if (running) stop(std::chrono::milliseconds(0));
}

Status LocalExecutor::start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) return internal_error("the local executor was started already");
  if (options_.workers < 1) return invalid_argument("executor: workers must be >= 1");
  command_ = options_.command;
  if (command_.empty()) {
    KILN_ASSIGN_OR_RETURN(std::string self, self_executable());
    command_ = {self,       "worker",
                "--server", options_.server_url,
                "--slots",  std::to_string(options_.slots_per_worker)};
  }
  const std::filesystem::path logs = std::filesystem::path(options_.state_dir) / "logs";
  std::error_code ec;
  std::filesystem::create_directories(logs, ec);
  if (ec) return io_error("cannot create '" + logs.string() + "': " + ec.message());

  started_ = true;
  slots_.resize(static_cast<size_t>(options_.workers));
  for (size_t i = 0; i < slots_.size(); ++i) {
    slots_[i].number = static_cast<int>(i) + 1;
    Status st = start_slot(&slots_[i]);
    if (!st.is_ok()) {
      // Nothing half-started: the server reports the error and exits.
      for (Slot& s : slots_) {
        if (s.pid == 0) continue;
        (void)launcher_->signal(s.pid, SIGKILL);
        (void)launcher_->reap(s.pid, /*wait=*/true);
        s.pid = 0;
      }
      stopped_ = true;
      return st;
    }
  }
  log::info("started " + std::to_string(slots_.size()) + " local workers with " +
            std::to_string(options_.slots_per_worker) + " slots each");
  return Status::ok();
}

Status LocalExecutor::start_slot(Slot* slot) {
  const std::string log_path = (std::filesystem::path(options_.state_dir) / "logs" /
                                ("worker-" + std::to_string(slot->number) + ".log"))
                                   .string();
  Fd log_fd(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!log_fd.valid()) {
    return io_error("cannot open worker log '" + log_path + "': " + std::strerror(errno));
  }
  SpawnOptions so;
  so.argv = command_;
  so.env = environment_with(kTokenVariable, options_.token);
  so.stdout_fd = log_fd.get();
  so.stderr_fd = log_fd.get();
  KILN_ASSIGN_OR_RETURN(pid_t pid, launcher_->spawn(so));
  slot->pid = pid;
  slot->started = Clock::now();
  log::info("worker " + std::to_string(slot->number) + " started as pid " + std::to_string(pid) +
            ", log " + log_path);
  return Status::ok();
}

std::vector<int64_t> LocalExecutor::reap_exited(bool wait) {
  std::vector<int64_t> gone;
  const Clock::time_point now = Clock::now();
  for (Slot& s : slots_) {
    if (s.pid == 0) continue;
    auto r = launcher_->reap(s.pid, wait);
    if (!r.is_ok()) {
      // Not our child any more (reaped elsewhere): count it as gone.
      log::error(r.status().message());
    } else if (!r->has_value()) {
      continue;
    } else {
      // Expected while stopping; a surprise otherwise.
      log::write(stopped_ ? log::Level::kInfo : log::Level::kWarn,
                 "worker " + std::to_string(s.number) + " (pid " + std::to_string(s.pid) +
                     ") ended: " + (*r)->describe());
    }
    gone.push_back(s.pid);
    s.pid = 0;
    const bool young = now - s.started < options_.young;
    s.backoff = young ? std::clamp(s.backoff * 2, options_.min_backoff, options_.max_backoff)
                      : options_.min_backoff;
    s.next_start = now + s.backoff;
  }
  return gone;
}

void LocalExecutor::tick() {
  std::vector<int64_t> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_ || stopped_) return;
    gone = reap_exited(/*wait=*/false);
    const Clock::time_point now = Clock::now();
    for (Slot& s : slots_) {
      if (s.pid != 0 || now < s.next_start) continue;
      Status st = start_slot(&s);
      if (!st.is_ok()) {
        log::error("cannot restart worker " + std::to_string(s.number) + ": " + st.message());
        s.backoff = std::clamp(s.backoff * 2, options_.min_backoff, options_.max_backoff);
        s.next_start = now + s.backoff;
        continue;
      }
      ++restarts_;
    }
  }
  if (options_.on_worker_exit)
    for (int64_t pid : gone) options_.on_worker_exit(pid);
}

void LocalExecutor::stop(std::chrono::milliseconds grace) {
  std::vector<int64_t> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_ || stopped_) return;
    stopped_ = true;
    for (const Slot& s : slots_)
      if (s.pid != 0) (void)launcher_->signal(s.pid, SIGTERM);
    const Clock::time_point deadline = Clock::now() + grace;
    for (;;) {
      for (int64_t pid : reap_exited(/*wait=*/false)) gone.push_back(pid);
      bool any = std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.pid; });
      if (!any || Clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (const Slot& s : slots_) {
      if (s.pid == 0) continue;
      log::warn("worker " + std::to_string(s.number) + " (pid " + std::to_string(s.pid) +
                ") did not stop within the grace period; killing it");
      (void)launcher_->signal(s.pid, SIGKILL);
    }
    for (int64_t pid : reap_exited(/*wait=*/true)) gone.push_back(pid);
  }
  if (options_.on_worker_exit)
    for (int64_t pid : gone) options_.on_worker_exit(pid);
}

ExecutorStatus LocalExecutor::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  ExecutorStatus st;
  st.kind = "local";
  st.workers_wanted = options_.workers;
  st.slots_per_worker = options_.slots_per_worker;
  st.restarts = restarts_;
  for (const Slot& s : slots_) {
    if (s.pid == 0) continue;
    ++st.workers_running;
    st.pids.push_back(s.pid);
  }
  return st;
}

}  // namespace kiln::worker
