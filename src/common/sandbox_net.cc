#include "common/sandbox_net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/nsfs.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

namespace kiln::sandbox {
namespace {

// Never reachable from a sandbox, whatever the host's routes: "this
// network", link-local (cloud metadata services), multicast, and the
// reserved range with the broadcast address.
constexpr std::array<const char*, 4> kRefusedRanges = {"0.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4",
                                                       "240.0.0.0/4"};

// The MTU slirp4netns's authors recommend for throughput (its maximum is
// 65521); the tap device is virtual, so nothing on a wire sees it.
constexpr const char* kMtu = "--mtu=65520";

// Reads `fd` until `text` holds `end` or the writer is gone; what it read.
std::string read_until(int fd, char end) {
  std::string text;
  char buf[512];
  while (text.find(end) == std::string::npos && text.size() < 65536) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Runs argv with `input` on its stdin and waits; its stderr in the error.
// `fd5`, when valid, is its descriptor 5.
Status run_tool(os::ProcessLauncher* launcher, const std::vector<std::string>& argv,
                const std::string& input, int fd5) {
  os::Fd in_r, in_w, err_r, err_w;
  KILN_RETURN_IF_ERROR(os::make_pipe(&in_r, &in_w));
  KILN_RETURN_IF_ERROR(os::make_pipe(&err_r, &err_w));
  // Written whole before the child exists: a few lines fit in any pipe,
  // and no reader can go away under the write.
  for (size_t done = 0; done < input.size();) {
    ssize_t n = ::write(in_w.get(), input.data() + done, input.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return internal_error(std::string("cannot write a pipe: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  in_w.reset();
  os::SpawnOptions so;
  so.argv = argv;
  so.stderr_fd = err_w.get();
  so.fds = {{in_r.get(), STDIN_FILENO}};
  if (fd5 >= 0) so.fds.push_back({fd5, 5});
  KILN_ASSIGN_OR_RETURN(os::Child child, launcher->start(so));
  err_w.reset();
  const std::string err = read_until(err_r.get(), '\0');
  KILN_ASSIGN_OR_RETURN(os::ExitStatus st, child.wait());
  if (!st.ok()) {
    return unavailable("sandbox: " + argv[0] + " failed (" + st.describe() +
                       (err.empty() ? "" : ": " + trimmed(err)) + ")");
  }
  return Status::ok();
}

}  // namespace

std::vector<std::string> network_handshake_args() {
  return {"--info-fd", std::to_string(kInfoFd), "--block-fd", std::to_string(kBlockFd)};
}

std::vector<std::string> refused_destinations() {
  std::vector<std::string> out(kRefusedRanges.begin(), kRefusedRanges.end());
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  std::set<std::string> seen;
  for (const ifaddrs* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    const in_addr addr = reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr;
    if ((ntohl(addr.s_addr) >> 24) == 127) continue;  // the namespace's own loopback
    char text[INET_ADDRSTRLEN];
    if (!::inet_ntop(AF_INET, &addr, text, sizeof text)) continue;
    if (seen.insert(text).second) out.push_back(std::string(text) + "/32");
  }
  ::freeifaddrs(list);
  return out;
}

Network& Network::operator=(Network&& o) noexcept {
  if (this != &o) {
    stop();
    slirp_ = std::move(o.slirp_);
    exit_ = std::move(o.exit_);
  }
  return *this;
}

void Network::stop() {
  exit_.reset();  // slirp4netns's --exit-fd sees the end of its pipe
  if (!slirp_.running()) return;
  auto st = slirp_.wait();
  (void)st;
}

Result<os::Child> start(os::ProcessLauncher* launcher, os::SpawnOptions options, bool network,
                        Network* net, const NetTools& tools) {
  if (!network) return launcher->start(options);
  const bool as_root = ::geteuid() == 0;
  os::Fd info_r, info_w, block_r, block_w;
  KILN_RETURN_IF_ERROR(os::make_pipe(&info_r, &info_w));
  KILN_RETURN_IF_ERROR(os::make_pipe(&block_r, &block_w));
  options.fds.push_back({info_w.get(), kInfoFd});
  options.fds.push_back({block_r.get(), kBlockFd});
  KILN_ASSIGN_OR_RETURN(os::Child sandbox, launcher->start(options));
  info_w.reset();
  block_r.reset();

  // bwrap's report, one JSON object; it stops there until the byte comes.
  const std::string info = read_until(info_r.get(), '}');
  info_r.reset();
  const nlohmann::json j = nlohmann::json::parse(info, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("child-pid") || !j["child-pid"].is_number_integer()) {
    auto st = sandbox.wait();
    return unavailable("sandbox: bwrap ended before its namespaces were made (" +
                       (st.is_ok() ? st->describe() : st.status().message()) +
                       "; see the process's log)");
  }
  const std::string pid = std::to_string(j["child-pid"].get<int64_t>());

  // slirp4netns: ready when the tap device is up with its address and
  // default route. Its stderr goes to an unnamed file, read only if it
  // fails to start: a pipe nobody reads later would block it once full,
  // or kill it with SIGPIPE once closed, in the middle of a task.
  os::Fd ready_r, ready_w, exit_r, exit_w;
  KILN_RETURN_IF_ERROR(os::make_pipe(&ready_r, &ready_w));
  KILN_RETURN_IF_ERROR(os::make_pipe(&exit_r, &exit_w));
  os::Fd err_file(::open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  // A /tmp without O_TMPFILE: the messages are lost, nothing else.
  if (!err_file.valid()) err_file = os::Fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  os::SpawnOptions so;
  so.argv = {tools.slirp4netns,         "--configure",  kMtu,
             "--disable-host-loopback", "--ready-fd=3", "--exit-fd=4"};
  // Unprivileged, the namespace belongs to the user namespace bwrap made,
  // in which we (its owner) hold the capabilities slirp4netns and ip need.
  // Not the child's own: --disable-userns moves it to a nested one, which
  // holds none over the network namespace. Handed on as descriptor 5.
  os::Fd userns;
  if (!as_root) {
    os::Fd netns(::open(("/proc/" + pid + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC));
    if (netns.valid()) userns = os::Fd(::ioctl(netns.get(), NS_GET_USERNS));
    if (!userns.valid()) {
      return unavailable("sandbox: cannot find the user namespace of the sandbox's network (" +
                         std::string(std::strerror(errno)) + ")");
    }
    so.argv.push_back("--userns-path=/proc/self/fd/5");
    so.fds.push_back({userns.get(), 5});
  }
  so.argv.insert(so.argv.end(), {pid, "tap0"});
  so.stderr_fd = err_file.get();
  so.fds.push_back({ready_w.get(), 3});
  so.fds.push_back({exit_r.get(), 4});
  KILN_ASSIGN_OR_RETURN(os::Child slirp, launcher->start(so));
  ready_w.reset();
  exit_r.reset();
  if (read_until(ready_r.get(), '1').find('1') == std::string::npos) {
    exit_w.reset();
    auto st = slirp.wait();
    ::lseek(err_file.get(), 0, SEEK_SET);
    const std::string err = read_until(err_file.get(), '\0');
    return unavailable("sandbox: " + tools.slirp4netns + " did not bring the network up (" +
                       (st.is_ok() ? st->describe() : st.status().message()) +
                       (err.empty() ? "" : ": " + trimmed(err)) + ")");
  }

  std::string batch;
  for (const std::string& d : refused_destinations()) batch += "route add prohibit " + d + "\n";
  std::vector<std::string> nsenter = {tools.nsenter, "--net=/proc/" + pid + "/ns/net"};
  if (!as_root) nsenter.insert(nsenter.end(), {"--user=/proc/self/fd/5", "--preserve-credentials"});
  nsenter.insert(nsenter.end(), {"--", tools.ip, "-batch", "-"});
  KILN_RETURN_IF_ERROR(run_tool(launcher, nsenter, batch, userns.get()));

  // The command may run now.
  while (::write(block_w.get(), "1", 1) < 0) {
    if (errno != EINTR) {
      return internal_error(std::string("sandbox: cannot release bwrap: ") + std::strerror(errno));
    }
  }
  net->stop();
  net->slirp_ = std::move(slirp);
  net->exit_ = std::move(exit_w);
  return sandbox;
}

Status probe_network(const Policy& policy, os::ProcessLauncher* launcher, const NetTools& net_tools,
                     const Tools& tools) {
  for (const std::string* t : {&net_tools.slirp4netns, &net_tools.nsenter, &net_tools.ip}) {
    if (::access(t->c_str(), X_OK) != 0) {
      return unavailable("sandbox: " + *t + " is missing (" + std::strerror(errno) +
                         "), and an environment has a remote source root: its tasks need their "
                         "own network. Install Debian's slirp4netns and iproute2, or remove the "
                         "remote roots");
    }
  }
  View view;
  view.network = true;
  os::SpawnOptions so;
  KILN_ASSIGN_OR_RETURN(Wrapped w,
                        wrap(view, policy.limits, {"/bin/true"}, ::geteuid() == 0, tools));
  w.hand_on(&so);
  so.env = scrub_env(policy, current_env());
  Network net;
  KILN_ASSIGN_OR_RETURN(os::Child child, start(launcher, so, true, &net, net_tools));
  KILN_ASSIGN_OR_RETURN(os::ExitStatus st, child.wait());
  net.stop();
  if (!st.ok()) {
    return unavailable("sandbox: a sandbox with network did not run (/bin/true: " + st.describe() +
                       ")");
  }
  return Status::ok();
}

}  // namespace kiln::sandbox
