// Child processes: the seam through which workers start task processes and
// the server's executor starts workers. Spawning is posix_spawn of an argv,
// never a shell, so nothing in a definition or a path is ever interpreted.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::worker {

// Owns a file descriptor; closes it on destruction.
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
  int release();
  void reset();

 private:
  int fd_ = -1;
};

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

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is the executable's path
  // The child's whole environment ("NAME=value"); empty: a copy of ours.
  std::vector<std::string> env;
  // Descriptors for the child's stdout and stderr (-1: /dev/null). They are
  // dup2-ed into the child; the caller keeps (and closes) its own.
  int stdout_fd = -1;
  int stderr_fd = -1;
};

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
};

// posix_spawn, kill(2) and waitpid(2). One shared instance.
ProcessLauncher& posix_launcher();

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

// A pipe whose ends are close-on-exec (a child sees only what it is handed).
Status make_pipe(Fd* read_end, Fd* write_end);

}  // namespace kiln::worker
