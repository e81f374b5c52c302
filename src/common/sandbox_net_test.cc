// A sandbox with remote roots, with real bubblewrap and slirp4netns: it
// reaches a host outside (a listener in a network namespace this test
// makes, joined to the host by a veth pair), and never the host's loopback,
// link-local addresses or the host's own addresses. Needs root (the test
// namespace), as the rest of the sandbox tests run.
#include "common/sandbox_net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace kiln::sandbox {
namespace {

namespace fs = std::filesystem;

// Runs argv (a test's own setup), waiting; true when it exits 0.
bool run_ok(const std::vector<std::string>& argv) {
  os::SpawnOptions so;
  so.argv = argv;
  auto child = os::posix_launcher().start(so);
  if (!child.is_ok()) return false;
  auto st = child->wait();
  return st.is_ok() && st->ok();
}

// A listening TCP socket on addr:0 in the calling thread's namespace; its port.
int listen_on(const std::string& addr, int* port) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  ::inet_pton(AF_INET, addr.c_str(), &a.sin_addr);
  socklen_t len = sizeof a;
  if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(s, 8) != 0 ||
      ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(s);
    return -1;
  }
  *port = ntohs(a.sin_port);
  return s;
}

// True if a connection is waiting on listener `s` (accepted and closed).
bool accepted(int s) {
  ::fcntl(s, F_SETFL, O_NONBLOCK);
  int c = ::accept(s, nullptr, nullptr);
  if (c < 0) return false;
  ::close(c);
  return true;
}

class SandboxNetwork : public ::testing::Test {
 protected:
  // A "remote host": network namespace kiln-test-<pid> holding one end of a
  // veth pair (REMOTE), the other end in ours (HOST), a /30 of their own.
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "makes a network namespace: run as root";
    const int pid = ::getpid();
    ns_ = "kiln-test-" + std::to_string(pid);
    host_if_ = "kt" + std::to_string(pid) + "h";
    const std::string peer = "kt" + std::to_string(pid) + "r";
    const std::string net = "10.231." + std::to_string(pid % 250) + ".";
    host_addr_ = net + "1";
    remote_addr_ = net + "2";
    ASSERT_TRUE(run_ok({ip_, "netns", "add", ns_}));
    made_ns_ = true;
    ASSERT_TRUE(run_ok({ip_, "link", "add", host_if_, "type", "veth", "peer", "name", peer}));
    made_link_ = true;
    ASSERT_TRUE(run_ok({ip_, "link", "set", peer, "netns", ns_}));
    ASSERT_TRUE(run_ok({ip_, "addr", "add", host_addr_ + "/30", "dev", host_if_}));
    ASSERT_TRUE(run_ok({ip_, "link", "set", host_if_, "up"}));
    ASSERT_TRUE(run_ok({ip_, "-n", ns_, "addr", "add", remote_addr_ + "/30", "dev", peer}));
    ASSERT_TRUE(run_ok({ip_, "-n", ns_, "link", "set", peer, "up"}));
    ASSERT_TRUE(run_ok({ip_, "-n", ns_, "link", "set", "lo", "up"}));
    // The remote listener: a socket made by a thread that joined the
    // namespace (setns changes only the calling thread's).
    std::thread t([this] {
      os::Fd nsfd(::open(("/run/netns/" + ns_).c_str(), O_RDONLY | O_CLOEXEC));
      if (nsfd.valid() && ::setns(nsfd.get(), CLONE_NEWNET) == 0)
        remote_listener_ = listen_on(remote_addr_, &remote_port_);
    });
    t.join();
    ASSERT_GE(remote_listener_, 0);
  }
  void TearDown() override {
    if (remote_listener_ >= 0) ::close(remote_listener_);
    if (made_link_) {
      EXPECT_TRUE(run_ok({ip_, "link", "del", host_if_}));
    }
    if (made_ns_) {
      EXPECT_TRUE(run_ok({ip_, "netns", "del", ns_}));
    }
  }

  // Runs `script` with bash in a sandbox with `network` (started with
  // sandbox::start, the way tasks are); exit code and stdout. The
  // sandbox's slirp4netns is stopped and must be gone afterwards.
  std::pair<int, std::string> run(bool network, const std::string& script) {
    os::Fd r, w;
    EXPECT_TRUE(os::make_pipe(&r, &w).is_ok());
    View v;
    v.network = network;
    os::SpawnOptions so;
    auto wrapped = wrap(v, Limits{}, {"/bin/bash", "-c", script}, /*as_root=*/true);
    EXPECT_TRUE(wrapped.is_ok()) << wrapped.status().to_string();
    if (!wrapped.is_ok()) return {-1, ""};
    wrapped->hand_on(&so);
    so.env = scrub_env(Policy{}, current_env());
    so.stdout_fd = w.get();
    Network net;
    auto child = start(&os::posix_launcher(), so, network, &net);
    EXPECT_TRUE(child.is_ok()) << child.status().to_string();
    if (!child.is_ok()) return {-1, ""};
    EXPECT_EQ(net.running(), network);
    const pid_t slirp = net.pid();
    w.reset();
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(r.get(), buf, sizeof buf)) > 0;) out.append(buf, n);
    auto st = child->wait();
    EXPECT_TRUE(st.is_ok());
    net.stop();
    EXPECT_FALSE(net.running());
    if (slirp > 0) {
      EXPECT_FALSE(fs::exists("/proc/" + std::to_string(slirp)))
          << "slirp4netns (pid " << slirp << ") outlived its sandbox";
    }
    return {st->signaled ? 128 + st->signal : st->code, out};
  }

  // A bash line printing "<what> connected|refused|hung" for a TCP connect
  // (bounded: a hang is reported, not waited out).
  static std::string connect_line(const std::string& what, const std::string& addr, int port) {
    return "if timeout 10 bash -c 'exec 3<>/dev/tcp/" + addr + "/" + std::to_string(port) +
           "' 2>/dev/null; then echo '" + what + " connected'; elif [ $? = 124 ]; then echo '" +
           what + " hung'; else echo '" + what + " refused'; fi; ";
  }
  // Prints "<what> no route" when the namespace's routes refuse addr, and
  // only then tries to connect: a route that is missing never lets a
  // packet for it leave this machine.
  static std::string refused_line(const std::string& what, const std::string& addr, int port) {
    return "if ip route get " + addr + " >/dev/null 2>&1; then echo '" + what +
           " routed'; else echo '" + what + " no route'; " + connect_line(what, addr, port) +
           "fi; ";
  }

  const std::string ip_ = NetTools{}.ip;
  std::string ns_, host_if_, host_addr_, remote_addr_;
  bool made_ns_ = false, made_link_ = false;
  int remote_listener_ = -1;
  int remote_port_ = 0;
};

TEST_F(SandboxNetwork, ReachesARemoteHostButNotLoopbackLinkLocalOrTheHost) {
  int local_port = 0;
  const int local = listen_on("127.0.0.1", &local_port);
  ASSERT_GE(local, 0);
  const std::string script = connect_line("remote", remote_addr_, remote_port_) +
                             connect_line("loopback", "127.0.0.1", local_port) +
                             // slirp's gateway, which would be the host's loopback
                             connect_line("gateway", "10.0.2.2", local_port) +
                             refused_line("metadata", "169.254.169.254", 80) +
                             refused_line("zero", "0.0.0.1", 80) +
                             refused_line("host", host_addr_, remote_port_);
  auto [code, out] = run(/*network=*/true, script);
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out,
            "remote connected\nloopback refused\ngateway refused\n"
            "metadata no route\nmetadata refused\nzero no route\nzero refused\n"
            "host no route\nhost refused\n");
  EXPECT_TRUE(accepted(remote_listener_)) << "the remote listener saw no connection";
  EXPECT_FALSE(accepted(local)) << "a connection reached the host's loopback";
  ::close(local);
}

TEST_F(SandboxNetwork, WithoutRemoteRootsNothingIsReachable) {
  auto [code, out] = run(/*network=*/false, connect_line("remote", remote_addr_, remote_port_));
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out, "remote refused\n");
  EXPECT_FALSE(accepted(remote_listener_));
}

TEST_F(SandboxNetwork, RefusesTheHostsOwnAddressesAndTheSpecialRanges) {
  const std::vector<std::string> d = refused_destinations();
  for (const char* range : {"0.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4"})
    EXPECT_NE(std::find(d.begin(), d.end(), range), d.end()) << range;
  EXPECT_NE(std::find(d.begin(), d.end(), host_addr_ + "/32"), d.end());
  for (const std::string& x : d) EXPECT_NE(x.rfind("127.", 0), 0u) << x;
}

TEST(SandboxNetworkProbe, WorksAndNamesAMissingSlirp4netns) {
  Status st = probe_network(Policy{}, &os::posix_launcher());
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  NetTools missing;
  missing.slirp4netns = "/nonexistent/slirp4netns";
  st = probe_network(Policy{}, &os::posix_launcher(), missing);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("/nonexistent/slirp4netns is missing"), std::string::npos)
      << st.message();
}

}  // namespace
}  // namespace kiln::sandbox
