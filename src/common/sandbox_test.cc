// The sandbox's argv and environment as built, then with real bubblewrap:
// what a sandboxed process can and cannot see, who it runs as, its limits,
// and the directory preparation that must not follow planted symlinks.
#include "common/sandbox.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace kiln::sandbox {
namespace {

namespace fs = std::filesystem;
using Argv = std::vector<std::string>;

// Index of `token` in argv (argv.size() when absent).
size_t index_of(const Argv& argv, const std::string& token) {
  return static_cast<size_t>(std::find(argv.begin(), argv.end(), token) - argv.begin());
}
bool has(const Argv& argv, const std::string& token) { return index_of(argv, token) < argv.size(); }
// True if argv holds `a b c` in a row.
bool has_seq(const Argv& argv, const Argv& seq) {
  return std::search(argv.begin(), argv.end(), seq.begin(), seq.end()) != argv.end();
}

TEST(SandboxArgv, AsRootDropsToNobodyWithSetprivAndNoNetwork) {
  View v;
  v.roots = {"/srv/imagery/production"};
  v.read_only = {"/tmp/spec.json"};
  v.read_write = {"/srv/catalog/production/l7"};
  Limits lim;
  lim.address_space_mb = 1024;
  lim.cpu_seconds = 7;
  lim.file_size_mb = 3;
  lim.tmp_mb = 2;
  const Wrapped w = wrap(v, lim, {"/opt/kiln", "task", "run"}, /*as_root=*/true).value();
  const Argv& a = w.argv;
  ASSERT_GE(a.size(), 6u);
  // The limits are set by the spawn (no prlimit exec), for bwrap and below.
  EXPECT_EQ(a[0], "/usr/bin/bwrap");
  std::map<int, uint64_t> limits;
  for (const os::ResourceLimit& l : w.rlimits) limits[l.resource] = l.value;
  EXPECT_EQ(limits.count(RLIMIT_AS) == 1, address_space_limit_applies());
  if (address_space_limit_applies()) {
    EXPECT_EQ(limits[RLIMIT_AS], 1024ULL << 20);
  }
  EXPECT_EQ(limits.at(RLIMIT_CPU), 7u);
  EXPECT_EQ(limits.at(RLIMIT_FSIZE), 3ULL << 20);
  EXPECT_EQ(limits.at(RLIMIT_CORE), 0u);
  EXPECT_TRUE(has(a, "--unshare-net"));
  EXPECT_TRUE(has(a, "--unshare-pid"));
  EXPECT_TRUE(has(a, "--die-with-parent"));
  EXPECT_FALSE(has(a, "--share-net"));
  // The seccomp program in place of a session of its own.
  EXPECT_TRUE(has_seq(a, {"--seccomp", std::to_string(kSeccompFd)}));
  EXPECT_TRUE(w.seccomp.valid());
  EXPECT_FALSE(has(a, "--new-session"));
  // As root no user namespace (it would map nobody to uid 0 on the host):
  // setpriv drops the uid instead, right before the command.
  EXPECT_FALSE(has(a, "--unshare-user"));
  EXPECT_TRUE(has_seq(
      a, {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
          "--bounding-set=-all", "--no-new-privs", "--", "/opt/kiln", "task", "run"}));
  EXPECT_EQ(a.back(), "run");
  EXPECT_TRUE(has_seq(a, {"--ro-bind-try", "/srv/imagery/production", "/srv/imagery/production"}));
  EXPECT_TRUE(has_seq(a, {"--bind", "/srv/catalog/production/l7", "/srv/catalog/production/l7"}));
  EXPECT_TRUE(
      has_seq(a, {"--perms", "1777", "--size", std::to_string(2 << 20), "--tmpfs", "/tmp"}));
  // After the tmpfs (or /tmp would hide them): roots, then the writable
  // directory (a layer directory inside a root stays writable), then the
  // single files (a later bind wins).
  EXPECT_LT(index_of(a, "/tmp"), index_of(a, "/srv/imagery/production"));
  EXPECT_LT(index_of(a, "/srv/imagery/production"), index_of(a, "/srv/catalog/production/l7"));
  EXPECT_LT(index_of(a, "/srv/catalog/production/l7"), index_of(a, "/tmp/spec.json"));
  // Nothing of the host but the system and what the view names.
  for (const char* absent : {"/etc", "/home", "/root", "/var", "/srv", "/"}) {
    for (const char* how : {"--bind", "--ro-bind", "--ro-bind-try"})
      EXPECT_FALSE(has_seq(a, {how, absent, absent})) << how << " " << absent;
  }
  // The directories above a bind are made 0755 (bwrap's own are 0700).
  EXPECT_TRUE(has_seq(a, {"--perms", "0755", "--dir", "/srv/imagery"}));
  EXPECT_TRUE(has_seq(a, {"--perms", "0755", "--dir", "/srv/catalog/production"}));
  EXPECT_FALSE(has(a, "/etc/resolv.conf"));
}

TEST(SandboxArgv, WithoutRootUsesAUserNamespaceMappedToNobody) {
  const Argv a = wrap(View{}, Limits{}, {"/bin/true"}, /*as_root=*/false)->argv;
  EXPECT_TRUE(
      has_seq(a, {"--unshare-user", "--uid", "65534", "--gid", "65534", "--disable-userns"}));
  EXPECT_FALSE(has(a, "/usr/bin/setpriv"));
  EXPECT_FALSE(has(a, "--cap-add"));
  EXPECT_TRUE(has_seq(a, {"--", "/bin/true"}));
}

TEST(SandboxArgv, RemoteRootsGetTheirOwnNetworkWithTheHandshakeAndTheResolver) {
  View v;
  add_source_roots({"/srv/a/", "/vsis3/bucket/scenes/", "/vsizip//srv/a/x.zip", "relative"}, &v);
  EXPECT_TRUE(v.network);
  EXPECT_EQ(v.roots, (std::vector<std::string>{"/srv/a"}));
  const Argv a = wrap(v, Limits{}, {"/bin/true"}, true)->argv;
  // Never the host's network namespace: slirp4netns attaches to this one
  // through bwrap's handshake (sandbox_net_test.cc runs it).
  EXPECT_TRUE(has(a, "--unshare-net"));
  EXPECT_FALSE(has(a, "--share-net"));
  EXPECT_TRUE(has_seq(a, {"--info-fd", "3", "--block-fd", "4"}));
  EXPECT_FALSE(has(wrap(View{}, Limits{}, {"/bin/true"}, true)->argv, "--info-fd"));
  EXPECT_TRUE(has_seq(a, {"--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"}));
  EXPECT_TRUE(has_seq(a, {"--ro-bind-try", "/etc/ssl", "/etc/ssl"}));

  View local;
  add_source_roots({"/srv/imagery/production/", "/data/one.tif"}, &local);
  EXPECT_FALSE(local.network);
  EXPECT_EQ(local.roots, (std::vector<std::string>{"/srv/imagery/production", "/data/one.tif"}));
}

TEST(SandboxArgv, RemoteRootKinds) {
  for (const char* r : {"/vsis3/b/", "/vsicurl/https://h/x/", "https://imagery.example.com/s/",
                        "http://h/", "/vsigs/b/", "/vsiaz/c/"})
    EXPECT_TRUE(is_remote_root(r)) << r;
  for (const char* r : {"/srv/x/", "/vsizip//srv/x.zip", "/vsimem/x", "/vsis3", ""})
    EXPECT_FALSE(is_remote_root(r)) << r;
}

TEST(SandboxEnv, KeepsOnlyTheSafeSetAndWhatThePolicyPasses) {
  Policy p;
  p.pass_env = {"AWS_REGION"};
  p.tenant_drivers = {"GTiff", "VRT"};
  const std::vector<std::string> ours = {"KILN_TENANT_DRIVERS=MEM",
                                         "KILN_WORKER_TOKEN=secret-token",
                                         "AWS_SECRET_ACCESS_KEY=prod-secret",
                                         "AWS_ACCESS_KEY_ID=AKIA",
                                         "AWS_REGION=eu-west-1",
                                         "GDAL_DATA=/usr/share/gdal",
                                         "PROJ_DATA=/usr/share/proj",
                                         "KILN_CONFIG=/etc/kiln/kiln.toml",
                                         "HOME=/root",
                                         "PATH=/root/bin:/usr/bin",
                                         "LANG=C.UTF-8"};
  const std::vector<std::string> env = scrub_env(p, ours);
  auto contains = [&](const std::string& e) {
    return std::find(env.begin(), env.end(), e) != env.end();
  };
  EXPECT_TRUE(contains("PATH=/usr/local/bin:/usr/bin:/bin"));
  EXPECT_TRUE(contains("HOME=/tmp"));
  EXPECT_TRUE(contains("TMPDIR=/tmp"));
  EXPECT_TRUE(contains("GDAL_DATA=/usr/share/gdal"));
  EXPECT_TRUE(contains("PROJ_DATA=/usr/share/proj"));
  EXPECT_TRUE(contains("LANG=C.UTF-8"));
  EXPECT_TRUE(contains("AWS_REGION=eu-west-1"));
  // The drivers come from the policy only, never from the caller's variable.
  EXPECT_TRUE(contains("KILN_TENANT_DRIVERS=GTiff,VRT"));
  EXPECT_FALSE(contains("KILN_TENANT_DRIVERS=MEM"));
  for (const std::string& e : env) {
    EXPECT_EQ(e.find("secret"), std::string::npos) << e;
    EXPECT_NE(e.rfind("KILN_WORKER_TOKEN", 0), 0u) << e;
    EXPECT_NE(e.rfind("AWS_ACCESS_KEY_ID", 0), 0u) << e;
    EXPECT_NE(e.rfind("KILN_CONFIG", 0), 0u) << e;
    EXPECT_NE(e, "HOME=/root");
  }
}

TEST(SandboxPolicy, JsonRoundTripAndRefusals) {
  Policy p;
  p.mode = Mode::kNone;
  p.limits.cpu_seconds = 5;
  p.pass_env = {"X"};
  p.plan_timeout_seconds = 9;
  auto back = policy_from_json(policy_to_json(p));
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->mode, Mode::kNone);
  EXPECT_EQ(back->limits.cpu_seconds, 5);
  EXPECT_EQ(back->pass_env, std::vector<std::string>{"X"});
  EXPECT_EQ(back->plan_timeout_seconds, 9);

  auto bad = policy_from_json({{"mode", "chroot"}});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("sandbox.mode"), std::string::npos);
  bad = policy_from_json({{"mode", "bwrap"}, {"cpu_seconds", -1}});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("sandbox.cpu_seconds"), std::string::npos);
}

// ---- With real bubblewrap ----

class SandboxRun : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-sandbox-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  // Runs `script` with bash in the sandbox; its exit code and stdout.
  std::pair<int, std::string> run(const View& v, const std::string& script,
                                  const Limits& lim = Limits{}) {
    os::Fd r, w;
    EXPECT_TRUE(os::make_pipe(&r, &w).is_ok());
    os::SpawnOptions so;
    auto wrapped = wrap(v, lim, {"/bin/bash", "-c", script}, ::geteuid() == 0);
    EXPECT_TRUE(wrapped.is_ok()) << wrapped.status().to_string();
    if (!wrapped.is_ok()) return {-1, ""};
    wrapped->hand_on(&so);
    so.env = scrub_env(Policy{}, current_env());
    so.stdout_fd = w.get();
    auto child = os::posix_launcher().start(so);
    EXPECT_TRUE(child.is_ok()) << child.status().to_string();
    w.reset();
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(r.get(), buf, sizeof buf)) > 0;) out.append(buf, n);
    auto st = child->wait();
    EXPECT_TRUE(st.is_ok());
    return {st->signaled ? 128 + st->signal : st->code, out};
  }
  fs::path dir_;
};

TEST_F(SandboxRun, ProbeWorks) {
  Status st = probe(Policy{}, &os::posix_launcher());
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  Tools missing;
  missing.bwrap = "/nonexistent/bwrap";
  st = probe(Policy{}, &os::posix_launcher(), missing);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("/nonexistent/bwrap is missing"), std::string::npos) << st.message();
}

TEST_F(SandboxRun, SeesOnlyItsViewAsNobodyWithoutCapabilities) {
  write(dir_ / "root/scene.txt", "inside");
  write(dir_ / "other/secret.txt", "production secret");
  fs::create_directories(dir_ / "out");
  ASSERT_TRUE(
      prepare_writable_dir(dir_.string(), (dir_ / "out").string(), ::geteuid() == 0).is_ok());
  View v;
  v.roots = {(dir_ / "root").string()};
  v.read_write = {(dir_ / "out").string()};
  const std::string script =
      "id -u; grep CapEff /proc/self/status; cat " + (dir_ / "root/scene.txt").string() +
      "; echo; cat " + (dir_ / "other/secret.txt").string() + " 2>/dev/null || echo unreadable; " +
      "echo w > " + (dir_ / "root/new").string() + " 2>/dev/null || echo ro; echo w > " +
      (dir_ / "out/tile").string() + " && echo rw; ls /etc 2>/dev/null | wc -l; " +
      "cat /proc/1/environ 2>/dev/null | tr '\\0' '\\n' | grep -c KILN_WORKER_TOKEN; true";
  ::setenv("KILN_WORKER_TOKEN", "must-not-leak", 1);
  auto [code, out] = run(v, script);
  ::unsetenv("KILN_WORKER_TOKEN");
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, "65534\nCapEff:\t0000000000000000\ninside\nunreadable\nro\nrw\n"
                     // /etc holds only ld.so.cache, localtime and
                     // alternatives; no token anywhere.
                     + std::to_string(int(fs::exists("/etc/ld.so.cache")) +
                                      int(fs::exists("/etc/localtime")) +
                                      int(fs::exists("/etc/alternatives"))) +
                     "\n0\n");
  EXPECT_TRUE(fs::exists(dir_ / "out/tile"));
  EXPECT_FALSE(fs::exists(dir_ / "root/new"));
}

TEST_F(SandboxRun, CannotConnectToLoopback) {
  // A real listener on the host's loopback; the sandbox has its own
  // network namespace, whose loopback is down and empty.
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(s, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(s, 4), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);
  auto [code, out] = run(View{}, "exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(port) +
                                     " 2>/dev/null && echo connected || echo refused");
  EXPECT_EQ(code, 0);
  ::fcntl(s, F_SETFL, O_NONBLOCK);
  EXPECT_LT(::accept(s, nullptr, nullptr), 0) << "a connection reached the host's loopback";
  EXPECT_EQ(out, "refused\n");
  ::close(s);
}

// What --new-session guarded against, refused by the seccomp program: a
// task pushing input into a terminal it shares (TIOCSTI) fails with EPERM
// (without the filter: ENOTTY, stdin being /dev/null). And the task stays in
// its launcher's session, hence in its scheduling autogroup, where its nice
// level counts (seccomp_program()).
TEST_F(SandboxRun, TerminalInjectionIsRefusedAndTheSessionIsShared) {
  auto [code, out] = run(View{},
                         "/usr/bin/python3 -c '\n"
                         "import errno, fcntl, os, termios\n"
                         "try:\n"
                         "    fcntl.ioctl(0, termios.TIOCSTI, b\"x\")\n"
                         "    print(\"TIOCSTI allowed\")\n"
                         "except OSError as e:\n"
                         "    print(errno.errorcode[e.errno])\n"
                         "print(\"leader\" if os.getsid(0) == os.getpid() else \"member\")\n"
                         "' && cat /proc/self/autogroup 2>/dev/null || echo no-autogroup");
  EXPECT_EQ(code, 0) << out;
  // A process in the kernel's default autogroup (never below a setsid(),
  // as under some CI runners) reads an empty file, and so does cat inside.
  std::string ours = "no-autogroup\n";
  if (std::ifstream f("/proc/self/autogroup"); f) {
    std::ostringstream text;
    text << f.rdbuf();
    ours = text.str();
  }
  EXPECT_EQ(out, "EPERM\nmember\n" + ours);
}

TEST_F(SandboxRun, LimitsApply) {
  Limits lim;
  lim.file_size_mb = 1;
  fs::create_directories(dir_ / "out");
  ASSERT_TRUE(
      prepare_writable_dir(dir_.string(), (dir_ / "out").string(), ::geteuid() == 0).is_ok());
  View v;
  v.read_write = {(dir_ / "out").string()};
  lim.cpu_seconds = 5;
  auto [code, out] =
      run(v,
          "ulimit -v; ulimit -f; ulimit -t; ulimit -c; head -c 2097152 /dev/zero > " +
              (dir_ / "out/big").string() + "; echo $?",
          lim);
  // bash's ulimit speaks KiB for both.
  EXPECT_EQ(out.substr(0, out.find('\n')), address_space_limit_applies()
                                               ? std::to_string(lim.address_space_mb * 1024)
                                               : std::string("unlimited"));
  EXPECT_NE(out.find("\n1024\n5\n0\n"), std::string::npos) << out;
  EXPECT_LE(fs::file_size(dir_ / "out/big"), 1u << 20);
}

// A sandboxed command that traps SIGTERM: signal_command() reaches it, its
// trap runs and its own exit status comes out of bwrap. Sent to the outer
// bwrap, the same SIGTERM would have killed the sandbox (signalled) with
// the trap never run. SIGKILL still goes to the outer process.
TEST_F(SandboxRun, SignalCommandReachesTheCommandInside) {
  auto start = [](os::Fd* out) {
    os::Fd w;
    EXPECT_TRUE(os::make_pipe(out, &w).is_ok());
    os::SpawnOptions so;
    // `sleep & wait`: bash runs its trap as soon as the signal arrives.
    auto wrapped = wrap(View{}, Limits{},
                        {"/bin/bash", "-c",
                         "trap 'echo stopped gracefully; exit 7' TERM; echo ready; "
                         "while :; do sleep 30 & wait $!; done"},
                        ::geteuid() == 0);
    EXPECT_TRUE(wrapped.is_ok());
    wrapped->hand_on(&so);
    so.env = scrub_env(Policy{}, current_env());
    so.stdout_fd = w.get();
    auto child = os::posix_launcher().start(so);
    EXPECT_TRUE(child.is_ok()) << child.status().to_string();
    return std::move(child).value();
  };
  // Reads `out` until `until` has been seen or EOF.
  auto read_until = [](const os::Fd& out, const std::string& until) {
    std::string text;
    char buf[256];
    while (text.find(until) == std::string::npos) {
      ssize_t n = ::read(out.get(), buf, sizeof buf);
      if (n <= 0) break;
      text.append(buf, n);
    }
    return text;
  };

  os::Fd out;
  os::Child child = start(&out);
  ASSERT_EQ(read_until(out, "ready\n"), "ready\n");  // its trap is set
  EXPECT_EQ(signal_inside(child.pid(), 0), 1) << "exactly the command is below bwrap's init";
  ASSERT_TRUE(signal_command(&child, SIGTERM).is_ok());
  EXPECT_EQ(read_until(out, "\n"), "stopped gracefully\n");
  auto st = child.wait();
  ASSERT_TRUE(st.is_ok());
  EXPECT_FALSE(st->signaled) << st->describe();
  EXPECT_EQ(st->code, 7) << "the command's own exit status";
  EXPECT_TRUE(signal_command(&child, SIGTERM).is_ok()) << "reaped: nothing to signal";

  os::Fd out2;
  os::Child killed = start(&out2);
  ASSERT_EQ(read_until(out2, "ready\n"), "ready\n");
  ASSERT_TRUE(signal_command(&killed, SIGKILL).is_ok());
  EXPECT_EQ(read_until(out2, "\n"), "") << "no trap runs on SIGKILL";
  st = killed.wait();
  ASSERT_TRUE(st.is_ok());
  EXPECT_TRUE(st->signaled && st->signal == SIGKILL)
      << "bwrap itself was killed: " << st->describe();
}

// Below a process that is no sandbox there is no command to find: the
// signal goes to the process itself.
TEST_F(SandboxRun, SignalCommandOfAPlainProcessSignalsIt) {
  os::SpawnOptions so;
  so.argv = {"/bin/sleep", "30"};
  auto child = os::posix_launcher().start(so);
  ASSERT_TRUE(child.is_ok()) << child.status().to_string();
  EXPECT_EQ(signal_inside(child->pid(), SIGTERM), 0);
  ASSERT_TRUE(signal_command(&*child, SIGTERM).is_ok());
  auto st = child->wait();
  ASSERT_TRUE(st.is_ok());
  EXPECT_TRUE(st->signaled && st->signal == SIGTERM) << st->describe();
}

TEST_F(SandboxRun, PrepareWritableDirRefusesPlantedSymlinks) {
  fs::create_directories(dir_ / "cat/env");
  fs::create_directories(dir_ / "elsewhere");
  fs::create_symlink(dir_ / "elsewhere", dir_ / "cat/env/layer");
  Status st = prepare_writable_dir((dir_ / "cat/env").string(),
                                   (dir_ / "cat/env/layer/.staging").string(), ::geteuid() == 0);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("not a symlink"), std::string::npos) << st.message();
  EXPECT_FALSE(fs::exists(dir_ / "elsewhere/.staging"));

  st = prepare_writable_dir((dir_ / "cat").string(), (dir_ / "cat/../escape").string(), false);
  EXPECT_FALSE(st.is_ok());

  st = prepare_writable_dir((dir_ / "cat/env").string(),
                            (dir_ / "cat/env/l2/.staging/s-1").string(), ::geteuid() == 0);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  struct stat sb;
  ASSERT_EQ(::stat((dir_ / "cat/env/l2/.staging/s-1").c_str(), &sb), 0);
  if (::geteuid() == 0) {
    EXPECT_EQ(sb.st_uid, kUid);
    ASSERT_EQ(::stat((dir_ / "cat/env").c_str(), &sb), 0);
    EXPECT_EQ(sb.st_uid, 0u) << "the base stays the operator's";
  }
}

}  // namespace
}  // namespace kiln::sandbox
