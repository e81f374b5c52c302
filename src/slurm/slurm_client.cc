#include "slurm/slurm_client.h"

#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>

#include "common/process.h"

namespace kiln::slurm {
namespace {

using Clock = std::chrono::steady_clock;

// The clients the executor calls.
constexpr const char* kClients[] = {"sbatch", "squeue", "scancel", "scontrol", "sinfo"};

// squeue's fields, '|'-separated: array job id (or job id), array index
// ("N/A" when not an array), state, node list, reason.
constexpr const char* kQueueFormat = "%F|%K|%T|%N|%r";

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  parts.push_back(cur);
  return parts;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

// A client's output: its lines, trimmed, without the blank ones.
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (!line.empty()) out.push_back(std::move(line));
  }
  return out;
}

std::string find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
  for (const std::string& d : split(dirs, ':')) {
    if (d.empty()) continue;
    const std::filesystem::path p = std::filesystem::path(d) / name;
    if (::access(p.c_str(), X_OK) == 0) return d;
  }
  return "";
}

std::string user_name() {
  if (const passwd* pw = ::getpwuid(::getuid())) return pw->pw_name;
  return std::to_string(::getuid());
}

}  // namespace

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

bool is_live_state(const std::string& state) {
  static const std::set<std::string> kLive = {
      "PENDING",     "CONFIGURING",  "RUNNING",      "COMPLETING", "REQUEUED",
      "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING",     "SUSPENDED",  "SIGNALING",
      "STAGE_OUT",   "STOPPED",      "RESV_DEL_HOLD"};
  return kLive.count(state) > 0;
}

Result<SlurmClient> SlurmClient::create(SlurmClientOptions o) {
  if (o.conf.empty()) {
    return invalid_argument(
        "slurm.conf: not set (without SLURM_CONF Slurm's clients look the controller up in DNS)");
  }
  if (o.bin_dir.empty()) {
    o.bin_dir = find_in_path("sbatch");
    if (o.bin_dir.empty()) {
      return not_found(
          "sbatch is not in PATH: install Slurm's clients (apt-get install slurm-client, or "
          "scripts/install-deps.sh)");
    }
  }
  for (const char* c : kClients) {
    const std::filesystem::path p = std::filesystem::path(o.bin_dir) / c;
    if (::access(p.c_str(), X_OK) != 0) {
      return not_found("Slurm client '" + p.string() + "' is missing or not executable");
    }
  }
  return SlurmClient(std::move(o));
}

Result<SlurmClient::Output> SlurmClient::run(const std::vector<std::string>& argv) const {
  os::Fd out_r, out_w, err_r, err_w;
  KILN_RETURN_IF_ERROR(os::make_pipe(&out_r, &out_w));
  KILN_RETURN_IF_ERROR(os::make_pipe(&err_r, &err_w));
  os::SpawnOptions so;
  so.argv = argv;
  so.argv[0] = (std::filesystem::path(o_.bin_dir) / argv[0]).string();
  so.env = os::environment_with("SLURM_CONF", o_.conf);
  so.stdout_fd = out_w.get();
  so.stderr_fd = err_w.get();
  // A client left running by an early return is killed and reaped with
  // `child`.
  KILN_ASSIGN_OR_RETURN(os::Child child, os::posix_launcher().start(so));
  out_w.reset();
  err_w.reset();

  Output result;
  const Clock::time_point deadline = Clock::now() + o_.timeout;
  bool timed_out = false;
  while (out_r.valid() || err_r.valid()) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[2];
    nfds_t n = 0;
    if (out_r.valid()) fds[n++] = {out_r.get(), POLLIN, 0};
    if (err_r.valid()) fds[n++] = {err_r.get(), POLLIN, 0};
    if (::poll(fds, n, static_cast<int>(std::min<int64_t>(left, 1000))) < 0 && errno != EINTR) {
      timed_out = true;  // cannot watch it any more: do not wait for it either
      break;
    }
    for (nfds_t i = 0; i < n; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[8192];
      const ssize_t got = ::read(fds[i].fd, buf, sizeof(buf));
      os::Fd& fd = fds[i].fd == out_r.get() ? out_r : err_r;
      std::string& sink = fds[i].fd == out_r.get() ? result.out : result.err;
      if (got > 0) {
        sink.append(buf, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        fd.reset();
      }
    }
  }
  if (timed_out) (void)child.signal(SIGKILL);
  KILN_ASSIGN_OR_RETURN(os::ExitStatus exit, child.wait());
  const std::string cmd = join(argv, " ");
  if (timed_out) {
    return io_error(
        cmd + ": no answer within " +
        std::to_string(std::chrono::duration_cast<std::chrono::seconds>(o_.timeout).count()) +
        " s (is slurmctld up? SLURM_CONF=" + o_.conf + ")");
  }
  if (!exit.ok()) {
    return io_error(cmd + ": " + exit.describe() +
                    (trim(result.err).empty() ? "" : ": " + trim(result.err)));
  }
  result.code = 0;
  return result;
}

Result<std::string> SlurmClient::submit(const JobRequest& job) const {
  std::vector<std::string> argv = {"sbatch", "--parsable", "--requeue"};
  if (!job.name.empty()) argv.push_back("--job-name=" + job.name);
  if (!job.partition.empty()) argv.push_back("--partition=" + job.partition);
  if (!job.array.empty()) argv.push_back("--array=" + job.array);
  if (!job.after_ok.empty()) {
    argv.push_back("--dependency=afterok:" + join(job.after_ok, ":"));
    argv.push_back("--kill-on-invalid-dep=yes");
  }
  if (!job.output.empty()) {
    argv.push_back("--output=" + job.output);
    argv.push_back("--open-mode=append");
  }
  if (!job.workdir.empty()) argv.push_back("--chdir=" + job.workdir);
  argv.push_back("--cpus-per-task=" + std::to_string(std::max(1, job.cpus_per_task)));
  argv.push_back(job.script);
  for (const std::string& a : job.script_args) argv.push_back(a);
  KILN_ASSIGN_OR_RETURN(Output out, run(argv));
  // "--parsable": "<id>" or "<id>;<cluster>".
  std::string id = trim(out.out);
  if (auto semi = id.find(';'); semi != std::string::npos) id.resize(semi);
  if (id.empty() || !std::all_of(id.begin(), id.end(), ::isdigit)) {
    return io_error("sbatch: unexpected reply '" + trim(out.out) + "'");
  }
  return id;
}

Result<std::vector<JobInfo>> SlurmClient::queue() const {
  KILN_ASSIGN_OR_RETURN(
      Output out, run({"squeue", "--noheader", "--array", "--states=all", "--user=" + user_name(),
                       std::string("--format=") + kQueueFormat}));
  std::vector<JobInfo> jobs;
  for (const std::string& line : lines_of(out.out)) {
    const std::vector<std::string> f = split(line, '|');
    if (f.size() < 5) return io_error("squeue: unexpected line '" + line + "'");
    JobInfo j;
    j.job_id = trim(f[0]);
    const std::string index = trim(f[1]);
    if (index != "N/A" && !index.empty()) {
      try {
        j.index = std::stoll(index);
      } catch (const std::exception&) {
        return io_error("squeue: unexpected array index in '" + line + "'");
      }
    }
    j.state = trim(f[2]);
    j.node = trim(f[3]);
    j.reason = trim(f[4]);
    jobs.push_back(std::move(j));
  }
  return jobs;
}

Status SlurmClient::cancel(const std::vector<std::string>& job_ids,
                           const std::string& signal) const {
  if (job_ids.empty()) return Status::ok();
  if (signal == "KILL") {
    std::vector<std::string> argv = {"scancel", "--full", "--signal=KILL"};
    argv.insert(argv.end(), job_ids.begin(), job_ids.end());
    // Jobs that ended meanwhile make scancel complain; the plain cancel
    // below is what has to succeed.
    (void)run(argv);
  }
  std::vector<std::string> argv = {"scancel"};
  argv.insert(argv.end(), job_ids.begin(), job_ids.end());
  auto r = run(argv);
  return r.is_ok() ? Status::ok() : r.status();
}

Status SlurmClient::release(const std::vector<std::string>& job_ids) const {
  if (job_ids.empty()) return Status::ok();
  auto r = run({"scontrol", "release", join(job_ids)});
  return r.is_ok() ? Status::ok() : r.status();
}

Status SlurmClient::power(const std::string& nodes, bool up) const {
  auto r = run({"scontrol", "update", "NodeName=" + nodes,
                std::string("State=") + (up ? "POWER_UP" : "POWER_DOWN")});
  return r.is_ok() ? Status::ok() : r.status();
}

Status SlurmClient::update_nodes(const std::string& nodes, const std::string& state,
                                 const std::string& reason) const {
  std::vector<std::string> argv = {"scontrol", "update", "NodeName=" + nodes, "State=" + state};
  if (!reason.empty()) argv.push_back("Reason=" + reason);
  auto r = run(argv);
  return r.is_ok() ? Status::ok() : r.status();
}

Result<std::vector<std::string>> SlurmClient::partitions() const {
  KILN_ASSIGN_OR_RETURN(Output out, run({"sinfo", "--noheader", "--format=%R"}));
  std::vector<std::string> names;
  for (const std::string& line : lines_of(out.out)) {
    if (std::find(names.begin(), names.end(), line) == names.end()) names.push_back(line);
  }
  return names;
}

Result<std::vector<NodeInfo>> SlurmClient::nodes() const {
  KILN_ASSIGN_OR_RETURN(Output out, run({"sinfo", "--noheader", "--Node", "--format=%N|%T|%c"}));
  std::vector<NodeInfo> nodes;
  std::set<std::string> seen;  // a node in two partitions is listed twice
  for (const std::string& line : lines_of(out.out)) {
    const std::vector<std::string> f = split(line, '|');
    if (f.size() < 3) return io_error("sinfo: unexpected line '" + line + "'");
    if (!seen.insert(f[0]).second) continue;
    NodeInfo n;
    n.name = f[0];
    n.state = f[1];
    n.cpus = std::atoi(f[2].c_str());
    nodes.push_back(std::move(n));
  }
  return nodes;
}

}  // namespace kiln::slurm
