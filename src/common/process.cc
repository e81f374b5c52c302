#include "common/process.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <utility>

extern char** environ;

namespace kiln::os {
namespace {

// How a child is started: clone(CLONE_VM | CLONE_VFORK) and execve, as
// glibc's posix_spawn does it, plus what posix_spawn cannot do: resource
// limits applied between the two (a sandboxed task's limits cover bwrap and
// everything it starts, without an extra exec of prlimit(1) per task).
//
// The child shares our memory and runs on its own small stack until it
// execs, while the thread that cloned it waits. So it only makes raw system
// calls on data the parent prepared: no allocation, no libc function that a
// sanitizer intercepts (its interceptors would update the parent's state),
// and no signal handler may run in it: every signal is blocked across the
// clone and set to its default action in the child before it is unblocked.

// What the child does, prepared by the parent.
struct ChildPlan {
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const std::pair<int, int>* dups = nullptr;  // {ours, its number there}
  size_t dup_count = 0;
  const std::pair<int, rlimit>* limits = nullptr;
  size_t limit_count = 0;
  int nice = 0;
  // Written by the child when a step fails: the errno and which step.
  volatile int error = 0;
  volatile int failed_step = 0;
};

enum ChildStep { kSignals = 1, kDescriptors, kLimits, kExec };

// The kernel's struct sigaction for SIG_DFL: every field zero (SIG_DFL is 0,
// and the handler comes first on every architecture), large enough for any.
struct KernelSigaction {
  unsigned long words[4] = {0, 0, 0, 0};
};

// Records why the child could not exec and ends it. Not a lambda: a
// lambda would not carry child_main's no_sanitize attribute, and no
// sanitizer code may run in the child.
[[gnu::noinline]] __attribute__((no_sanitize("address", "thread", "undefined"))) int child_fail(
    ChildPlan* plan, int step) {
  plan->error = errno;
  plan->failed_step = step;
  ::syscall(SYS_exit_group, 127);
  return 127;
}

[[gnu::noinline]] __attribute__((no_sanitize("address", "thread", "undefined"))) int child_main(
    void* arg) {
  auto* plan = static_cast<ChildPlan*>(arg);
  const KernelSigaction dfl;
  for (int sig = 1; sig < 65; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    // EINVAL for numbers the kernel does not have: nothing to reset there.
    if (::syscall(SYS_rt_sigaction, sig, &dfl, nullptr, 8) != 0 && errno != EINVAL)
      return child_fail(plan, kSignals);
  }
  for (size_t i = 0; i < plan->dup_count; ++i) {
    if (::syscall(SYS_dup3, plan->dups[i].first, plan->dups[i].second, 0) < 0)
      return child_fail(plan, kDescriptors);
  }
  for (size_t i = 0; i < plan->limit_count; ++i) {
    if (::syscall(SYS_prlimit64, 0, plan->limits[i].first, &plan->limits[i].second, nullptr) != 0)
      return child_fail(plan, kLimits);
  }
  // Only costs priority when it fails; the child runs either way.
  if (plan->nice > 0) (void)::syscall(SYS_setpriority, PRIO_PROCESS, 0, plan->nice);
  const uint64_t none = 0;
  if (::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, 8) != 0)
    return child_fail(plan, kSignals);
  ::syscall(SYS_execve, plan->path, plan->argv, plan->envp);
  return child_fail(plan, kExec);
}

// libc's clone. ThreadSanitizer intercepts clone and treats the child as a
// fork (a copy of the parent's memory with its own sanitizer state), which
// breaks with CLONE_VM: its bookkeeping for the new "process" runs while
// the parent's threads still use the same memory. Ours shares the parent's
// memory until exec and runs no instrumented code, so sanitizer builds go
// around the interceptor to the function it wraps.
using CloneFn = int (*)(int (*)(void*), void*, int, void*, ...);
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define KILN_SANITIZED_BUILD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define KILN_SANITIZED_BUILD 1
#endif
#endif
CloneFn libc_clone() {
#ifdef KILN_SANITIZED_BUILD
  static const CloneFn fn = [] {
    void* sym = ::dlsym(RTLD_NEXT, "clone");
    return sym ? reinterpret_cast<CloneFn>(sym) : &::clone;
  }();
  return fn;
#else
  return &::clone;
#endif
}

const char* step_name(int step) {
  switch (step) {
    case kSignals:
      return "cannot reset its signals";
    case kDescriptors:
      return "cannot set up its descriptors";
    case kLimits:
      return "cannot set its resource limits";
    default:
      return "";
  }
}

// The descriptors the child gets, each copied above every target number
// first (close-on-exec), so no dup below clobbers one another still has to
// hand on. Closed again when the spawn returns.
class ChildDescriptors {
 public:
  void add(int ours, int theirs) { pending_.push_back({ours, theirs}); }
  Status prepare() {
    int floor = 64;
    for (const auto& [ours, theirs] : pending_) floor = std::max(floor, theirs + 1);
    for (const auto& [ours, theirs] : pending_) {
      held_.emplace_back(::fcntl(ours, F_DUPFD_CLOEXEC, floor));
      if (!held_.back().valid())
        return internal_error(std::string("fcntl: ") + std::strerror(errno));
      dups_.push_back({held_.back().get(), theirs});
    }
    return Status::ok();
  }
  const std::vector<std::pair<int, int>>& dups() const { return dups_; }

 private:
  std::vector<std::pair<int, int>> pending_, dups_;
  std::vector<Fd> held_;
};

class PosixLauncher final : public ProcessLauncher {
 public:
  Result<pid_t> spawn(const SpawnOptions& o) override {
    if (o.argv.empty()) return internal_error("spawn: empty argv");
    Fd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    Fd null_out(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    if (!null_in.valid() || !null_out.valid())
      return internal_error(std::string("cannot open /dev/null: ") + std::strerror(errno));
    ChildDescriptors fds;
    fds.add(null_in.get(), STDIN_FILENO);
    fds.add(o.stdout_fd >= 0 ? o.stdout_fd : null_out.get(), STDOUT_FILENO);
    fds.add(o.stderr_fd >= 0 ? o.stderr_fd : null_out.get(), STDERR_FILENO);
    for (const auto& [ours, theirs] : o.fds) fds.add(ours, theirs);
    KILN_RETURN_IF_ERROR(fds.prepare());

    // Never above the hard limit we have ourselves (only root may raise
    // it): a tighter limit is still the limit asked for.
    std::vector<std::pair<int, rlimit>> limits;
    for (const ResourceLimit& l : o.rlimits) {
      rlimit now{};
      if (::getrlimit(l.resource, &now) != 0) {
        return internal_error("getrlimit(" + std::to_string(l.resource) +
                              "): " + std::strerror(errno));
      }
      rlim_t v = static_cast<rlim_t>(l.value);
      if (now.rlim_max != RLIM_INFINITY && v > now.rlim_max) v = now.rlim_max;
      limits.push_back({l.resource, rlimit{v, v}});
    }

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

    ChildPlan plan;
    plan.path = argv[0];
    plan.argv = argv.data();
    plan.envp = env;
    plan.dups = fds.dups().data();
    plan.dup_count = fds.dups().size();
    plan.limits = limits.data();
    plan.limit_count = limits.size();
    plan.nice = o.nice;

    constexpr size_t kStack = 64 << 10;
    void* stack = ::mmap(nullptr, kStack, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED)
      return internal_error(std::string("cannot map a stack to start a child: ") +
                            std::strerror(errno));
    sigset_t all, old;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    // Returns once the child has exec'd or exited (CLONE_VFORK).
    const pid_t pid = libc_clone()(child_main, static_cast<char*>(stack) + kStack,
                                   CLONE_VM | CLONE_VFORK | SIGCHLD, &plan);
    const int clone_errno = errno;
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    ::munmap(stack, kStack);
    if (pid < 0) {
      return internal_error("cannot start '" + o.argv[0] + "': " + std::strerror(clone_errno));
    }
    if (plan.failed_step != 0) {
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      const std::string why = std::strerror(plan.error);
      if (plan.failed_step == kExec)
        return internal_error("cannot start '" + o.argv[0] + "': " + why);
      return internal_error("cannot start '" + o.argv[0] + "': " + step_name(plan.failed_step) +
                            ": " + why);
    }
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
