// `kiln serve --config kiln.toml`: the warm cluster in one process.
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <climits>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "common/log.h"
#include "common/process.h"
#include "common/sandbox.h"
#include "common/sandbox_net.h"
#include "config/server_config.h"
#include "server/server.h"

namespace kiln::cli {
namespace {

// glibc malloc settings of `kiln serve` (run_serve): free memory at an
// arena's top is kept up to this much, and blocks below this size come
// from the arenas (not a mmap and munmap each). 32 MiB is glibc's largest
// mmap threshold on 64-bit.
constexpr int kServeTrimThreshold = 256 << 20;
constexpr int kServeMmapThreshold = 32 << 20;

struct ServeFlags {
  std::string config;
  std::string listen;     // overrides server.listen
  std::string state_dir;  // overrides server.state_dir
  std::string port_file;  // writes the bound port here (tests use port 0)
};

// Tenant input is opened only in the sandbox: a bubblewrap that does not
// work stops the start here, never a silent unsandboxed run. The operator's
// opt-out is logged loudly.
Status check_sandbox(const config::ServerConfig& config) {
  if (config.sandbox.mode == sandbox::Mode::kNone) {
    log::warn(
        "SANDBOX DISABLED ([sandbox] mode = \"none\"): tasks and the planner open tenant "
        "sources as this server's user, with its files, secrets and network in reach. "
        "For development only; never with tenants you do not trust.");
    return Status::ok();
  }
  KILN_RETURN_IF_ERROR(sandbox::probe(config.sandbox, &os::posix_launcher()));
  // A remote root's tasks and plans reach out through slirp4netns: it must
  // work before any of them runs (common/sandbox_net.h).
  std::string remote;  // the first environment with a remote root, for the message
  for (const auto& e : config.environments) {
    for (const auto& r : e.source_roots) {
      if (remote.empty() && sandbox::is_remote_root(r)) {
        remote = "environment '" + e.name + "' has the remote source root '" + r + "': ";
      }
    }
  }
  if (!remote.empty()) {
    Status st = sandbox::probe_network(config.sandbox, &os::posix_launcher());
    if (!st.is_ok()) return Status(st.code(), remote + st.message());
  }
  log::info(std::string("sandbox: bubblewrap, tasks run as uid ") + std::to_string(sandbox::kUid) +
            (::geteuid() == 0 ? "" : " in a user namespace") + ", address space " +
            (sandbox::address_space_limit_applies()
                 ? std::to_string(config.sandbox.limits.address_space_mb) + " MiB"
                 : std::string("unlimited (a sanitizer build)")) +
            ", CPU " + std::to_string(config.sandbox.limits.cpu_seconds) + " s");
  return Status::ok();
}

std::string self_exe() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "kiln";
  buf[n] = '\0';
  return buf;
}

int run_serve(const ServeFlags& f) {
  auto config = config::load_config(f.config);
  if (!config.is_ok()) {
    log::error(config.status().message());
    return exit_code_for(config.status());
  }
  if (!f.listen.empty()) {
    // Same parser as the file's server.listen.
    auto c = config::parse_config("[server]\nlisten = \"" + f.listen +
                                      "\"\n[[environment]]\nname = \"x\"\ntoken_sha256 = [\"" +
                                      std::string(64, '0') + "\"]\ncatalog = \"/\"\n",
                                  "/");
    if (!c.is_ok()) {
      log::error("--listen: " + c.status().message());
      return kExitUsage;
    }
    config->host = c->host;
    config->port = c->port;
  }
  if (!f.state_dir.empty()) config->state_dir = f.state_dir;

  // Answers (tiles, JSON pages) are allocated on handler threads and freed
  // on the loop thread, tens of thousands a second. With glibc's defaults
  // every free that leaves a handler arena's top above 128 KiB hands the
  // pages back (madvise, a TLB flush on every core) and the next answer
  // faults them in again: a fifth of a stored tile's cost. Kept instead;
  // what the server holds at its busiest stays mapped.
  ::mallopt(M_TRIM_THRESHOLD, kServeTrimThreshold);
  ::mallopt(M_MMAP_THRESHOLD, kServeMmapThreshold);

  // Signals go to one thread that turns them into a graceful shutdown; every
  // other thread (HTTP pool, scheduler) inherits the blocked mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  if (Status st = check_sandbox(*config); !st.is_ok()) {
    log::error(st.message());
    return exit_code_for(st);
  }
  auto server = server::Server::start(*config, self_exe());
  if (!server.is_ok()) {
    log::error(server.status().message());
    return exit_code_for(server.status());
  }
  server::Server* s = server->get();
  if (!f.port_file.empty()) {
    FILE* pf = std::fopen(f.port_file.c_str(), "w");
    if (pf) {
      std::fprintf(pf, "%d\n", s->port());
      std::fclose(pf);
    }
  }
  log::info("kiln serve listening on http://" + config->host + ":" + std::to_string(s->port()) +
            " (state " + config->state_dir + ", " + std::to_string(config->environments.size()) +
            " environment(s), " + std::to_string(config->workers) + " worker(s) x " +
            std::to_string(config->slots_per_worker) + " slot(s))");
  std::thread signals([s, set] {
    int sig = 0;
    sigwait(&set, &sig);
    log::info(std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT"));
    s->shutdown();
  });
  s->run();
  // The signal thread calls into the server: wake it if no signal came
  // (shutdown() does nothing a second time) and wait for it before the
  // server goes (TSan saw ~StepEvents race its close()).
  pthread_kill(signals.native_handle(), SIGTERM);
  signals.join();
  server->reset();
  return kExitOk;
}

}  // namespace

Command add_serve_command(CLI::App& app) {
  auto flags = std::make_shared<ServeFlags>();
  Command c;
  c.app = app.add_subcommand(
      "serve",
      "Run the warm cluster: the step API, the scheduler, the job store (SQLite) and a pool of\n"
      "local workers, in one long-lived process. SIGTERM stops it gracefully; it can also be\n"
      "killed at any moment and restarted on the same state directory without losing a step.\n"
      "See examples/kiln.toml for every setting and docs/cluster.md for the API.");
  c.app->add_option("--config", flags->config, "The TOML configuration file")
      ->required()
      ->check(CLI::ExistingFile);
  c.app->add_option("--listen", flags->listen,
                    "HOST:PORT to listen on, overriding server.listen (port 0: any free port)");
  c.app->add_option("--state-dir", flags->state_dir, "Overrides server.state_dir");
  c.app->add_option("--port-file", flags->port_file,
                    "Write the port actually bound to this file once listening");
  c.run = [flags] { return run_serve(*flags); };
  return c;
}

}  // namespace kiln::cli
