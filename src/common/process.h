// The OS seam for descriptors and child processes: one owner type for a file
// descriptor (Fd), one for a child process (Child), and the ProcessLauncher
// interface through which the worker, the local executor, the Slurm client
// and the commands start, signal and reap children. Spawning is an execve of
// an argv (clone with CLONE_VFORK, as posix_spawn does), never a shell, so
// nothing in a definition or a path is ever interpreted.
//
// Namespace kiln::os: the names here (Fd, Child, make_pipe, environment_with)
// are generic, and `os::` at a call site says that the line talks to the
// operating system, as `log::` does for the logger.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace kiln::os {

// Owns a file descriptor; closes it on destruction. Move-only.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership; the caller closes the returned descriptor.
  int release();
  // Closes now, ignoring close(2)'s error (for read ends and the like).
  void reset();
  // Closes now and reports close(2)'s error as kIOError naming `path` (a
  // write error may surface only here, e.g. on NFS). Ok when not open.
  Status close(const std::string& path);

 private:
  int fd_ = -1;
};

// A pipe whose ends are close-on-exec (a child sees only what it is handed).
Status make_pipe(Fd* read_end, Fd* write_end);

// How a child ended.
struct ExitStatus {
  bool signaled = false;
  int code = 0;    // exit code when !signaled
  int signal = 0;  // terminating signal when signaled
  bool ok() const { return !signaled && code == 0; }
  // "exit status 3", "killed by signal 9 (SIGKILL)".
  std::string describe() const;
  static ExitStatus from_wait_status(int status);
};

// A resource limit for a child (setrlimit(2)'s resource, e.g. RLIMIT_AS),
// soft and hard alike.
struct ResourceLimit {
  int resource = 0;
  uint64_t value = 0;
};

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is the executable's path
  // The child's whole environment ("NAME=value"); empty: a copy of ours.
  std::vector<std::string> env;
  // Descriptors for the child's stdout and stderr (-1: /dev/null). They are
  // dup2-ed into the child; the caller keeps (and closes) its own.
  int stdout_fd = -1;
  int stderr_fd = -1;
  // 1-19: the child runs at this nice level from its first instruction on
  // (set before it execs), so a burst of starting children yields the CPU
  // to this process. 0: ours.
  int nice = 0;
  // More descriptors for the child: {ours, its number there}, dup2-ed after
  // the three above (so {fd, 0} replaces stdin). Ours stay ours.
  std::vector<std::pair<int, int>> fds;
  // Set in the child before it execs, so they bind the program and all it
  // starts from its first instruction. A value above our own hard limit is
  // lowered to it (only root may raise a hard limit).
  std::vector<ResourceLimit> rlimits;
};

class Child;

// Starts, signals and reaps children. Implementations are thread-safe.
class ProcessLauncher {
 public:
  virtual ~ProcessLauncher() = default;
  // Starts argv[0] (a path, not searched in PATH) with stdin on /dev/null,
  // no signal blocked and every signal at its default action (whatever the
  // calling thread blocks or this process ignores).
  // kInternal naming the program if it cannot be started.
  virtual Result<pid_t> spawn(const SpawnOptions& options) = 0;
  // Sends `sig` to `pid`. A child that is already gone is not an error.
  virtual Status signal(pid_t pid, int sig) = 0;
  // The child's exit status once it has ended (reaping it), nullopt while it
  // runs. With `wait`, blocks until it ends.
  virtual Result<std::optional<ExitStatus>> reap(pid_t pid, bool wait) = 0;

  // spawn(), with the child owned by the returned Child.
  Result<Child> start(const SpawnOptions& options);
};

// clone + execve, kill(2) and waitpid(2). One shared instance.
ProcessLauncher& posix_launcher();

// Owns one child process started through a ProcessLauncher, from start()
// until it is reaped. A Child dropped while its process may still run
// SIGKILLs and reaps it, so no child outlives its owner unwatched and none
// is left a zombie; release() opts out. Once reaped, signal() does nothing
// (the pid may belong to another process by then) and pid() still names it
// for messages. Move-only; not thread-safe (one owner at a time).
class Child {
 public:
  Child() = default;
  Child(ProcessLauncher* launcher, pid_t pid) : launcher_(launcher), pid_(pid) {}
  Child(Child&& o) noexcept;
  Child& operator=(Child&& o) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() { kill_and_reap(); }

  // The process id; kept after the child was reaped. 0 for an empty Child.
  pid_t pid() const { return pid_; }
  // Started and not yet reaped (it may have exited already).
  bool running() const { return pid_ > 0 && !reaped_; }

  // Sends `sig` while running(); ok (and nothing sent) once reaped.
  Status signal(int sig);
  // The exit status once the child has ended, reaping it; nullopt while it
  // runs. With `wait`, blocks until it ends. An error (it is not our child:
  // someone else reaped it) ends ownership too: running() is false after
  // either. REQUIRES: running().
  Result<std::optional<ExitStatus>> reap(bool wait);
  // reap(true): blocks until the child ends; its exit status.
  // REQUIRES: running().
  Result<ExitStatus> wait();
  // SIGKILL and a blocking reap, if running(). Errors are ignored: this is
  // the destructor's last resort.
  void kill_and_reap();
  // Gives up ownership without signalling; the caller reaps the pid.
  pid_t release();

 private:
  ProcessLauncher* launcher_ = nullptr;
  pid_t pid_ = 0;
  bool reaped_ = false;
};

// The environment of this process with NAME set to value (replaced if set).
std::vector<std::string> environment_with(const std::string& name, const std::string& value);

// The path of this process's own executable (/proc/self/exe resolved), so a
// process can start another copy of itself.
Result<std::string> self_executable();

// For a process `kiln serve` runs (worker, task): it gets SIGTERM when its
// parent dies (PR_SET_PDEATHSIG), and SIGTERM/SIGINT call `handler`. They
// are unblocked too: a parent that blocks them (as `kiln serve` does on its
// threads) would otherwise pass on a mask they never arrive through.
void stop_with_parent_or_signal(void (*handler)(int));

}  // namespace kiln::os
