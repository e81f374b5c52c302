#include "server/server.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "catalog/catalog.h"
#include "cluster/sandbox_planner.h"
#include "common/log.h"
#include "raster/gdal_env.h"
#include "server/http_util.h"
#include "slurm/dispatcher.h"
#include "slurm/slurm_executor.h"
#include "worker/local_executor.h"

namespace kiln::server {
namespace {

namespace fs = std::filesystem;

// The first line of a file; "" when it cannot be read.
std::string read_first_line(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  if (in) std::getline(in, line);
  return line;
}

}  // namespace

Server::Server(const ServerConfig& config, const Clock& clock)
    : config_(config),
      clock_(clock),
      started_ms_(clock.now_ms()),
      events_(clock),
      policies_(config_.environments),
      http_(http_options()) {}

http::ServerOptions Server::http_options() {
  http::ServerOptions o;
  o.limits.max_header_bytes = static_cast<size_t>(config_.max_header_bytes);
  o.limits.max_body_bytes = config_.max_body_bytes;
  o.handler_threads = static_cast<size_t>(config_.http_threads);
  o.header_timeout_ms = config_.header_timeout_seconds * 1000LL;
  o.body_timeout_ms = config_.body_timeout_seconds * 1000LL;
  o.idle_timeout_ms = config_.idle_timeout_seconds * 1000LL;
  o.write_timeout_ms = config_.write_timeout_seconds * 1000LL;
  o.max_connections = static_cast<size_t>(config_.max_connections);
  o.max_connections_per_address = static_cast<size_t>(config_.max_connections_per_address);
  o.max_buffered_body_bytes = config_.max_buffered_body_bytes;
  o.clock = &clock_;
  o.on_request = [this](const http::Request&) { counters_.http_requests++; };
  return o;
}

Result<std::unique_ptr<Server>> Server::start(const ServerConfig& config,
                                              const std::string& kiln_exe) {
  std::unique_ptr<Server> s(new Server(config, system_clock()));
  const ServerConfig& cfg = s->config_;
  const std::string logs_dir = (fs::path(cfg.state_dir) / "logs").string() + "/";
  std::error_code ec;
  fs::create_directories(logs_dir, ec);
  if (ec) return io_error("state_dir '" + cfg.state_dir + "': cannot create it: " + ec.message());
  // The job store, step logs and plans are the server's alone: sandboxed
  // tasks (uid 65534) must not read them even where a source root covers
  // the state_dir by mistake (docs/security.md).
  fs::permissions(cfg.state_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec) log::warn("state_dir '" + cfg.state_dir + "': cannot make it private: " + ec.message());
  for (const auto& e : cfg.environments) {
    auto cat = catalog::Catalog::open(e.catalog, /*create=*/true);
    if (!cat.is_ok()) return cat.status().with_context("environment '" + e.name + "'");
  }
  init_gdal();
  const bool slurm = cfg.executor == "slurm";

  // The core: store, logs, and what a restart left behind.
  KILN_ASSIGN_OR_RETURN(s->store_, store::JobStore::open(cfg.state_dir));
  s->log_ = std::make_unique<cluster::StepLog>(logs_dir, s->clock_);
  cluster::SchedulerOptions so;
  so.lease_seconds = cfg.lease_seconds;
  Server* raw = s.get();
  so.on_start_latency = [raw](double seconds) { raw->counters_.start_latency.observe(seconds); };
  s->scheduler_ =
      std::make_unique<cluster::Scheduler>(so, cfg.environments, s->store_.get(), s->log_.get(),
                                           &s->policies_, &s->events_, &s->lifecycle_, s->clock_);
  KILN_RETURN_IF_ERROR(s->scheduler_->recover(/*workers_outlive_server=*/slurm));

  // Slurm jobs read the token from a file when they start, maybe after a
  // restart of the server: it stays the same across restarts.
  if (slurm) s->worker_token_ = read_first_line(fs::path(cfg.state_dir) / "slurm" / "worker-token");
  if (s->worker_token_.empty()) s->worker_token_ = new_token();
  if (s->worker_token_.empty()) return internal_error("cannot draw random bytes for a token");

  // The port first: workers and Slurm tasks are told where to reach us.
  auto port = s->http_.bind(cfg.host, cfg.port);
  if (!port.is_ok()) {
    return io_error("cannot listen on " + cfg.host + ":" + std::to_string(cfg.port) +
                    " (in use, or not an address of this host): " + port.status().message());
  }
  s->port_ = *port;
  log::info("http: at most " + std::to_string(s->http_.max_connections()) + " connections, " +
            std::to_string(cfg.max_connections_per_address) + " per client address, " +
            std::to_string(cfg.http_threads) + " handler threads");

  KILN_RETURN_IF_ERROR(s->make_executor(kiln_exe));
  s->elastic_ = std::make_unique<cluster::ElasticControl>(cfg, s->store_.get(), s->executor_.get());
  cluster::StepServiceOptions sso;
  sso.max_attempts = cfg.max_attempts;
  sso.plan_threads = cluster::plan_threads_for(cfg);
  sso.started_ms = s->started_ms_;
  sso.definition_file.max_bytes = cfg.max_body_bytes;
  s->planner_ = std::make_unique<cluster::SandboxPlanner>(
      cfg, kiln_exe, (fs::path(cfg.state_dir) / "plans").string(), &os::posix_launcher(),
      s->clock_);
  s->steps_ = std::make_unique<cluster::CoreStepService>(sso, s->store_.get(), s->planner_.get(),
                                                         s->log_.get(), &s->policies_, &s->events_,
                                                         &s->lifecycle_, s->clock_);
  cluster::WorkerProtocolOptions wo;
  wo.lease_seconds = cfg.lease_seconds;
  wo.heartbeat_seconds = cfg.heartbeat_seconds;
  wo.cancel_grace_seconds = cfg.cancel_grace_seconds;
  wo.starvation_seconds = cfg.starvation_seconds;
  wo.sandbox = sandbox::policy_to_json(cfg.sandbox);
  for (const auto& e : cfg.environments) wo.source_roots[e.name] = e.source_roots;
  s->workers_ = std::make_unique<cluster::WorkerProtocol>(wo, s->store_.get(), s->elastic_.get(),
                                                          s->log_.get(), &s->policies_, &s->events_,
                                                          &s->lifecycle_, s->clock_);

  // Every step event wakes the scheduler for a pass.
  cluster::Scheduler* scheduler = s->scheduler_.get();
  s->events_.add_listener([scheduler] { scheduler->kick(); });
  if (s->dispatcher_) {
    slurm::Dispatcher* d = s->dispatcher_.get();
    cluster::StepEvents* events = &s->events_;
    // The dispatcher may fail a step (sbatch refusals): waiters look again.
    s->scheduler_->add_tick(
        [d, events](int64_t now) {
          d->tick(now);
          events->notify();
        },
        /*while_stopping=*/false);
  }
  worker::Executor* executor = s->executor_.get();
  s->scheduler_->add_tick([executor](int64_t) { executor->tick(); }, /*while_stopping=*/true);
  cluster::ElasticControl* elastic = s->elastic_.get();
  s->scheduler_->add_tick([elastic](int64_t now) { elastic->tick(now); },
                          /*while_stopping=*/false);

  // The doors.
  s->tokens_ = std::make_unique<TokenTable>(cfg);
  if (!s->tokens_->metrics_need_token()) {
    log::warn(
        "/metrics needs no token: anyone who reaches the port reads every environment's "
        "step counts; set [server] metrics_token_sha256 to require one");
  }
  s->quotas_ = std::make_unique<EnvironmentQuotas>(cfg);
  s->waiters_ = std::make_unique<StepWaiters>(*s->steps_, s->events_, s->clock_);
  // Markers outlive a restart, like the steps they point at.
  KILN_ASSIGN_OR_RETURN(
      std::string marker_key,
      ListMarkers::load_or_create_key((fs::path(cfg.state_dir) / "list-marker.key").string()));
  s->markers_ = std::make_unique<ListMarkers>(std::move(marker_key));
  s->worker_api_ = std::make_unique<WorkerApi>(*s->workers_, s->worker_token_);
  // Sessions outlive a restart too: a browser need not sign in again.
  KILN_ASSIGN_OR_RETURN(std::string session_key,
                        ListMarkers::load_or_create_key(
                            (fs::path(cfg.state_dir) / "session.key").string(), "session key"));
  s->sessions_ = std::make_unique<Sessions>(std::move(session_key));
  if (cfg.render_processes > 0) {
    RenderPool::Options ro;
    ro.processes = cfg.render_processes;
    ro.timeout_ms = int64_t{cfg.render_timeout_seconds} * 1000;
    s->render_pool_ =
        std::make_unique<RenderPool>(cfg, kiln_exe, ro, &os::posix_launcher(), s->clock_);
  }
  s->tiles_ = std::make_unique<TilesApi>(TilesApi::Deps{
      cfg, *s->tokens_, *s->quotas_, *s->sessions_, s->clock_, s->render_pool_.get()});
  if (cfg.emr_enabled) {
    s->emr_ = std::make_unique<EmrDoor>(*s->steps_, cfg, *s->quotas_, *s->markers_);
  }
  // The doors that take the browser's session cookie as well as a token
  // (authenticate.h), after the sessions.
  s->rest_ = std::make_unique<RestApi>(RestApi::Deps{
      cfg, *s->steps_, *s->elastic_, *s->workers_, *s->scheduler_, *s->tokens_, s->lifecycle_,
      s->counters_, s->clock_, *s->quotas_, *s->waiters_, *s->markers_, *s->sessions_});
  s->catalog_api_ = std::make_unique<CatalogApi>(
      CatalogApi::Deps{cfg, *s->steps_, *s->tokens_, *s->quotas_, *s->sessions_, s->clock_});
  cluster::CoreStepService* steps = s->steps_.get();
  s->history_ = std::make_unique<ClusterHistory>(
      cfg, [steps](const EnvironmentConfig& env) { return steps->cluster(env); });
  ClusterHistory* history = s->history_.get();
  s->scheduler_->add_tick([history](int64_t now) { history->tick(now); },
                          /*while_stopping=*/false);
  s->console_ = std::make_unique<Console>(Console::Deps{
      Authenticator{*s->tokens_, cfg, *s->quotas_, *s->sessions_, s->clock_}, *s->history_});
  s->install_routes();
  // The doors answer before the executor launches a node: a worker's
  // registration must not wait for the last of hundreds of launches (with
  // the loop started only in run(), a large core group timed out its own
  // registrations and restarted its workers in a loop; issue 14).
  s->http_thread_ = std::thread([raw] { raw->http_.run(); });

  // Then the executor, the warm core and the scheduler.
  KILN_RETURN_IF_ERROR(s->executor_->start());
  KILN_RETURN_IF_ERROR(s->elastic_->start(s->clock_.now_ms()));
  s->scheduler_->start();
  return s;
}

Status Server::make_executor(const std::string& kiln_exe) {
  if (config_.executor == "slurm") {
    slurm::SlurmClientOptions so;
    so.conf = config_.slurm.conf;
    so.bin_dir = config_.slurm.bin_dir;
    KILN_ASSIGN_OR_RETURN(slurm::SlurmClient client, slurm::SlurmClient::create(so));
    slurm::DispatcherOptions d;
    d.kiln_exe = config_.slurm.kiln.empty() ? kiln_exe : config_.slurm.kiln;
    d.server_url = config_.slurm.server_url.empty() ? "http://127.0.0.1:" + std::to_string(port_)
                                                    : config_.slurm.server_url;
    d.state_dir = config_.state_dir;
    d.token = worker_token_;
    d.partitions = config_.slurm.partitions;
    for (const auto& e : config_.environments) d.environments.push_back(e.name);
    d.poll_ms = config_.slurm.poll_ms;
    d.resubmit_after_ms = config_.slurm.resubmit_after_seconds * 1000LL;
    cluster::StepLog* log = log_.get();
    d.log_path = [log](const std::string& step) { return log->path(step); };
    d.step_log = [log](const std::string& step, const std::string& line) {
      log->append(step, line);
    };
    std::vector<std::string> static_nodes, cloud_nodes;
    for (const auto& g : config_.autoscaler.groups) {
      auto& names = g.core ? static_nodes : cloud_nodes;
      names.insert(names.end(), g.node_names.begin(), g.node_names.end());
    }
    executor_ = std::make_unique<slurm::SlurmExecutor>(client, std::move(static_nodes),
                                                       std::move(cloud_nodes));
    dispatcher_ = std::make_unique<slurm::Dispatcher>(store_.get(), std::move(client), d);
    KILN_RETURN_IF_ERROR(dispatcher_->start());
    log::info("executor slurm: SLURM_CONF=" + config_.slurm.conf + ", tasks run " + d.kiln_exe +
              " slurm-task, reaching this server at " + d.server_url);
    return Status::ok();
  }
  worker::LocalExecutorOptions eo;
  eo.server_url = "http://127.0.0.1:" + std::to_string(port_);
  eo.token = worker_token_;
  eo.state_dir = config_.state_dir;
  eo.clock = &clock_;
  // kiln-worker, built with kiln and installed next to it, is the same
  // worker without GDAL: it starts in ~10 ms of CPU instead of ~110 ms,
  // which is what lets hundreds of nodes start at once (issue 14).
  const std::string lean = (fs::path(kiln_exe).parent_path() / "kiln-worker").string();
  if (::access(lean.c_str(), X_OK) == 0) {
    eo.command = {lean, "--server", eo.server_url, "--nice", std::to_string(config_.worker_nice)};
  } else {
    log::warn("'" + lean + "' is missing: local workers run as `kiln worker`, which starts " +
              "slower (it loads GDAL)");
    eo.command = {kiln_exe,      "worker", "--server",
                  eo.server_url, "--nice", std::to_string(config_.worker_nice)};
  }
  eo.nice = config_.worker_nice;
  // Called on the executor's thread; workers_ exists before the executor
  // starts a process.
  eo.on_worker_exit = [this](int64_t pid) { workers_->worker_exited(pid); };
  executor_ = std::make_unique<worker::LocalExecutor>(eo);
  return Status::ok();
}

void Server::install_routes() {
  // Limits, deadlines, 404/405/413 and a handler's exception (500 with a
  // request id) are the front door's own (src/http).
  rest_->install(http_);
  catalog_api_->install(http_);
  if (emr_) emr_->install(http_);
  worker_api_->install(http_);
  tiles_->install(http_);
  console_->install(http_);
}

Server::~Server() {
  http_.stop();
  if (http_thread_.joinable()) http_thread_.join();
  lifecycle_.begin_stopping();
  if (scheduler_) scheduler_->stop();
  events_.close();
  if (executor_) executor_->stop(std::chrono::seconds(0));
}

void Server::run() {
  if (http_thread_.joinable()) http_thread_.join();
}

void Server::shutdown() {
  if (!lifecycle_.begin_stopping()) return;
  log::info("shutting down: no new steps or leases; waiting up to " +
            std::to_string(config_.shutdown_grace_seconds) + " s for running tasks");
  // Slurm's elements outlive the server and report to the next one: no
  // point waiting for them.
  if (!dispatcher_) {
    scheduler_->wait_for_leases(clock_.now_ms() + config_.shutdown_grace_seconds * 1000LL);
  }
  // Tasks still running are stopped; their leases stay in the store and
  // lapse, so the next start runs them again.
  executor_->stop(std::chrono::seconds(config_.cancel_grace_seconds));
  scheduler_->stop();
  events_.close();
  http_.stop();
  log::info("stopped");
}

}  // namespace kiln::server
