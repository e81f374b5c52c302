#include "common/process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

extern char** environ;

namespace kiln::os {
namespace {

// posix_spawn's attributes: the child starts with no signal blocked and every
// signal at its default action. Without this it would inherit the parent's
// mask and ignored signals across exec: `kiln serve` blocks SIGTERM (it
// waits for it on a thread), and a worker with SIGTERM blocked cannot be
// asked to stop.
class SpawnAttr {
 public:
  SpawnAttr() {
    inited_ = ::posix_spawnattr_init(&attr_) == 0;
    if (!inited_) return;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    ok_ = ::posix_spawnattr_setsigmask(&attr_, &none) == 0 &&
          ::posix_spawnattr_setsigdefault(&attr_, &all) == 0 &&
          ::posix_spawnattr_setflags(&attr_, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) == 0;
  }
  ~SpawnAttr() {
    if (inited_) ::posix_spawnattr_destroy(&attr_);
  }
  SpawnAttr(const SpawnAttr&) = delete;
  SpawnAttr& operator=(const SpawnAttr&) = delete;
  bool ok() const { return ok_; }
  const posix_spawnattr_t* get() const { return &attr_; }

 private:
  posix_spawnattr_t attr_;
  bool inited_ = false;
  bool ok_ = false;
};

// posix_spawn's file actions, released however spawn() returns.
class FileActions {
 public:
  FileActions() { ok_ = ::posix_spawn_file_actions_init(&fa_) == 0; }
  ~FileActions() {
    if (ok_) ::posix_spawn_file_actions_destroy(&fa_);
  }
  FileActions(const FileActions&) = delete;
  FileActions& operator=(const FileActions&) = delete;
  bool ok() const { return ok_; }
  posix_spawn_file_actions_t* get() { return &fa_; }

 private:
  posix_spawn_file_actions_t fa_;
  bool ok_ = false;
};

class PosixLauncher final : public ProcessLauncher {
 public:
  Result<pid_t> spawn(const SpawnOptions& o) override {
    if (o.argv.empty()) return internal_error("spawn: empty argv");
    FileActions fa;
    if (!fa.ok()) return internal_error("posix_spawn_file_actions_init failed");
    int rc = ::posix_spawn_file_actions_addopen(fa.get(), STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    auto redirect = [&](int fd, int target) {
      if (rc != 0) return;
      rc = fd >= 0 ? ::posix_spawn_file_actions_adddup2(fa.get(), fd, target)
                   : ::posix_spawn_file_actions_addopen(fa.get(), target, "/dev/null", O_WRONLY, 0);
    };
    redirect(o.stdout_fd, STDOUT_FILENO);
    redirect(o.stderr_fd, STDERR_FILENO);
    // Copied above every target number first, so no dup2 below clobbers a
    // descriptor another pair still has to hand on.
    std::vector<Fd> high;
    for (const auto& [ours, theirs] : o.fds) {
      if (rc != 0) break;
      high.emplace_back(::fcntl(ours, F_DUPFD_CLOEXEC, 64));
      if (!high.back().valid())
        return internal_error(std::string("fcntl: ") + std::strerror(errno));
      rc = ::posix_spawn_file_actions_adddup2(fa.get(), high.back().get(), theirs);
    }
    if (rc != 0)
      return internal_error(std::string("posix_spawn file actions: ") + std::strerror(rc));

    std::vector<char*> argv;
    for (const auto& a : o.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    char** env = environ;
    if (!o.env.empty()) {
      for (const auto& e : o.env) envp.push_back(const_cast<char*>(e.c_str()));
      envp.push_back(nullptr);
      env = envp.data();
    }
    SpawnAttr attr;
    if (!attr.ok()) return internal_error("posix_spawnattr setup failed");
    pid_t pid = 0;
    rc = ::posix_spawn(&pid, argv[0], fa.get(), attr.get(), argv.data(), env);
    if (rc != 0) {
      return internal_error("cannot start '" + o.argv[0] + "': " + std::strerror(rc));
    }
    // glibc's posix_spawn returns once the child has exec'd: it is only
    // starting to load its libraries, and from now on does so at `nice`.
    // A failure only costs priority; the child runs either way.
    if (o.nice > 0) (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(pid), o.nice);
    return pid;
  }

  Status signal(pid_t pid, int sig) override {
    if (pid <= 0) return internal_error("signal: bad pid " + std::to_string(pid));
    if (::kill(pid, sig) != 0 && errno != ESRCH) {
      return internal_error("cannot signal process " + std::to_string(pid) + ": " +
                            std::strerror(errno));
    }
    return Status::ok();
  }

  Result<std::optional<ExitStatus>> reap(pid_t pid, bool wait) override {
    int status = 0;
    for (;;) {
      pid_t r = ::waitpid(pid, &status, wait ? 0 : WNOHANG);
      if (r == pid) return std::optional<ExitStatus>(ExitStatus::from_wait_status(status));
      if (r == 0) return std::optional<ExitStatus>();
      if (errno == EINTR) continue;
      return internal_error("cannot wait for process " + std::to_string(pid) + ": " +
                            std::strerror(errno));
    }
  }
};

}  // namespace

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = o.release();
  }
  return *this;
}

int Fd::release() { return std::exchange(fd_, -1); }

void Fd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status Fd::close(const std::string& path) {
  if (fd_ < 0) return Status::ok();
  // Linux releases the descriptor even when close() fails, so no retry.
  if (::close(release()) != 0) {
    return io_error("cannot close '" + path + "': " + std::strerror(errno));
  }
  return Status::ok();
}

ExitStatus ExitStatus::from_wait_status(int status) {
  ExitStatus s;
  if (WIFSIGNALED(status)) {
    s.signaled = true;
    s.signal = WTERMSIG(status);
  } else if (WIFEXITED(status)) {
    s.code = WEXITSTATUS(status);
  }
  return s;
}

std::string ExitStatus::describe() const {
  if (!signaled) return "exit status " + std::to_string(code);
  const char* name = ::sigabbrev_np(signal);
  return "killed by signal " + std::to_string(signal) +
         (name ? " (SIG" + std::string(name) + ")" : std::string());
}

ProcessLauncher& posix_launcher() {
  static PosixLauncher launcher;
  return launcher;
}

Result<Child> ProcessLauncher::start(const SpawnOptions& options) {
  KILN_ASSIGN_OR_RETURN(pid_t pid, spawn(options));
  return Child(this, pid);
}

Child::Child(Child&& o) noexcept : launcher_(o.launcher_), pid_(o.pid_), reaped_(o.reaped_) {
  o.release();
}

Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    kill_and_reap();
    launcher_ = o.launcher_;
    pid_ = o.pid_;
    reaped_ = o.reaped_;
    o.release();
  }
  return *this;
}

Status Child::signal(int sig) {
  if (!running()) return Status::ok();
  return launcher_->signal(pid_, sig);
}

Result<std::optional<ExitStatus>> Child::reap(bool wait) {
  if (!running()) return internal_error("reap: no child process to wait for");
  auto r = launcher_->reap(pid_, wait);
  if (!r.is_ok() || r->has_value()) reaped_ = true;
  return r;
}

Result<ExitStatus> Child::wait() {
  KILN_ASSIGN_OR_RETURN(std::optional<ExitStatus> st, reap(/*wait=*/true));
  if (!st) return internal_error("process " + std::to_string(pid_) + " has no exit status");
  return *st;
}

void Child::kill_and_reap() {
  if (!running()) return;
  (void)launcher_->signal(pid_, SIGKILL);
  (void)launcher_->reap(pid_, /*wait=*/true);
  reaped_ = true;
}

pid_t Child::release() {
  const pid_t pid = pid_;
  launcher_ = nullptr;
  pid_ = 0;
  reaped_ = false;
  return pid;
}

std::vector<std::string> environment_with(const std::string& name, const std::string& value) {
  std::vector<std::string> env;
  const std::string prefix = name + "=";
  for (char** e = environ; e && *e; ++e) {
    if (std::strncmp(*e, prefix.c_str(), prefix.size()) != 0) env.emplace_back(*e);
  }
  env.push_back(prefix + value);
  return env;
}

Result<std::string> self_executable() {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return internal_error("cannot resolve /proc/self/exe: " + ec.message());
  return p.string();
}

Status make_pipe(Fd* read_end, Fd* write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return internal_error(std::string("cannot create a pipe: ") + std::strerror(errno));
  }
  *read_end = Fd(fds[0]);
  *write_end = Fd(fds[1]);
  return Status::ok();
}

void stop_with_parent_or_signal(void (*handler)(int)) {
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  struct sigaction sa = {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  ::pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
}

}  // namespace kiln::os
