#include "common/sandbox.h"

#include "common/sandbox_net.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>

extern char** environ;

namespace kiln::sandbox {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// What bwrap names the host inside; anything but the host's own, so code
// that trusts "same host, pid gone" (the catalog's stale-staging cleanup)
// never judges host processes from inside a pid namespace.
constexpr const char* kHostname = "kiln-sandbox";

// The system parts every sandboxed process needs, read-only: the kiln
// binary's shared libraries, GDAL's and PROJ's data (/usr/share/gdal,
// /usr/share/proj) are all under /usr on Debian.
constexpr std::array<const char*, 6> kLibLinks = {"/bin",   "/sbin",  "/lib",
                                                  "/lib32", "/lib64", "/libx32"};
// /etc/alternatives: Debian resolves some of GDAL's libraries (libblas,
// liblapack) through its symlinks.
constexpr std::array<const char*, 3> kSystemFiles = {"/etc/ld.so.cache", "/etc/localtime",
                                                     "/etc/alternatives"};
// Only with the network: name resolution and the CA bundle for https.
constexpr std::array<const char*, 6> kNetworkFiles = {"/etc/resolv.conf",   "/etc/hosts",
                                                      "/etc/nsswitch.conf", "/etc/gai.conf",
                                                      "/etc/ssl",           "/etc/ca-certificates"};

// Variables a sandboxed process keeps: locale and time zone, the log level,
// where GDAL and PROJ find their data. None carries a secret.
constexpr std::array<std::string_view, 8> kKeptVariables = {
    "LANG",      "LC_ALL",    "TZ",       "KILN_LOG_LEVEL",
    "GDAL_DATA", "PROJ_DATA", "PROJ_LIB", "GDAL_CACHEMAX"};

constexpr std::array<std::string_view, 14> kRemotePrefixes = {
    "/vsicurl/", "/vsis3/",      "/vsigs/", "/vsiaz/",  "/vsiadls/", "/vsioss/", "/vsiswift/",
    "/vsihdfs/", "/vsiwebhdfs/", "http://", "https://", "s3://",     "gs://",    "ftp://"};

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string var_name(const std::string& entry) { return entry.substr(0, entry.find('=')); }

Status read_limit(const json& j, const char* key, int64_t lo, int64_t* out) {
  auto it = j.find(key);
  if (it == j.end()) return Status::ok();
  if (!it->is_number_integer() || it->get<int64_t>() < lo) {
    return invalid_argument(std::string("sandbox.") + key +
                            ": must be an integer >= " + std::to_string(lo));
  }
  *out = it->get<int64_t>();
  return Status::ok();
}

// The fields after `key` ("NSpid:") on its line of /proc/<pid>/status;
// empty when the process is gone or the line absent.
std::vector<std::string> proc_status_fields(pid_t pid, std::string_view key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.compare(0, key.size(), key) != 0) continue;
    std::istringstream rest(line.substr(key.size()));
    std::vector<std::string> fields;
    for (std::string f; rest >> f;) fields.push_back(f);
    return fields;
  }
  return {};
}

// The parent of `pid` now (/proc/<pid>/stat); -1 when it is gone. The
// command name in parentheses may hold anything: the fields follow its
// last ')'.
pid_t proc_parent(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close + 1));
  std::string state;
  pid_t ppid = -1;
  if (!(rest >> state >> ppid)) return -1;
  return ppid;
}

// pidfd_open(2) and pidfd_send_signal(2) by number: glibc 2.36's
// <sys/pidfd.h> declares them without C linkage, so C++ cannot link them.
int open_pidfd(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
int send_pidfd_signal(int pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// The children of single-threaded `pid` (/proc/<pid>/task/<pid>/children).
std::vector<pid_t> proc_children(pid_t pid) {
  const std::string p = std::to_string(pid);
  std::ifstream in("/proc/" + p + "/task/" + p + "/children");
  std::vector<pid_t> children;
  for (pid_t c; in >> c;) children.push_back(c);
  return children;
}

}  // namespace

const char* mode_name(Mode m) { return m == Mode::kBwrap ? "bwrap" : "none"; }

json policy_to_json(const Policy& p) {
  return {{"mode", mode_name(p.mode)},
          {"address_space_mb", p.limits.address_space_mb},
          {"cpu_seconds", p.limits.cpu_seconds},
          {"file_size_mb", p.limits.file_size_mb},
          {"tmp_mb", p.limits.tmp_mb},
          {"pass_env", p.pass_env},
          {"tenant_drivers", p.tenant_drivers},
          {"plan_timeout_seconds", p.plan_timeout_seconds},
          {"plan_cpu_seconds", p.plan_cpu_seconds}};
}

Result<Policy> policy_from_json(const json& j) {
  if (!j.is_object()) return invalid_argument("sandbox: must be an object");
  Policy p;
  auto mode = j.find("mode");
  if (mode == j.end() || !mode->is_string() || (*mode != "bwrap" && *mode != "none")) {
    return invalid_argument("sandbox.mode: must be \"bwrap\" or \"none\"");
  }
  p.mode = *mode == "bwrap" ? Mode::kBwrap : Mode::kNone;
  KILN_RETURN_IF_ERROR(read_limit(j, "address_space_mb", 64, &p.limits.address_space_mb));
  KILN_RETURN_IF_ERROR(read_limit(j, "cpu_seconds", 1, &p.limits.cpu_seconds));
  KILN_RETURN_IF_ERROR(read_limit(j, "file_size_mb", 1, &p.limits.file_size_mb));
  KILN_RETURN_IF_ERROR(read_limit(j, "tmp_mb", 1, &p.limits.tmp_mb));
  KILN_RETURN_IF_ERROR(read_limit(j, "plan_timeout_seconds", 1, &p.plan_timeout_seconds));
  KILN_RETURN_IF_ERROR(read_limit(j, "plan_cpu_seconds", 1, &p.plan_cpu_seconds));
  if (auto it = j.find("pass_env"); it != j.end()) {
    if (!it->is_array()) return invalid_argument("sandbox.pass_env: must be an array of names");
    for (const auto& n : *it) {
      if (!n.is_string()) return invalid_argument("sandbox.pass_env: must be an array of names");
      p.pass_env.push_back(n.get<std::string>());
    }
  }
  if (auto it = j.find("tenant_drivers"); it != j.end()) {
    if (!it->is_array()) return invalid_argument("sandbox.tenant_drivers: must be an array");
    for (const auto& n : *it) {
      if (!n.is_string() || n.get<std::string>().find_first_of(",=") != std::string::npos) {
        return invalid_argument("sandbox.tenant_drivers: must be an array of driver names");
      }
      p.tenant_drivers.push_back(n.get<std::string>());
    }
  }
  return p;
}

bool is_remote_root(const std::string& root) {
  for (std::string_view p : kRemotePrefixes)
    if (starts_with(root, p)) return true;
  return false;
}

void add_source_roots(const std::vector<std::string>& roots, View* view) {
  for (const std::string& r : roots) {
    if (is_remote_root(r)) {
      view->network = true;
    } else if (!r.empty() && r[0] == '/' && !starts_with(r, "/vsi")) {
      std::string path = fs::path(r).lexically_normal().string();
      if (path.size() > 1 && path.back() == '/') path.pop_back();
      view->roots.push_back(path);
    }
  }
}

bool address_space_limit_applies() {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  return false;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
  return false;
#else
  return true;
#endif
#else
  return true;
#endif
}

Result<os::Fd> seccomp_program() {
#if defined(__x86_64__)
  constexpr uint32_t kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  constexpr uint32_t kArch = AUDIT_ARCH_AARCH64;
#else
#error "the sandbox's seccomp program knows x86_64 and aarch64"
#endif
  constexpr uint32_t kErrno = SECCOMP_RET_ERRNO;
  // seccomp_data: the ioctl request is args[1]; its low word (the kernel
  // takes an unsigned int) comes first on these little-endian machines.
  const sock_filter program[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, kErrno | ENOSYS),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
#if defined(__x86_64__)
    BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, __X32_SYSCALL_BIT, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, kErrno | ENOSYS),
#endif
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 4),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[1])),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TIOCSTI, 1, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TIOCLINUX, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, kErrno | EPERM),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  os::Fd fd(::memfd_create("kiln-seccomp", MFD_CLOEXEC));
  if (!fd.valid()) {
    return internal_error(std::string("sandbox: cannot make the seccomp program: memfd_create: ") +
                          std::strerror(errno));
  }
  if (::write(fd.get(), program, sizeof(program)) != static_cast<ssize_t>(sizeof(program)) ||
      ::lseek(fd.get(), 0, SEEK_SET) != 0) {
    return internal_error(std::string("sandbox: cannot write the seccomp program: ") +
                          std::strerror(errno));
  }
  return fd;
}

void Wrapped::hand_on(os::SpawnOptions* so) const {
  so->argv = argv;
  so->rlimits = rlimits;
  so->fds.push_back({seccomp.get(), kSeccompFd});
}

Result<Wrapped> wrap(const View& view, const Limits& limits,
                     const std::vector<std::string>& command, bool as_root, const Tools& tools) {
  constexpr uint64_t kMiB = 1 << 20;
  Wrapped w;
  KILN_ASSIGN_OR_RETURN(w.seccomp, seccomp_program());
  if (address_space_limit_applies()) {
    w.rlimits.push_back({RLIMIT_AS, static_cast<uint64_t>(limits.address_space_mb) * kMiB});
  }
  w.rlimits.push_back({RLIMIT_CPU, static_cast<uint64_t>(limits.cpu_seconds)});
  w.rlimits.push_back({RLIMIT_FSIZE, static_cast<uint64_t>(limits.file_size_mb) * kMiB});
  w.rlimits.push_back({RLIMIT_CORE, 0});
  std::vector<std::string>& a = w.argv;
  a.push_back(tools.bwrap);
  if (!as_root) {
    // Unprivileged: a user namespace is the only way to get the others. No
    // further user namespaces inside (less kernel surface for the task).
    a.insert(a.end(), {"--unshare-user", "--uid", std::to_string(kUid), "--gid",
                       std::to_string(kGid), "--disable-userns"});
  }
  a.insert(a.end(), {"--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"});
  // Always a network namespace of its own; with remote roots its way out is
  // slirp4netns, attached through bwrap's handshake (common/sandbox_net.h).
  a.push_back("--unshare-net");
  if (view.network) {
    const std::vector<std::string> handshake = network_handshake_args();
    a.insert(a.end(), handshake.begin(), handshake.end());
  }
  // No --new-session: the seccomp program refuses the terminal ioctls it
  // guards against, and a session of its own would be a scheduling
  // autogroup of its own (seccomp_program()).
  a.insert(a.end(),
           {"--hostname", kHostname, "--die-with-parent", "--seccomp", std::to_string(kSeccompFd)});

  // Mount points bwrap makes on its own are mode 0700 (root's), which the
  // sandbox user cannot cross: every directory above a bind is made here,
  // 0755, unless it is inside a host directory already bound (never touch
  // a host directory's mode).
  std::vector<std::string> bound = {"/usr", "/proc", "/dev"};
  std::set<std::string> made = {"/tmp"};  // the tmpfs, 1777
  auto inside_bound = [&bound](const std::string& s) {
    for (const std::string& m : bound) {
      if (s == m || (s.size() > m.size() && s.compare(0, m.size(), m) == 0 && s[m.size()] == '/'))
        return true;
    }
    return false;
  };
  auto bind = [&](const char* how, const std::string& path) {
    const fs::path p = fs::path(path).lexically_normal();
    std::vector<std::string> parents;
    for (fs::path d = p.parent_path(); d != d.root_path() && !d.empty(); d = d.parent_path())
      parents.push_back(d.string());
    for (auto it = parents.rbegin(); it != parents.rend(); ++it) {
      if (made.count(*it) || inside_bound(*it)) continue;
      a.insert(a.end(), {"--perms", "0755", "--dir", *it});
      made.insert(*it);
    }
    a.insert(a.end(), {how, p.string(), p.string()});
    bound.push_back(p.string());
  };

  // The system, read-only.
  a.insert(a.end(), {"--ro-bind", "/usr", "/usr"});
  for (const char* p : kLibLinks) {
    std::error_code ec;
    if (fs::is_symlink(p, ec)) {
      a.insert(a.end(), {"--symlink", fs::read_symlink(p, ec).string(), p});
    } else {
      a.insert(a.end(), {"--ro-bind-try", p, p});
    }
  }
  a.insert(a.end(), {"--proc", "/proc", "--dev", "/dev"});
  a.insert(a.end(),
           {"--perms", "1777", "--size", std::to_string(limits.tmp_mb * kMiB), "--tmpfs", "/tmp"});
  for (const char* p : kSystemFiles) bind("--ro-bind-try", p);
  if (view.network)
    for (const char* p : kNetworkFiles) bind("--ro-bind-try", p);
  // A bind later in the list wins where paths nest (see View).
  for (const std::string& p : view.roots) bind("--ro-bind-try", p);
  for (const std::string& p : view.read_write) bind("--bind", p);
  for (const std::string& p : view.read_only) bind("--ro-bind-try", p);
  for (const auto& [host, inside] : view.read_only_at) {
    a.insert(a.end(), {"--ro-bind", host, inside});
  }
  a.insert(a.end(), {"--chdir", "/"});

  if (as_root) {
    // bwrap keeps only these two for setpriv, which gives them up with the
    // uid change (and clears the rest of every capability set).
    a.insert(a.end(),
             {"--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--", tools.setpriv,
              "--reuid=" + std::to_string(kUid), "--regid=" + std::to_string(kGid),
              "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"});
  }
  a.push_back("--");
  a.insert(a.end(), command.begin(), command.end());
  return Result<Wrapped>(std::move(w));
}

std::vector<std::string> scrub_env(const Policy& policy, const std::vector<std::string>& ours) {
  std::set<std::string> keep(policy.pass_env.begin(), policy.pass_env.end());
  for (std::string_view v : kKeptVariables) keep.emplace(v);
  std::vector<std::string> env = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "TMPDIR=/tmp"};
  for (const std::string& e : ours) {
    const std::string name = var_name(e);
    if (name == "PATH" || name == "HOME" || name == "TMPDIR") continue;
    if (name == kTenantDriversVariable) continue;  // only ever the policy's
    if (keep.count(name)) env.push_back(e);
  }
  if (!policy.tenant_drivers.empty()) {
    std::string list;
    for (const std::string& d : policy.tenant_drivers) list += (list.empty() ? "" : ",") + d;
    env.push_back(std::string(kTenantDriversVariable) + "=" + list);
  }
  return env;
}

std::vector<std::string> current_env() {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  return env;
}

int signal_inside(pid_t outer, int sig) {
  const size_t depth = proc_status_fields(outer, "NSpid:").size();
  if (depth == 0) return 0;
  for (pid_t init : proc_children(outer)) {
    // bwrap's init: one pid namespace deeper, pid 1 there.
    const std::vector<std::string> ns = proc_status_fields(init, "NSpid:");
    if (ns.size() != depth + 1 || ns.back() != "1") continue;
    // Opened first, checked after: while `outer` (ours, not reaped) is its
    // parent, the pidfd is that init's (or a dead process's, never another).
    os::Fd init_fd(open_pidfd(init));
    if (!init_fd.valid() || proc_parent(init) != outer) continue;
    int signalled = 0;
    for (pid_t command : proc_children(init)) {
      os::Fd fd(open_pidfd(command));
      if (!fd.valid() || proc_parent(command) != init) continue;
      // The init outlives that read: the parent read was this init, and
      // the pidfd is its child's (or a process's already dead).
      if (send_pidfd_signal(init_fd.get(), 0) != 0) return signalled;
      if (send_pidfd_signal(fd.get(), sig) == 0) ++signalled;
    }
    return signalled;
  }
  return 0;
}

Status signal_command(os::Child* sandbox, int sig) {
  if (!sandbox->running()) return Status::ok();
  if (sig != SIGKILL && signal_inside(sandbox->pid(), sig) > 0) return Status::ok();
  return sandbox->signal(sig);
}

Status probe(const Policy& policy, os::ProcessLauncher* launcher, const Tools& tools) {
  for (const std::string* t : {&tools.bwrap, &tools.setpriv}) {
    if (::access(t->c_str(), X_OK) != 0) {
      return unavailable("sandbox: " + *t + " is missing (" + std::strerror(errno) +
                         "); install Debian's bubblewrap and util-linux, or set [sandbox] mode = "
                         "\"none\" to run tenant input unsandboxed (development only)");
    }
  }
  os::Fd err_read, err_write;
  KILN_RETURN_IF_ERROR(os::make_pipe(&err_read, &err_write));
  os::SpawnOptions so;
  KILN_ASSIGN_OR_RETURN(Wrapped w,
                        wrap(View{}, policy.limits, {"/bin/true"}, ::geteuid() == 0, tools));
  w.hand_on(&so);
  so.env = scrub_env(policy, current_env());
  so.stderr_fd = err_write.get();
  KILN_ASSIGN_OR_RETURN(os::Child child, launcher->start(so));
  err_write.reset();
  std::string err;
  char buf[4096];
  for (ssize_t n; (n = ::read(err_read.get(), buf, sizeof(buf))) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    if (err.size() < 4096) err.append(buf, static_cast<size_t>(n));
  }
  KILN_ASSIGN_OR_RETURN(os::ExitStatus st, child.wait());
  if (!st.ok()) {
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    return unavailable("sandbox: bubblewrap does not work here (" + st.describe() +
                       (err.empty() ? "" : ": " + err) +
                       "); tenant input will not be opened unsandboxed. Fix bwrap (user "
                       "namespaces, or run as root), or set [sandbox] mode = \"none\" for "
                       "development only");
  }
  return Status::ok();
}

Status prepare_writable_dir(const std::string& base, const std::string& dir,
                            bool chown_to_sandbox) {
  const fs::path b = fs::path(base).lexically_normal();
  const fs::path rel = fs::path(dir).lexically_normal().lexically_relative(b);
  if (rel.empty() || *rel.begin() == "..") {
    return invalid_argument("sandbox: '" + dir + "' is not under '" + base + "'");
  }
  os::Fd fd(::open(b.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return io_error("cannot open '" + base + "': " + std::strerror(errno));
  fs::path at = b;
  for (const fs::path& part : rel) {
    if (part.empty() || part == ".") continue;
    const std::string name = part.string();
    at /= part;
    if (name == ".." || name.find('/') != std::string::npos) {
      return invalid_argument("sandbox: '" + dir + "' is not under '" + base + "'");
    }
    if (::mkdirat(fd.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
      return io_error("cannot create '" + at.string() + "': " + std::strerror(errno));
    }
    os::Fd next(::openat(fd.get(), name.c_str(), O_DIRECTORY | O_NOFOLLOW | O_RDONLY | O_CLOEXEC));
    if (!next.valid()) {
      return io_error("cannot open '" + at.string() +
                      "' (a directory, not a symlink): " + std::strerror(errno));
    }
    if (chown_to_sandbox && ::fchown(next.get(), kUid, kGid) != 0) {
      return io_error("cannot chown '" + at.string() +
                      "' to the sandbox user: " + std::strerror(errno));
    }
    fd = std::move(next);
  }
  return Status::ok();
}

Status chown_file_if_present(const std::string& dir, const std::string& name) {
  os::Fd d(::open(dir.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  if (!d.valid()) return io_error("cannot open '" + dir + "': " + std::strerror(errno));
  os::Fd f(::openat(d.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!f.valid()) {
    if (errno == ENOENT) return Status::ok();
    return io_error("cannot open '" + dir + "/" + name + "': " + std::strerror(errno));
  }
  struct stat st;
  if (::fstat(f.get(), &st) != 0 || !S_ISREG(st.st_mode)) return Status::ok();
  if (::fchown(f.get(), kUid, kGid) != 0) {
    return io_error("cannot chown '" + dir + "/" + name + "': " + std::strerror(errno));
  }
  return Status::ok();
}

}  // namespace kiln::sandbox
