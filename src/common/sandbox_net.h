// The network of a sandbox whose environment reads remote sources
// (docs/security.md, "Network"). Every sandbox has its own network namespace
// (bwrap --unshare-net); one with View::network also gets a way out:
// slirp4netns, running beside it in the host's namespace, gives it a tap
// device and carries its connections out as the host's own sockets, with
// --disable-host-loopback so slirp's gateway never leads to the host's
// loopback. Before the command runs, routes inside the namespace refuse
// what a task must never reach even so: link-local (cloud metadata at
// 169.254.169.254), 0.0.0.0/8, multicast and the reserved range, and every
// address of the host itself (a service bound to 0.0.0.0 on the host). The
// namespace's own 127.0.0.1 is an empty loopback.
//
// How it starts (start()): wrap() gives bwrap --info-fd kInfoFd and
// --block-fd kBlockFd; bwrap creates the namespaces, reports its child's
// pid on the first and waits for a byte on the second before running the
// command. Meanwhile slirp4netns attaches to that pid and reports ready,
// and `nsenter ... ip -batch` adds the routes; only then is the byte
// written. slirp4netns ends when the write end of its --exit-fd pipe, held
// by the Network, closes: when the Network is stopped or destroyed, or
// this process dies.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/process.h"
#include "common/sandbox.h"
#include "common/status.h"

namespace kiln::sandbox {

// The descriptors of bwrap's handshake, as numbered in the child.
inline constexpr int kInfoFd = 3;   // bwrap writes {"child-pid": N, ...}
inline constexpr int kBlockFd = 4;  // bwrap reads a byte before the command runs

// What wrap() adds to bwrap's options when View::network.
std::vector<std::string> network_handshake_args();

struct NetTools {
  std::string slirp4netns = "/usr/bin/slirp4netns";
  std::string nsenter = "/usr/bin/nsenter";
  std::string ip = "/sbin/ip";
};

// The destinations refused inside a sandbox with network ("ip route"
// prefixes): the fixed ranges, then this host's own IPv4 addresses.
std::vector<std::string> refused_destinations();

// The slirp4netns of one sandbox, from start() until stop().
class Network {
 public:
  Network() = default;
  Network(Network&&) noexcept = default;
  Network& operator=(Network&& o) noexcept;
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;
  ~Network() { stop(); }

  bool running() const { return slirp_.running(); }
  pid_t pid() const { return slirp_.pid(); }
  // Closes the exit pipe and reaps slirp4netns, which exits on that.
  // Nothing when not running.
  void stop();

 private:
  friend Result<os::Child> start(os::ProcessLauncher*, os::SpawnOptions, bool, Network*,
                                 const NetTools&);
  os::Child slirp_;
  os::Fd exit_;
};

// Starts a sandbox: `options.argv` from wrap(), `network` its View's. Without
// network this is launcher->start(options). With it, the command runs only
// once the network above is up, and `net` owns slirp4netns: stop it once
// the returned child is reaped (the caller keeps both; declare `net` before
// the child so the child is killed first). Waits for bwrap's report and
// slirp4netns's readiness, each ending with its writer's death at worst.
// Errors name the tool and what it said; the sandbox is killed then.
Result<os::Child> start(os::ProcessLauncher* launcher, os::SpawnOptions options, bool network,
                        Network* net, const NetTools& tools = {});

// For `kiln serve` when an environment has a remote root: the tools exist
// and a sandbox with network starts and ends (a /bin/true in it). The
// error says what is missing or what failed.
Status probe_network(const Policy& policy, os::ProcessLauncher* launcher,
                     const NetTools& net_tools = {}, const Tools& tools = {});

}  // namespace kiln::sandbox
