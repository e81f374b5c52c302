#include "cluster/sandbox_planner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "common/sandbox_net.h"

namespace kiln::cluster {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A plan line is a few numbers; an error line a message. Beyond this the
// child is not talking to us.
constexpr size_t kMaxOutput = 1 << 20;

std::map<std::string, std::vector<std::string>> roots_of(const config::ServerConfig& config) {
  std::map<std::string, std::vector<std::string>> m;
  for (const auto& e : config.environments) m[e.name] = e.source_roots;
  return m;
}

// The definition file handed to one child; removed when the call ends.
class TempFile {
 public:
  ~TempFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  Status create(const std::string& dir, const std::string& text) {
    std::string tmpl = dir + "/plan-XXXXXX";
    os::Fd fd(::mkstemp(tmpl.data()));
    if (!fd.valid()) return io_error("cannot create '" + tmpl + "': " + std::strerror(errno));
    path_ = tmpl;
    // Readable by the sandbox user; the directory around it is private.
    ::fchmod(fd.get(), 0644);
    for (size_t done = 0; done < text.size();) {
      ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return io_error("cannot write '" + path_ + "': " + std::strerror(errno));
      done += static_cast<size_t>(n);
    }
    return fd.close(path_);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

StatusCode code_named(const std::string& name) {
  for (StatusCode c : {StatusCode::kInvalidArgument, StatusCode::kInputError, StatusCode::kNotFound,
                       StatusCode::kEmpty}) {
    if (name == status_code_name(c)) return c;
  }
  // Whatever else planning the tenant's input hits is the definition's
  // fault as far as the submit is concerned.
  return StatusCode::kInvalidArgument;
}

}  // namespace

SandboxPlanner::SandboxPlanner(const config::ServerConfig& config, std::string kiln_exe,
                               std::string work_dir, os::ProcessLauncher* launcher,
                               const Clock& clock)
    : policy_(config.sandbox),
      roots_(roots_of(config)),
      kiln_exe_(std::move(kiln_exe)),
      work_dir_(std::move(work_dir)),
      launcher_(launcher),
      clock_(clock) {}

Result<PlanSummary> SandboxPlanner::plan(const ingest::IngestDefinition& def, int threads) {
  std::error_code ec;
  fs::create_directories(work_dir_, ec);
  ::chmod(work_dir_.c_str(), 0700);
  TempFile file;
  KILN_RETURN_IF_ERROR(file.create(work_dir_, ingest::to_json(def).dump()));

  // Inside the sandbox the definition is shown at a fixed path: the host
  // path lies in the private state_dir, whose parents uid 65534 may not
  // cross (and which may lie under a source root, bound before it).
  const bool sandboxed = policy_.mode == sandbox::Mode::kBwrap;
  const std::string inside = "/kiln-plan-definition.json";
  std::vector<std::string> command = {kiln_exe_,
                                      "task",
                                      "plan",
                                      "--definition",
                                      sandboxed ? inside : file.path(),
                                      "--threads",
                                      std::to_string(threads)};
  os::SpawnOptions so;
  sandbox::Wrapped wrapped;  // holds the seccomp program until the spawn
  bool network = false;
  if (sandboxed) {
    sandbox::View view;
    view.read_only = {kiln_exe_};
    view.read_only_at = {{file.path(), inside}};
    auto roots = roots_.find(def.output.environment);
    if (roots != roots_.end()) sandbox::add_source_roots(roots->second, &view);
    sandbox::Limits limits = policy_.limits;
    limits.cpu_seconds = policy_.plan_cpu_seconds;
    KILN_ASSIGN_OR_RETURN(wrapped, sandbox::wrap(view, limits, command, ::geteuid() == 0));
    wrapped.hand_on(&so);
    network = view.network;
    so.env = sandbox::scrub_env(policy_, sandbox::current_env());
  } else {
    so.argv = command;
  }
  os::Fd out, out_write;
  KILN_RETURN_IF_ERROR(os::make_pipe(&out, &out_write));
  so.stdout_fd = out_write.get();
  sandbox::Network net;  // declared first: it stops after the child is killed
  KILN_ASSIGN_OR_RETURN(os::Child child, sandbox::start(launcher_, so, network, &net));
  out_write.reset();

  const int64_t deadline = clock_.now_ms() + policy_.plan_timeout_seconds * 1000;
  const std::string timeout_message =
      "planning did not finish within " + std::to_string(policy_.plan_timeout_seconds) +
      " s (its sources are too slow or too large to plan); no step was created, try again later";
  std::string output;
  bool eof = false;
  while (!eof) {
    const int64_t now = clock_.now_ms();
    if (now >= deadline) {
      (void)child.signal(SIGKILL);  // bwrap's --die-with-parent takes the planner with it
      (void)child.wait();
      return unavailable(timeout_message);
    }
    pollfd p{out.get(), POLLIN, 0};
    const int wait_ms =
        static_cast<int>(std::min<int64_t>(clock_.real_wait(deadline).count(), 1000));
    int r = ::poll(&p, 1, wait_ms);
    if (r < 0 && errno != EINTR)
      return internal_error(std::string("poll: ") + std::strerror(errno));
    if (r <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(out.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      eof = true;
    } else if (output.size() < kMaxOutput) {
      output.append(buf, static_cast<size_t>(n));
    }
  }
  // Its stdout is closed; it exits now (or is killed at the deadline).
  std::optional<os::ExitStatus> status;
  while (!status) {
    KILN_ASSIGN_OR_RETURN(status, child.reap(/*wait=*/false));
    if (status) break;
    if (clock_.now_ms() >= deadline) {
      (void)child.signal(SIGKILL);
      (void)child.wait();
      return unavailable(timeout_message);
    }
    ::poll(nullptr, 0, static_cast<int>(std::min<int64_t>(clock_.real_wait(deadline).count(), 5)));
  }

  const size_t nl = output.find('\n');
  json line = json::parse(output.substr(0, nl), nullptr, /*allow_exceptions=*/false);
  auto integer = [](const json& o, const char* key) {
    return o.is_object() && o.contains(key) && o.at(key).is_number_integer();
  };
  if (line.is_object() && line.contains("plan") && status->ok()) {
    const json& p = line.at("plan");
    if (integer(p, "partitions") && integer(p, "tiles_total")) {
      return PlanSummary{p.at("partitions").get<int64_t>(), p.at("tiles_total").get<int64_t>()};
    }
  }
  if (line.is_object() && line.contains("error")) {
    const json& e = line.at("error");
    if (e.is_object() && e.contains("message") && e.at("message").is_string()) {
      const std::string code =
          e.contains("code") && e.at("code").is_string() ? e.at("code").get<std::string>() : "";
      return Status(code_named(code), e.at("message").get<std::string>());
    }
  }
  // Killed by its CPU limit: directly, or as bwrap reports a command that
  // died of signal N (exit status 128 + N).
  if ((status->signaled && status->signal == SIGXCPU) ||
      (!status->signaled && status->code == 128 + SIGXCPU)) {
    return invalid_argument("planning used more than its " +
                            std::to_string(policy_.plan_cpu_seconds) + " s of CPU time");
  }
  return invalid_argument("planning failed (the planner " + status->describe() +
                          " without a plan; a source may be malformed or too large)");
}

}  // namespace kiln::cluster
