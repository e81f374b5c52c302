// The sandbox in which tenant input is opened (docs/security.md): task
// processes and the planner at submit run under Debian's bubblewrap as an
// unprivileged user with no capabilities, in their own mount, pid, ipc, uts
// and network namespaces (the network reaches out only for remote sources,
// common/sandbox_net.h),
// seeing only what a View lists, with a scrubbed environment and rlimits.
//
// This file only builds argv, rlimits and environments and probes the
// tools; the caller spawns through os::ProcessLauncher (common/process.h),
// which sets the rlimits between clone and exec, so they bind the whole
// chain (each program execs the next, so the pid stays the same):
//
//   bwrap <namespaces> <binds>           the view; --die-with-parent
//   [setpriv --reuid 65534 ...]          only when we are root (see wrap())
//   command...
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/process.h"
#include "common/status.h"

namespace kiln::sandbox {

// The user and group a sandboxed process runs as (Debian's nobody/nogroup).
constexpr uid_t kUid = 65534;
constexpr gid_t kGid = 65534;

enum class Mode {
  kBwrap,  // the default: every tenant process sandboxed
  kNone,   // operator opt-out for development ([sandbox] mode = "none"); loud
};

// Resource limits of one sandboxed process (os::SpawnOptions::rlimits).
struct Limits {
  // RLIMIT_AS. Virtual, not resident: glibc reserves 64 MiB of address
  // space per malloc arena and thread, so this is far above what a task
  // touches (a partition of the Landsat scene peaks under 1 GiB virtual).
  int64_t address_space_mb = 8192;
  int64_t cpu_seconds = 3600;   // RLIMIT_CPU, summed over the task's threads
  int64_t file_size_mb = 4096;  // RLIMIT_FSIZE: the largest file it may write
  int64_t tmp_mb = 1024;        // the size of its tmpfs /tmp (memory-backed)
};

// The operator's sandbox settings ([sandbox] in kiln.toml). The server
// sends them to its workers with every lease (policy_to_json).
struct Policy {
  Mode mode = Mode::kBwrap;
  Limits limits;
  // Names of variables a sandboxed process gets from the launching
  // process's environment, beyond the fixed safe set (scrub_env). Every
  // environment's tasks get them: credentials belong here only when every
  // tenant may use them.
  std::vector<std::string> pass_env;
  // The GDAL drivers tenant rasters may be opened with, when the operator
  // widened raster::tenant_raster_drivers()'s default ([sandbox]
  // tenant_drivers; only with the sandbox on). Empty: the default. Handed
  // to sandboxed processes as KILN_TENANT_DRIVERS (scrub_env).
  std::vector<std::string> tenant_drivers;
  // The planner at submit: wall-clock deadline and its own CPU limit.
  int64_t plan_timeout_seconds = 30;
  int64_t plan_cpu_seconds = 60;
};

// The variable that carries Policy::tenant_drivers into a sandboxed
// process (read by raster::tenant_raster_drivers()).
inline constexpr const char* kTenantDriversVariable = "KILN_TENANT_DRIVERS";

// False in sanitizer builds (make tsan, make asan): their runtime reserves
// terabytes of address space up front, so an RLIMIT_AS would kill every
// sandboxed kiln at start. wrap() then leaves that one limit out.
bool address_space_limit_applies();

nlohmann::json policy_to_json(const Policy& p);
// kInvalidArgument naming the field on any defect.
Result<Policy> policy_from_json(const nlohmann::json& j);
const char* mode_name(Mode m);

// What one sandboxed process may see besides the system's read-only parts
// (/usr, the /lib links, /etc/ld.so.cache; /etc/ssl and the resolver files
// with network) and its own /tmp, /proc and /dev. Paths are absolute and
// bound at the same path inside.
// Bound in this order, so the narrower wins where they nest: the source
// roots, then the writable directories (a layer directory inside a root
// stays writable), then the single read-only files (spec, executable).
struct View {
  std::vector<std::string> roots;       // read-only; missing ones are skipped
  std::vector<std::string> read_write;  // must exist
  std::vector<std::string> read_only;   // read-only; missing ones are skipped
  // Read-only files shown at another path inside ({host path, inside
  // path}), bound last: a file the server wrote under its own private
  // directories (the planner's definition in state_dir, mode 0700) stays
  // readable whatever the host's parents allow or the roots cover.
  std::vector<std::pair<std::string, std::string>> read_only_at;
  bool network = false;
};

// True for a root GDAL reaches over the network (/vsis3/, /vsicurl/,
// https://, ...): a source under it needs a way out (sandbox_net.h).
bool is_remote_root(const std::string& root);
// Adds an environment's source roots to `view`: local ones to view->roots (the
// directory a trailing-slash root names, else the path itself), remote ones
// turn the network on. /vsi prefixes that are neither (/vsizip/...) add
// nothing: what they wrap must be under a local root anyway.
void add_source_roots(const std::vector<std::string>& roots, View* view);

// Where the tools are; tests may point elsewhere.
struct Tools {
  std::string bwrap = "/usr/bin/bwrap";
  std::string setpriv = "/usr/bin/setpriv";
};

// A command wrapped in the sandbox: what to spawn, and the rlimits to spawn
// it with (os::SpawnOptions::rlimits; RLIMIT_AS, _CPU, _FSIZE and _CORE),
// which bind bwrap and everything it starts.
struct Wrapped {
  std::vector<std::string> argv;
  std::vector<os::ResourceLimit> rlimits;
  // The seccomp program bwrap reads (--seccomp kSeccompFd); hand it on with
  // hand_on(). One per spawn: bwrap reads it to the end.
  os::Fd seccomp;

  // Sets `so`'s argv and rlimits and hands on the seccomp program. Keep
  // this Wrapped alive until the spawn has returned.
  void hand_on(os::SpawnOptions* so) const;
};

// The descriptor number bwrap reads its seccomp program from.
inline constexpr int kSeccompFd = 5;

// The seccomp program (classic BPF, as bwrap --seccomp takes it) every
// sandboxed command runs under: ioctl TIOCSTI and TIOCLINUX, which push
// input into a terminal or read it, fail with EPERM, and system calls of
// another ABI (i386 and x32 on x86_64) with ENOSYS; everything else is
// allowed. It stands in for bwrap's --new-session (docs/security.md): a
// new session is a new scheduling autogroup on Linux, whose CPU share is
// that of a nice-0 process whatever the task's nice, so hundreds of tasks
// would starve `kiln serve` and its workers. A memfd positioned at 0.
Result<os::Fd> seccomp_program();

// The argv that runs `command` (argv[0] an absolute path) inside the
// sandbox. `as_root`: the caller is uid 0. bwrap then runs privileged
// without a user namespace (a user namespace created by root maps the
// sandbox user to uid 0 on the host) and setpriv drops to kUid/kGid, no
// groups, no capabilities, no_new_privs before `command` runs; otherwise
// bwrap maps the caller's uid to kUid in a new user namespace (the task's
// files are then the caller's on the host). `limits` are applied to the
// whole chain through Wrapped::rlimits. With view.network, start the argv
// with sandbox::start() (sandbox_net.h), which hands bwrap its handshake
// descriptors. An error only when the seccomp program cannot be made (no
// descriptor left). REQUIRES: policy.mode == kBwrap.
Result<Wrapped> wrap(const View& view, const Limits& limits,
                     const std::vector<std::string>& command, bool as_root,
                     const Tools& tools = {});

// How a stop signal reaches what a sandbox runs. The pid its caller holds is
// the outer bwrap's, which forwards no signal: SIGTERM would kill it, its
// init would die with it (--die-with-parent) and the command with them,
// without the command's own handler running. And the init, bwrap as pid 1
// of the new pid namespace, ignores signals it has no handler for. So:
//
// Sends `sig` to the command `sandbox` runs (a Child started from wrap()'s
// argv): to the children of bwrap's init in the new pid namespace (the
// command, and any orphan of it the init adopted), each checked to be that
// init's child, with the init checked to be the outer process's child, at
// the moment it is signalled (a pidfd, so a pid reused meanwhile is never
// hit). If the command is exited it ends as it would on its own: its exit
// status becomes the outer process's (bwrap passes it on; 128 + N for a
// signal N). SIGKILL, and any signal while no command runs inside yet (bwrap
// still setting up; or /proc unreadable), go to the outer process, whose
// death ends the whole sandbox. Ok and nothing sent once `sandbox` was
// reaped. REQUIRES: sandbox != nullptr.
Status signal_command(os::Child* sandbox, int sig);
// What signal_command() does besides the fallback: sends `sig` to the
// command inside the sandbox whose outer process is `outer` (our child, not
// yet reaped). Returns how many processes it signalled; 0 when there is no
// sandboxed command below `outer` (none yet, none any more, not a sandbox).
int signal_inside(pid_t outer, int sig);

// A sandboxed process's whole environment, from `ours` ("NAME=value"):
// PATH, HOME and TMPDIR fixed, LANG/LC_ALL/TZ, KILN_LOG_LEVEL and GDAL's and
// PROJ's data locations copied, plus the variables policy.pass_env names.
// Nothing else: no worker token, no AWS keys, no config path.
std::vector<std::string> scrub_env(const Policy& policy, const std::vector<std::string>& ours);
// This process's environment as "NAME=value" strings.
std::vector<std::string> current_env();

// Runs /bin/true in the sandbox the way tasks run (a minimal view, the
// policy's limits); ok when it exits 0. The error names the missing tool or
// bwrap's own complaint, so `kiln serve` can refuse to start.
Status probe(const Policy& policy, os::ProcessLauncher* launcher, const Tools& tools = {});

// Makes `dir` (and its parents below `base`) exist, owned by kUid/kGid when
// we are root, so a sandboxed process may write into it. Walks from `base`
// with O_NOFOLLOW on every component and chowns through the descriptor, so
// a symlink a sandboxed process planted earlier cannot redirect it. `base`
// is trusted (the operator's) and is not chowned. REQUIRES: dir is under base.
Status prepare_writable_dir(const std::string& base, const std::string& dir, bool chown_to_sandbox);
// fchown of an existing regular file `name` in `dir` to the sandbox user,
// if it exists (O_NOFOLLOW; anything but a regular file is left alone).
Status chown_file_if_present(const std::string& dir, const std::string& name);

}  // namespace kiln::sandbox
