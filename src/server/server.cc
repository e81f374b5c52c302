#include "server/server.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>

#include "catalog/catalog.h"
#include "common/log.h"
#include "ingest/definition.h"
#include "ingest/plan.h"
#include "raster/gdal_env.h"
#include "server/elastic_control.h"
#include "server/emr.h"
#include "server/json_writer.h"
#include "slurm/dispatcher.h"
#include "slurm/slurm_executor.h"
#include "worker/local_executor.h"

namespace kiln::server {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using httplib::Request;
using httplib::Response;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The first line of a file; "" when it cannot be read.
std::string read_first_line(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  if (in) std::getline(in, line);
  return line;
}

// RFC 3339 UTC with milliseconds; null for "not yet".
json rfc3339(int64_t ms) {
  if (ms <= 0) return nullptr;
  std::string text;
  append_rfc3339(&text, ms);
  return text;
}

void send_json(Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void send_json_text(Response& res, int status, std::string&& text) {
  res.status = status;
  res.set_content(std::move(text), "application/json");
}

void send_error(Response& res, int status, const std::string& code, const std::string& message) {
  send_json(res, status, {{"error", {{"code", code}, {"message", message}}}});
}

// Status -> HTTP for errors from the store and the ingest engine.
void send_status(Response& res, const Status& s) {
  switch (s.code()) {
    case StatusCode::kNotFound:
      return send_error(res, 404, "not_found", s.message());
    case StatusCode::kInvalidArgument:
    case StatusCode::kInputError:
    case StatusCode::kEmpty:
      return send_error(res, 400, "bad_request", s.message());
    case StatusCode::kUnavailable:
      return send_error(res, 503, "unavailable", s.message());
    default:
      return send_error(res, 500, "internal", s.message());
  }
}

// Parses a JSON object body; on failure answers 400 and returns false.
bool parse_body(const Request& req, Response& res, json* out) {
  try {
    *out = json::parse(req.body);
  } catch (const json::parse_error& e) {
    send_error(res, 400, "bad_request", std::string("body is not valid JSON: ") + e.what());
    return false;
  }
  if (!out->is_object()) {
    send_error(res, 400, "bad_request", "body must be a JSON object");
    return false;
  }
  return true;
}

// Refuses members not in `known`, naming the first one.
bool only_known(Response& res, const json& obj, const std::set<std::string>& known,
                const std::string& where) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (!known.count(it.key())) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      send_error(res, 400, "bad_request",
                 where + "unknown field '" + it.key() + "' (known: " + list + ")");
      return false;
    }
  }
  return true;
}

// Writes a step as the API shows it. `with_action`: the full ingest
// definition; lists leave it out (it is most of a step's bytes and a page
// holds up to 1,000 steps).
void write_step(JsonWriter& w, const store::Step& s, const std::string& log_file,
                bool with_action) {
  w.begin_object();
  w.key("id").value(s.id);
  w.key("name").value(s.name);
  w.key("environment").value(s.environment);
  w.key("state").value(store::step_state_name(s.state));
  w.key("action_on_failure").value(s.action_on_failure);
  w.key("created_at").timestamp(s.created_ms);
  w.key("started_at").timestamp(s.started_ms);
  w.key("ended_at").timestamp(s.ended_ms);
  w.key("layer").value(s.layer);
  w.key("version");
  if (s.version != 0) {
    w.value(s.version);
  } else {
    w.null();
  }
  w.key("log_file").value(log_file);
  w.key("cost").begin_object();
  w.key("slot_seconds").value(s.slot_seconds);
  w.key("amount").value(s.cost);
  w.end_object();
  if (with_action && s.action.contains("ingest")) {
    w.key("action").begin_object().key("ingest").value(s.action["ingest"]).end_object();
  }
  w.key("failure");
  if (s.failure) {
    w.begin_object();
    w.key("reason").value(s.failure->reason);
    w.key("message").value(s.failure->message);
    w.key("log_file").value(s.failure->log_file.empty() ? log_file : s.failure->log_file);
    w.end_object();
  } else {
    w.null();
  }
  const auto& p = s.progress;
  w.key("progress").begin_object();
  w.key("tasks_total").value(p.tasks_total);
  w.key("tasks_done").value(p.tasks_done);
  w.key("tiles_total").value(p.tiles_total);
  w.key("tiles_done").value(p.tiles_done);
  w.key("bytes_read").value(p.bytes_read);
  w.key("bytes_written").value(p.bytes_written);
  w.key("eta_seconds");
  if (s.state == store::StepState::kRunning && p.tiles_done > 0 && s.started_ms > 0) {
    const double elapsed = (now_ms() - s.started_ms) / 1000.0;
    w.value(elapsed * static_cast<double>(p.tiles_total - p.tiles_done) / p.tiles_done);
  } else {
    w.null();
  }
  w.end_object();
  w.end_object();
}

std::string step_text(const store::Step& s, const std::string& log_file) {
  std::string out;
  JsonWriter w(&out);
  write_step(w, s, log_file, /*with_action=*/true);
  return out;
}

// Splits "A,B" on commas.
std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool parse_int(const std::string& s, int64_t lo, int64_t hi, int64_t* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (*end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

}  // namespace

Result<std::unique_ptr<Server>> Server::start(const ServerConfig& config,
                                              const std::string& kiln_exe) {
  std::unique_ptr<Server> s(new Server());
  s->config_ = config;
  s->kiln_exe_ = kiln_exe;
  s->logs_dir_ = (fs::path(config.state_dir) / "logs").string() + "/";
  s->started_ms_ = now_ms();
  std::error_code ec;
  fs::create_directories(s->logs_dir_, ec);
  if (ec) {
    return io_error("state_dir '" + config.state_dir + "': cannot create it: " + ec.message());
  }
  for (const auto& e : config.environments) {
    auto cat = catalog::Catalog::open(e.catalog, /*create=*/true);
    if (!cat.is_ok()) return cat.status().with_context("environment '" + e.name + "'");
  }
  init_gdal();

  KILN_ASSIGN_OR_RETURN(s->store_, store::JobStore::open(config.state_dir));
  const int64_t now = now_ms();
  std::vector<std::string> known;
  for (const auto& e : config.environments) known.push_back(e.name);
  KILN_ASSIGN_OR_RETURN(int64_t interrupted, s->store_->interrupt_unknown_environments(known, now));
  if (interrupted) {
    log::warn("interrupted " + std::to_string(interrupted) +
              " step(s) of environments no longer configured");
  }
  const bool slurm = config.executor == "slurm";
  if (slurm) {
    // Slurm jobs outlive the server: their tasks keep running and report
    // in once it is back. Their leases get time for that instead of
    // lapsing over the restart.
    KILN_ASSIGN_OR_RETURN(int64_t held,
                          s->store_->extend_leases(now + 2 * config.lease_seconds * 1000LL));
    if (held > 0) {
      log::info("re-attaching: " + std::to_string(held) +
                " task(s) leased by Slurm jobs of the previous run keep their leases");
    }
  } else {
    // Local workers die with the server that started them
    // (PR_SET_PDEATHSIG): whatever they held goes back to the queue now,
    // not at lease expiry.
    KILN_ASSIGN_OR_RETURN(auto old_workers, s->store_->workers(/*alive_only=*/true));
    for (const auto& w : old_workers) KILN_RETURN_IF_ERROR(s->store_->worker_gone(w.id, now));
    if (!old_workers.empty()) {
      log::info("recovered: " + std::to_string(old_workers.size()) +
                " worker(s) of the previous run gone, their tasks requeued");
    }
  }

  s->tokens_ = std::make_unique<TokenTable>(config);
  for (const auto& e : config.environments) s->policies_[e.name] = {e.concurrency, e.priority};
  // Slurm jobs read the token from a file when they start, maybe after a
  // restart of the server: it stays the same across restarts.
  if (slurm)
    s->worker_token_ = read_first_line(fs::path(config.state_dir) / "slurm" / "worker-token");
  if (s->worker_token_.empty()) s->worker_token_ = new_token();
  if (s->worker_token_.empty()) return internal_error("cannot draw random bytes for a token");

  if (config.emr_enabled) {
    std::vector<SigV4Key> keys;
    for (const auto& e : config.environments)
      for (const auto& k : e.aws_keys)
        keys.push_back({k.access_key_id, k.secret_access_key, e.name});
    s->sigv4_ = std::make_unique<SigV4Verifier>(std::move(keys), config.emr_regions);
    s->emr_limiter_ =
        std::make_unique<RateLimiter>(config.emr_requests_per_second, config.emr_burst);
    s->emr_ = std::make_unique<EmrApi>(*s, s->config_);
  }
  s->install_routes();
  if (config.port == 0) {
    s->port_ = s->http_.bind_to_any_port(config.host);
  } else {
    s->port_ = s->http_.bind_to_port(config.host, config.port) ? config.port : -1;
  }
  if (s->port_ <= 0) {
    return io_error("cannot listen on " + config.host + ":" + std::to_string(config.port) +
                    " (in use, or not an address of this host)");
  }

  if (slurm) {
    slurm::SlurmClientOptions so;
    so.conf = config.slurm.conf;
    so.bin_dir = config.slurm.bin_dir;
    KILN_ASSIGN_OR_RETURN(slurm::SlurmClient client, slurm::SlurmClient::create(so));
    slurm::DispatcherOptions d;
    d.kiln_exe = config.slurm.kiln.empty() ? kiln_exe : config.slurm.kiln;
    d.server_url = config.slurm.server_url.empty() ? "http://127.0.0.1:" + std::to_string(s->port_)
                                                   : config.slurm.server_url;
    d.state_dir = config.state_dir;
    d.token = s->worker_token_;
    d.partitions = config.slurm.partitions;
    for (const auto& e : config.environments) d.environments.push_back(e.name);
    d.poll_ms = config.slurm.poll_ms;
    d.resubmit_after_ms = config.slurm.resubmit_after_seconds * 1000LL;
    Server* self = s.get();
    d.log_path = [self](const std::string& step) { return self->log_path(step); };
    d.step_log = [self](const std::string& step, const std::string& line) {
      self->step_log(step, line);
    };
    std::vector<std::string> static_nodes, cloud_nodes;
    for (const auto& g : config.autoscaler.groups) {
      auto& names = g.core ? static_nodes : cloud_nodes;
      names.insert(names.end(), g.node_names.begin(), g.node_names.end());
    }
    s->executor_ = std::make_unique<slurm::SlurmExecutor>(client, std::move(static_nodes),
                                                          std::move(cloud_nodes));
    s->dispatcher_ = std::make_unique<slurm::Dispatcher>(s->store_.get(), std::move(client), d);
    KILN_RETURN_IF_ERROR(s->dispatcher_->start());
    log::info("executor slurm: SLURM_CONF=" + config.slurm.conf + ", tasks run " + d.kiln_exe +
              " slurm-task, reaching this server at " + d.server_url);
  }
  worker::LocalExecutorOptions eo;
  eo.server_url = "http://127.0.0.1:" + std::to_string(s->port_);
  eo.token = s->worker_token_;
  eo.state_dir = config.state_dir;
  eo.command = {kiln_exe,      "worker", "--server",
                eo.server_url, "--nice", std::to_string(config.worker_nice)};
  Server* raw = s.get();
  eo.on_worker_exit = [raw](int64_t pid) { raw->on_worker_exit(pid); };
  if (!s->executor_) s->executor_ = std::make_unique<worker::LocalExecutor>(eo);
  KILN_RETURN_IF_ERROR(s->executor_->start());
  // The fleet launches the warm core now; the autoscaler adds and removes
  // nodes from the scheduler loop.
  s->elastic_ = std::make_unique<ElasticControl>(s->config_, s->store_.get(), s->executor_.get());
  KILN_RETURN_IF_ERROR(s->elastic_->start(now_ms()));

  s->scheduler_ = std::thread([raw] { raw->scheduler_loop(); });
  return s;
}

Server::~Server() {
  stopping_ = true;
  stopped_ = true;
  kick();
  if (scheduler_.joinable()) scheduler_.join();
  if (executor_) executor_->stop(std::chrono::seconds(0));
}

void Server::run() { http_.listen_after_bind(); }

void Server::shutdown() {
  if (stopping_.exchange(true)) return;
  log::info("shutting down: no new steps or leases; waiting up to " +
            std::to_string(config_.shutdown_grace_seconds) + " s for running tasks");
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(config_.shutdown_grace_seconds);
  // Slurm's elements outlive the server and report to the next one: no
  // point waiting for them.
  while (!dispatcher_ && std::chrono::steady_clock::now() < deadline) {
    auto st = store_->stats();
    if (!st.is_ok() || st->tasks_leased == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // Tasks still running are stopped; their leases stay in the store and
  // lapse, so the next start runs them again.
  executor_->stop(std::chrono::seconds(config_.cancel_grace_seconds));
  stopped_ = true;
  kick();
  if (scheduler_.joinable()) scheduler_.join();
  http_.stop();
  log::info("stopped");
}

std::map<std::string, store::EnvironmentPolicy> Server::policies() const {
  std::lock_guard<std::mutex> lock(policy_mu_);
  return policies_;
}

std::string Server::log_path(const std::string& step_id) const {
  // Plain concatenation: a listing asks for a path per step, and building
  // an fs::path each time showed in its profile.
  return logs_dir_ + step_id + ".log";
}

void Server::step_log(const std::string& step_id, const std::string& line) const {
  // O_APPEND: whole lines from the server and the task processes interleave.
  const std::string path = log_path(step_id);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  json t = rfc3339(now_ms());
  const std::string text = t.get<std::string>() + " kiln-serve: " + line + "\n";
  ssize_t ignored = ::write(fd, text.data(), text.size());
  (void)ignored;
  ::close(fd);
}

void Server::kick() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    kicked_ = true;
  }
  wake_.notify_all();
}

void Server::on_worker_exit(int64_t pid) {
  std::string id;
  {
    std::lock_guard<std::mutex> lock(pid_mu_);
    auto it = worker_by_pid_.find(pid);
    if (it == worker_by_pid_.end()) return;
    id = it->second;
    worker_by_pid_.erase(it);
  }
  log::warn("worker " + id + " (pid " + std::to_string(pid) + ") exited; its tasks are requeued");
  Status s = store_->worker_gone(id, now_ms());
  if (!s.is_ok()) log::error("worker_gone: " + s.to_string());
  kick();
}

void Server::clean_staging(const store::Step& step) {
  const EnvironmentConfig* env = config_.environment(step.environment);
  if (!env || step.layer.empty()) return;
  const fs::path staging =
      fs::path(env->catalog) / step.environment / step.layer / ".staging" / step.id;
  std::error_code ec;
  fs::remove_all(staging, ec);
  if (ec) log::warn("cannot remove " + staging.string() + ": " + ec.message());
  // The catalog's record of who owns that staging directory goes with it.
  const fs::path owner = staging.parent_path() / ("." + step.id + ".owner");
  fs::remove(owner, ec);
  if (ec) log::warn("cannot remove " + owner.string() + ": " + ec.message());
}

void Server::scheduler_loop() {
  while (!stopped_) {
    scheduler_pass();
    std::unique_lock<std::mutex> lock(wake_mu_);
    wake_.wait_for(lock, std::chrono::milliseconds(200),
                   [this] { return kicked_ || stopped_.load(); });
    kicked_ = false;
  }
}

void Server::scheduler_pass() {
  const int64_t now = now_ms();
  bool changed = false;
  auto expired = store_->expire_leases(now);
  if (expired.is_ok() && *expired > 0) {
    log::warn(std::to_string(*expired) + " lease(s) lapsed; tasks requeued");
    changed = true;
  }
  if (!stopping_) {
    auto started = store_->start_steps(policies(), now);
    if (started.is_ok()) {
      for (const auto& id : *started) {
        changed = true;
        step_log(id, "step RUNNING");
      }
      if (!started->empty()) {
        // Latency from submission to RUNNING, per step.
        store::ListQuery q;
        for (const auto& e : config_.environments) {
          q.environment = e.name;
          q.ids = *started;
          q.limit = 1000;
          auto page = store_->list(q);
          if (!page.is_ok()) continue;
          for (const auto& st : page->steps) {
            start_latency_.observe((st.started_ms - st.created_ms) / 1000.0);
          }
        }
      }
    } else {
      log::error("start_steps: " + started.status().to_string());
    }
  }
  auto cancelled = store_->finish_cancellations(now);
  if (cancelled.is_ok()) {
    for (const auto& st : *cancelled) {
      changed = true;
      step_log(st.id, "step CANCELLED");
    }
  }
  auto to_clean = store_->steps_to_clean();
  if (to_clean.is_ok()) {
    for (const auto& st : *to_clean) {
      clean_staging(st);
      Status s = store_->mark_cleaned(st.id);
      if (!s.is_ok()) log::error("mark_cleaned: " + s.to_string());
    }
  }
  if (dispatcher_ && !stopping_) dispatcher_->tick(now_ms());
  executor_->tick();
  if (!stopping_) elastic_->tick(now_ms());
  if (changed) state_version_++;
}

// --- HTTP -------------------------------------------------------------------

void Server::install_routes() {
  http_.new_task_queue = [] { return new httplib::ThreadPool(64); };
  http_.set_payload_max_length(static_cast<size_t>(config_.max_body_bytes));
  http_.set_keep_alive_max_count(1000);
  // Small JSON replies: without TCP_NODELAY, Nagle and delayed ACKs hold
  // each one back for tens of milliseconds (300 req/s instead of thousands).
  http_.set_tcp_nodelay(true);
  http_.set_error_handler([this](const Request&, Response& res) {
    if (!res.body.empty()) return;
    switch (res.status) {
      case 413:
        send_error(res, 413, "payload_too_large",
                   "request body over " + std::to_string(config_.max_body_bytes) + " bytes");
        break;
      case 404:
        send_error(res, 404, "not_found", "no such endpoint");
        break;
      case 405:
        send_error(res, 405, "method_not_allowed", "method not allowed here");
        break;
      default:
        send_error(res, res.status, "error", "HTTP " + std::to_string(res.status));
    }
  });
  http_.set_exception_handler([](const Request&, Response& res, std::exception_ptr ep) {
    std::string what = "unexpected error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, 500, "internal", what);
  });
  http_.set_pre_routing_handler([this](const Request&, Response&) {
    http_requests_++;
    return httplib::Server::HandlerResponse::Unhandled;
  });

  http_.Get("/healthz", [](const Request&, Response& res) { send_json(res, 200, {{"ok", true}}); });
  http_.Get("/readyz", [this](const Request&, Response& res) {
    if (stopping_) return send_error(res, 503, "unavailable", "shutting down");
    send_json(res, 200, {{"ready", true}});
  });
  http_.Get("/metrics", [this](const Request& q, Response& r) { handle_metrics(q, r); });
  http_.Post("/v1/steps", [this](const Request& q, Response& r) { handle_submit(q, r); });
  http_.Get("/v1/steps", [this](const Request& q, Response& r) { handle_list(q, r); });
  http_.Get(R"(/v1/steps/([^/]+))",
            [this](const Request& q, Response& r) { handle_describe(q, r); });
  http_.Post(R"(/v1/steps/([^/]+)/cancel)",
             [this](const Request& q, Response& r) { handle_cancel(q, r); });
  http_.Get(R"(/v1/steps/([^/]+)/logs)",
            [this](const Request& q, Response& r) { handle_logs(q, r); });
  http_.Get(R"(/v1/steps/([^/]+)/wait)",
            [this](const Request& q, Response& r) { handle_wait(q, r); });
  http_.Get("/v1/cluster", [this](const Request& q, Response& r) { handle_cluster(q, r); });
  http_.Post(R"(/v1/cluster/nodes/([^/]+)/interrupt)",
             [this](const Request& q, Response& r) { handle_interrupt(q, r); });
  http_.Put("/v1/environment", [this](const Request& q, Response& r) { handle_environment(q, r); });
  http_.Get("/v1/environment", [this](const Request& q, Response& r) { handle_environment(q, r); });

  if (emr_) http_.Post("/", [this](const Request& q, Response& r) { handle_emr(q, r); });
  http_.Post("/internal/v1/register",
             [this](const Request& q, Response& r) { handle_register(q, r); });
  http_.Post("/internal/v1/lease", [this](const Request& q, Response& r) { handle_lease(q, r); });
  http_.Post("/internal/v1/claim", [this](const Request& q, Response& r) { handle_claim(q, r); });
  http_.Post("/internal/v1/leave", [this](const Request& q, Response& r) { handle_leave(q, r); });
  http_.Post("/internal/v1/heartbeat",
             [this](const Request& q, Response& r) { handle_heartbeat(q, r); });
  http_.Post("/internal/v1/complete",
             [this](const Request& q, Response& r) { handle_complete(q, r); });
}

const EnvironmentConfig* Server::authenticate(const Request& req, Response& res) {
  const std::string token = bearer_token(req.get_header_value("Authorization"));
  if (token.empty()) {
    send_error(res, 401, "unauthorized", "missing 'Authorization: Bearer <token>' header");
    return nullptr;
  }
  auto env = tokens_->environment_for(token);
  if (!env) {
    send_error(res, 401, "unauthorized", "unknown token");
    return nullptr;
  }
  return config_.environment(*env);
}

bool Server::worker_authenticated(const Request& req, Response& res) {
  const std::string token = bearer_token(req.get_header_value("Authorization"));
  if (token.empty() || token != worker_token_) {
    send_error(res, 401, "unauthorized", "worker endpoints need the worker token");
    return false;
  }
  return true;
}

void Server::handle_submit(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate(req, res);
  if (!env) return;
  if (stopping_) return send_error(res, 503, "unavailable", "the server is shutting down");
  json body;
  if (!parse_body(req, res, &body)) return;
  if (!only_known(res, body, {"name", "action", "action_on_failure"}, "")) return;

  std::string name;
  if (body.contains("name")) {
    if (!body["name"].is_string() || body["name"].get<std::string>().empty() ||
        body["name"].get<std::string>().size() > 256) {
      return send_error(res, 400, "bad_request", "name: must be a string of 1-256 characters");
    }
    name = body["name"].get<std::string>();
  }
  std::string aof = "CONTINUE";
  if (body.contains("action_on_failure")) {
    if (!body["action_on_failure"].is_string()) {
      return send_error(res, 400, "bad_request", "action_on_failure: must be a string");
    }
    aof = body["action_on_failure"].get<std::string>();
  }
  if (!body.contains("action") || !body["action"].is_object() || body["action"].size() != 1) {
    return send_error(res, 400, "bad_request",
                      "action: required, an object with exactly one of 'ingest' (an ingest "
                      "definition) or 'ingest_uri' (file:///path/to/definition.json)");
  }
  const json& action = body["action"];
  if (!only_known(res, action, {"ingest", "ingest_uri"}, "action: ")) return;
  SubmitRequest sr;
  sr.name = name;
  sr.action_on_failure = aof;
  if (action.contains("ingest")) {
    sr.definition = action["ingest"];
  } else {
    if (!action["ingest_uri"].is_string()) {
      return send_error(res, 400, "bad_request", "action.ingest_uri: must be a string");
    }
    sr.definition_uri = action["ingest_uri"].get<std::string>();
  }
  auto step = submit(*env, sr);
  if (!step.is_ok()) return send_status(res, step.status());
  send_json_text(res, 201, step_text(*step, log_path(step->id)));
}

Result<store::Step> Server::submit(const EnvironmentConfig& env, const SubmitRequest& req) {
  if (stopping_) return unavailable("the server is shutting down and takes no new steps");
  const std::string& aof = req.action_on_failure;
  if (aof == "TERMINATE_CLUSTER" || aof == "TERMINATE_JOB_FLOW") {
    return invalid_argument("action_on_failure: " + aof +
                            " is refused: the cluster is shared by every environment and stays "
                            "up; use CONTINUE or CANCEL_AND_WAIT");
  }
  if (aof != "CONTINUE" && aof != "CANCEL_AND_WAIT") {
    return invalid_argument("action_on_failure: '" + aof +
                            "' is not one of CONTINUE, CANCEL_AND_WAIT");
  }
  Result<std::vector<ingest::IngestDefinition>> defs = invalid_argument("unreachable");
  if (req.definition_uri.empty()) {
    defs = ingest::parse_definition(req.definition);
  } else {
    std::string uri = req.definition_uri;
    if (uri.rfind("file://", 0) == 0) uri = uri.substr(7);
    if (uri.empty() || uri[0] != '/') {
      return invalid_argument("definition '" + req.definition_uri +
                              "': give an absolute path or a file:///absolute/path.json URI "
                              "(other schemes are not supported yet)");
    }
    defs = ingest::load_definition(uri);
  }
  if (!defs.is_ok()) return invalid_argument(defs.status().message());
  if (defs->size() != 1) {
    return invalid_argument("the definition holds " + std::to_string(defs->size()) +
                            " layers; a step ingests exactly one");
  }
  ingest::IngestDefinition def = (*defs)[0];
  for (size_t i = 0; i < def.sources.size(); ++i) {
    const std::string& uri = def.sources[i].uri;
    if (!uri.empty() && uri[0] != '/' && uri.rfind("/vsi", 0) != 0 &&
        uri.find("://") == std::string::npos) {
      return invalid_argument("sources[" + std::to_string(i) + "].uri: '" + uri +
                              "' is relative; the server does not share your working directory, "
                              "give an absolute path");
    }
  }
  // A step writes only under its environment's catalog root, whatever the
  // definition says (docs/cluster.md): the token decides, never the body.
  def.output.catalog = env.catalog;
  def.output.environment = env.name;
  // Partitions enough for every slot the cluster may grow to.
  int64_t max_slots = 0;
  for (const auto& g : config_.autoscaler.groups)
    max_slots += static_cast<int64_t>(g.max_nodes) * g.slots_per_node;
  const int threads = static_cast<int>(std::clamp<int64_t>(max_slots, 1, 256));
  auto plan = ingest::make_plan(def, ingest::PlanOptions{threads});
  if (!plan.is_ok()) return invalid_argument(plan.status().message());

  store::NewStep ns;
  ns.environment = env.name;
  ns.name = req.name.empty() ? def.layer : req.name;
  ns.action_on_failure = aof;
  ns.action = {{"ingest", ingest::to_json(def)}, {"plan", {{"threads", threads}}}};
  if (!req.emr_request.is_null()) ns.action["emr"] = req.emr_request;
  ns.layer = def.layer;
  ns.partitions = static_cast<int64_t>(plan->partitions.size());
  ns.tiles_total = plan->total_tiles();
  ns.max_attempts = config_.max_attempts;
  KILN_ASSIGN_OR_RETURN(store::Step step, store_->submit(ns, now_ms()));
  step_log(step.id, "step '" + ns.name + "' submitted in environment " + env.name + ": layer " +
                        def.layer + ", " + std::to_string(ns.partitions) + " partition task(s), " +
                        std::to_string(ns.tiles_total) + " tiles");
  kick();
  return step;
}

Result<store::Step> Server::get(const EnvironmentConfig& env, const std::string& id) {
  return store_->get(env.name, id);
}

Result<store::ListPage> Server::list(const EnvironmentConfig& env, store::ListQuery q) {
  q.environment = env.name;
  return store_->list(q);
}

Result<store::Step> Server::cancel(const EnvironmentConfig& env, const std::string& id,
                                   const std::string& signal) {
  KILN_ASSIGN_OR_RETURN(store::Step step, store_->request_cancel(env.name, id, signal, now_ms()));
  step_log(step.id,
           "cancel requested (" + signal + "); state " + store::step_state_name(step.state));
  state_version_++;
  kick();
  return step;
}

Result<ClusterInfo> Server::cluster(const EnvironmentConfig& env) {
  KILN_ASSIGN_OR_RETURN(auto workers, store_->workers(/*alive_only=*/true));
  KILN_ASSIGN_OR_RETURN(auto stats, store_->stats());
  ClusterInfo c;
  c.workers = static_cast<int64_t>(workers.size());
  for (const auto& w : workers) {
    c.slots_total += w.slots;
    c.slots_busy += w.busy;
  }
  auto q = stats.queued_tasks_by_env.find(env.name);
  c.queued_tasks = q == stats.queued_tasks_by_env.end() ? 0 : q->second;
  const auto pol = policies();
  c.concurrency = pol.at(env.name).concurrency;
  c.priority = pol.at(env.name).priority;
  c.accepting_steps = !stopping_;
  c.started_ms = started_ms_;
  return c;
}

Status Server::set_concurrency(const EnvironmentConfig& env, int concurrency) {
  if (concurrency < 1 || concurrency > 256) {
    return invalid_argument("concurrency: must be 1-256, got " + std::to_string(concurrency));
  }
  {
    std::lock_guard<std::mutex> lock(policy_mu_);
    policies_[env.name].concurrency = concurrency;
  }
  log::info("environment " + env.name + ": concurrency now " + std::to_string(concurrency));
  kick();
  return Status::ok();
}

std::string Server::log_location(const std::string& step_id) const { return log_path(step_id); }

void Server::handle_list(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate(req, res);
  if (!env) return;
  store::ListQuery q;
  q.environment = env->name;
  if (req.has_param("state")) {
    for (const auto& s : split_commas(req.get_param_value("state"))) {
      auto st = store::parse_step_state(s);
      if (!st.is_ok())
        return send_error(res, 400, "bad_request", "state: " + st.status().message());
      q.states.push_back(*st);
    }
  }
  if (req.has_param("id")) q.ids = split_commas(req.get_param_value("id"));
  if (req.has_param("limit")) {
    int64_t limit = 0;
    if (!parse_int(req.get_param_value("limit"), 1, 1000, &limit)) {
      return send_error(res, 400, "bad_request", "limit: must be an integer 1-1000");
    }
    q.limit = static_cast<int>(limit);
  }
  if (req.has_param("marker")) q.marker = req.get_param_value("marker");
  q.with_action = false;  // the list shows summaries
  auto page = store_->list(q);
  if (!page.is_ok()) return send_status(res, page.status());
  std::string out;
  out.reserve(page->steps.size() * 640 + 64);
  JsonWriter w(&out);
  w.begin_object().key("steps").begin_array();
  for (const auto& s : page->steps) write_step(w, s, log_path(s.id), /*with_action=*/false);
  w.end_array().key("next_marker");
  if (page->next_marker.empty()) {
    w.null();
  } else {
    w.value(page->next_marker);
  }
  w.end_object();
  send_json_text(res, 200, std::move(out));
}

void Server::handle_describe(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate(req, res);
  if (!env) return;
  auto step = store_->get(env->name, req.matches[1]);
  if (!step.is_ok()) return send_status(res, step.status());
  send_json_text(res, 200, step_text(*step, log_path(step->id)));
}

void Server::handle_cancel(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate(req, res);
  if (!env) return;
  std::string signal = "TERM";
  if (!req.body.empty()) {
    json body;
    if (!parse_body(req, res, &body)) return;
    if (!only_known(res, body, {"signal"}, "")) return;
    if (body.contains("signal")) {
      if (!body["signal"].is_string() || (body["signal"] != "TERM" && body["signal"] != "KILL")) {
        return send_error(res, 400, "bad_request", "signal: must be \"TERM\" or \"KILL\"");
      }
      signal = body["signal"].get<std::string>();
    }
  }
  auto step = cancel(*env, req.matches[1], signal);
  if (!step.is_ok()) return send_status(res, step.status());
  send_json_text(res, 200, step_text(*step, log_path(step->id)));
}

void Server::handle_logs(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate(req, res);
  if (!env) return;
  auto step = store_->get(env->name, req.matches[1]);
  if (!step.is_ok()) return send_status(res, step.status());
  int64_t offset = 0;
  if (req.has_param("offset") && !parse_int(req.get_param_value("offset"), 0, INT64_MAX, &offset)) {
    return send_error(res, 400, "bad_request", "offset: must be a non-negative integer");
  }
  std::ifstream in(log_path(step->id), std::ios::binary);
  std::string text;
  if (in) {
    in.seekg(0, std::ios::end);
    const int64_t size = in.tellg();
    if (offset < size) {
      const int64_t n = std::min<int64_t>(size - offset, 4 << 20);  // at most 4 MiB per call
      in.seekg(offset);
      text.resize(static_cast<size_t>(n));
      in.read(text.data(), n);
    }
  }
  res.set_header("X-Kiln-Log-Offset", std::to_string(offset + static_cast<int64_t>(text.size())));
  res.status = 200;
  res.set_content(text, "text/plain; charset=utf-8");
}

void Server::handle_wait(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate(req, res);
  if (!env) return;
  int64_t timeout = 30;
  if (req.has_param("timeout") && !parse_int(req.get_param_value("timeout"), 0, 300, &timeout)) {
    return send_error(res, 400, "bad_request", "timeout: must be 0-300 seconds");
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
  for (;;) {
    auto step = store_->get(env->name, req.matches[1]);
    if (!step.is_ok()) return send_status(res, step.status());
    if (store::is_terminal(step->state) || std::chrono::steady_clock::now() >= deadline ||
        stopped_) {
      return send_json_text(res, 200, step_text(*step, log_path(step->id)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void Server::handle_cluster(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate(req, res);
  if (!env) return;
  auto workers = store_->workers(/*alive_only=*/true);
  auto stats = store_->stats();
  if (!workers.is_ok()) return send_status(res, workers.status());
  if (!stats.is_ok()) return send_status(res, stats.status());
  int64_t total = 0, busy = 0;
  json ws = json::array();
  for (const auto& w : *workers) {
    total += w.slots;
    busy += w.busy;
    ws.push_back({{"id", w.id},
                  {"pid", w.pid},
                  {"host", w.host},
                  {"slots", w.slots},
                  {"busy", w.busy},
                  {"last_seen_at", rfc3339(w.last_seen_ms)}});
  }
  const auto pol = policies();
  const auto& p = pol.at(env->name);
  auto queued = stats->queued_tasks_by_env.find(env->name);
  send_json(res, 200,
            {{"workers", ws},
             {"slots",
              {{"total", total},
               {"busy", busy},
               {"free", total - busy},
               {"free_percent", total ? 100.0 * (total - busy) / total : 0.0}}},
             {"environment",
              {{"name", env->name},
               {"concurrency", p.concurrency},
               {"priority", p.priority},
               {"queued_tasks", queued == stats->queued_tasks_by_env.end() ? 0 : queued->second}}},
             {"accepting_steps", !stopping_.load()},
             {"elastic", elastic_->to_json(now_ms())}});
}

void Server::handle_interrupt(const Request& req, Response& res) {
  const std::string token = bearer_token(req.get_header_value("Authorization"));
  if (token.empty()) {
    return send_error(res, 401, "unauthorized", "missing 'Authorization: Bearer <token>' header");
  }
  if (!tokens_->is_operator(token)) {
    // An environment's token may not take capacity from the others.
    return send_error(
        res, 403, "forbidden",
        "interrupting a node needs an operator token ([operator] token_sha256 in the config)");
  }
  int64_t notice_ms = -1;
  if (!req.body.empty()) {
    json body;
    if (!parse_body(req, res, &body)) return;
    if (!only_known(res, body, {"notice_seconds"}, "")) return;
    if (body.contains("notice_seconds")) {
      if (!body["notice_seconds"].is_number() || body["notice_seconds"].get<double>() < 0 ||
          body["notice_seconds"].get<double>() > 3600) {
        return send_error(res, 400, "bad_request", "notice_seconds: must be a number 0-3600");
      }
      notice_ms = static_cast<int64_t>(body["notice_seconds"].get<double>() * 1000);
    }
  }
  Status st = elastic_->interrupt(req.matches[1], notice_ms, now_ms());
  if (!st.is_ok()) return send_status(res, st);
  kick();
  send_json(res, 200, {{"node", std::string(req.matches[1])}, {"interrupted", true}});
}

void Server::handle_environment(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate(req, res);
  if (!env) return;
  if (req.method == "PUT") {
    json body;
    if (!parse_body(req, res, &body)) return;
    if (!only_known(res, body, {"concurrency"}, "")) return;
    if (!body.contains("concurrency") || !body["concurrency"].is_number_integer() ||
        body["concurrency"].get<int64_t>() < 1 || body["concurrency"].get<int64_t>() > 256) {
      return send_error(res, 400, "bad_request", "concurrency: must be an integer 1-256");
    }
    Status set = set_concurrency(*env, body["concurrency"].get<int>());
    if (!set.is_ok()) return send_status(res, set);
  }
  const auto pol = policies();
  send_json(res, 200,
            {{"name", env->name},
             {"concurrency", pol.at(env->name).concurrency},
             {"priority", pol.at(env->name).priority}});
}

void Server::handle_metrics(const Request&, Response& res) {
  auto stats = store_->stats();
  auto workers = store_->workers(/*alive_only=*/true);
  if (!stats.is_ok()) return send_status(res, stats.status());
  if (!workers.is_ok()) return send_status(res, workers.status());
  std::string out;
  metric_header(&out, "kiln_steps", "gauge", "Steps by environment and state.");
  for (const auto& e : config_.environments) {
    for (const char* st : {"PENDING", "RUNNING", "COMPLETED", "CANCEL_PENDING", "CANCELLED",
                           "FAILED", "INTERRUPTED"}) {
      int64_t n = 0;
      auto it = stats->steps_by_env_state.find(e.name);
      if (it != stats->steps_by_env_state.end()) {
        auto jt = it->second.find(st);
        if (jt != it->second.end()) n = jt->second;
      }
      metric_sample(&out, "kiln_steps", {{"environment", e.name}, {"state", st}},
                    static_cast<double>(n));
    }
  }
  metric_header(&out, "kiln_tasks", "gauge", "Tasks waiting for a slot and running.");
  metric_sample(&out, "kiln_tasks", {{"state", "pending"}},
                static_cast<double>(stats->tasks_pending));
  metric_sample(&out, "kiln_tasks", {{"state", "running"}},
                static_cast<double>(stats->tasks_leased));
  int64_t total = 0, busy = 0;
  for (const auto& w : *workers) {
    total += w.slots;
    busy += w.busy;
  }
  metric_header(&out, "kiln_workers", "gauge", "Live workers.");
  metric_sample(&out, "kiln_workers", {}, static_cast<double>(workers->size()));
  metric_header(&out, "kiln_slots", "gauge", "Task slots of the live workers.");
  metric_sample(&out, "kiln_slots", {}, static_cast<double>(total));
  metric_header(&out, "kiln_slots_busy", "gauge", "Task slots running a task.");
  metric_sample(&out, "kiln_slots_busy", {}, static_cast<double>(busy));
  metric_header(&out, "kiln_slots_free_percent", "gauge", "Free task slots, percent of all.");
  metric_sample(&out, "kiln_slots_free_percent", {},
                total ? 100.0 * static_cast<double>(total - busy) / total : 0.0);
  metric_header(&out, "kiln_lease_expiries_total", "counter", "Task leases that lapsed.");
  metric_sample(&out, "kiln_lease_expiries_total", {}, static_cast<double>(stats->lease_expiries));
  metric_header(&out, "kiln_task_retries_total", "counter",
                "Task attempts retried after a failure.");
  metric_sample(&out, "kiln_task_retries_total", {}, static_cast<double>(stats->task_retries));
  metric_header(&out, "kiln_tiles_written_total", "counter",
                "Tiles of the layer versions committed since this server started.");
  metric_sample(&out, "kiln_tiles_written_total", {}, static_cast<double>(tiles_written_.load()));
  metric_header(&out, "kiln_http_requests_total", "counter", "HTTP requests served.");
  metric_sample(&out, "kiln_http_requests_total", {}, static_cast<double>(http_requests_.load()));
  metric_header(&out, "kiln_step_start_latency_seconds", "histogram",
                "Time from a step's submission to RUNNING.");
  start_latency_.render("kiln_step_start_latency_seconds", &out);
  out += elastic_->metrics(now_ms());
  res.status = 200;
  res.set_content(out, "text/plain; version=0.0.4; charset=utf-8");
}

// --- EMR endpoint -----------------------------------------------------------------

void Server::handle_emr(const Request& req, Response& res) {
  // A request id per call, as AWS sends: clients log it with errors.
  char rid[64];
  std::snprintf(rid, sizeof rid, "kiln-%016llx-%08llx",
                static_cast<unsigned long long>(started_ms_),
                static_cast<unsigned long long>(emr_request_seq_++));
  res.set_header("x-amzn-RequestId", rid);
  auto emr_error = [&res](int status, const std::string& type, const std::string& message) {
    res.status = status;
    res.set_content(json{{"__type", type}, {"Message", message}}.dump(), kEmrContentType);
  };
  const std::string target = req.get_header_value("X-Amz-Target");
  if (target.rfind(kEmrTargetPrefix, 0) != 0) {
    return emr_error(400, "UnknownOperationException",
                     "X-Amz-Target must be ElasticMapReduce.<Operation>; got '" + target + "'");
  }
  SigV4Request sr;
  sr.method = req.method;
  const auto q = req.target.find('?');
  sr.path = q == std::string::npos ? req.target : req.target.substr(0, q);
  sr.query = q == std::string::npos ? "" : req.target.substr(q + 1);
  for (const auto& [k, v] : req.headers) sr.headers.emplace_back(k, v);
  sr.body = req.body;
  const SigV4Result auth = sigv4_->verify(sr, std::chrono::system_clock::now());
  if (!auth.ok()) {
    return emr_error(auth.error().http_status, auth.error().type, auth.error().message);
  }
  if (!emr_limiter_->allow(auth.key().access_key_id)) {
    return emr_error(400, "ThrottlingException", "Rate exceeded");
  }
  const EnvironmentConfig* env = config_.environment(auth.key().environment);
  if (!env) return emr_error(500, "InternalServerException", "credentials map to no environment");
  const EmrResponse r = emr_->handle(*env, target, req.body);
  res.status = r.http_status;
  res.set_content(r.body, kEmrContentType);
}

// --- worker protocol ------------------------------------------------------------

void Server::handle_register(const Request& req, Response& res) {
  if (!worker_authenticated(req, res)) return;
  json body;
  if (!parse_body(req, res, &body)) return;
  const int64_t pid = body.value("pid", int64_t{0});
  const int slots = body.value("slots", 0);
  if (slots < 1) return send_error(res, 400, "bad_request", "slots: must be at least 1");
  const std::string node = body.value("host", std::string("local"));
  auto w = store_->register_worker(pid, node, slots, now_ms());
  if (!w.is_ok()) return send_status(res, w.status());
  elastic_->worker_registered(w->id, node, now_ms());
  {
    std::lock_guard<std::mutex> lock(pid_mu_);
    worker_by_pid_[pid] = w->id;
  }
  log::info("worker " + w->id + " registered: pid " + std::to_string(pid) + ", " +
            std::to_string(slots) + " slot(s)");
  send_json(res, 200,
            {{"worker_id", w->id},
             {"lease_seconds", config_.lease_seconds},
             {"heartbeat_seconds", config_.heartbeat_seconds},
             {"cancel_grace_seconds", config_.cancel_grace_seconds}});
}

void Server::handle_lease(const Request& req, Response& res) {
  if (!worker_authenticated(req, res)) return;
  json body;
  if (!parse_body(req, res, &body)) return;
  const std::string worker = body.value("worker_id", std::string());
  const int slots = body.value("free_slots", 0);
  json tasks = json::array();
  const int64_t now = now_ms();
  Status touched = store_->touch_worker(worker, now);
  if (!touched.is_ok()) return send_status(res, touched);
  // A draining node (scale-in, spot notice) finishes what it runs and
  // takes nothing new.
  if (stopping_ || slots <= 0 || !elastic_->may_lease(worker)) {
    return send_json(res, 200, {{"tasks", tasks}});
  }
  auto leases = store_->lease(worker, slots, policies(), config_.starvation_seconds * 1000LL,
                              config_.lease_seconds * 1000LL, now);
  if (!leases.is_ok()) return send_status(res, leases.status());
  for (const auto& l : *leases) tasks.push_back(leased_task(l, worker, now));
  send_json(res, 200, {{"tasks", tasks}});
}

json Server::leased_task(const store::Lease& l, const std::string& worker, int64_t now) {
  elastic_->leased(l.task.id, l.task.attempt, worker, now);
  const bool commit = l.task.kind == store::TaskKind::kCommit;
  json spec = {{"step_id", l.step.id},
               {"task_id", l.task.id},
               {"attempt", l.task.attempt},
               {"kind", commit ? "commit" : "partition"},
               {"index", l.task.index},
               {"definition", l.step.action.value("ingest", json::object())},
               {"plan", l.step.action.value("plan", json{{"threads", 1}})}};
  step_log(l.step.id, std::string(commit ? "commit task" : "partition task ") +
                          (commit ? "" : std::to_string(l.task.index)) + " attempt " +
                          std::to_string(l.task.attempt) + " leased by " + worker);
  return {{"task_id", l.task.id},
          {"attempt", l.task.attempt},
          {"step_id", l.step.id},
          {"spec", spec},
          {"log_path", log_path(l.step.id)}};
}

void Server::handle_claim(const Request& req, Response& res) {
  if (!worker_authenticated(req, res)) return;
  json body;
  if (!parse_body(req, res, &body)) return;
  const json* step = body.contains("step_id") ? &body["step_id"] : nullptr;
  const json* index = body.contains("index") ? &body["index"] : nullptr;
  if (!step || !step->is_string() || !index || !index->is_number_integer()) {
    return send_error(res, 400, "invalid_request",
                      "claim needs step_id (string) and index (integer; -1: the commit task)");
  }
  const std::string worker = body.value("worker_id", std::string());
  const int64_t now = now_ms();
  if (stopping_) {
    return send_json(
        res, 200,
        {{"outcome", "wait"}, {"retry_after_ms", 1000}, {"why", "the server is shutting down"}});
  }
  auto c = store_->claim(worker, step->get<std::string>(), index->get<int64_t>(),
                         config_.lease_seconds * 1000LL, now);
  if (!c.is_ok()) return send_status(res, c.status());
  using Outcome = store::Claim::Outcome;
  switch (c->outcome) {
    case Outcome::kLeased:
      return send_json(res, 200,
                       {{"outcome", "leased"}, {"task", leased_task(*c->lease, worker, now)}});
    case Outcome::kWait:
      return send_json(res, 200,
                       {{"outcome", "wait"},
                        {"retry_after_ms", std::max<int64_t>(c->retry_at_ms - now, 100)},
                        {"why", c->why}});
    case Outcome::kDone:
      return send_json(res, 200, {{"outcome", "done"}, {"why", c->why}});
    case Outcome::kGone:
      return send_json(res, 200, {{"outcome", "gone"}, {"why", c->why}});
  }
}

void Server::handle_leave(const Request& req, Response& res) {
  if (!worker_authenticated(req, res)) return;
  json body;
  if (!parse_body(req, res, &body)) return;
  const std::string worker = body.value("worker_id", std::string());
  Status st = store_->worker_gone(worker, now_ms());
  if (!st.is_ok()) return send_status(res, st);
  elastic_->worker_left(worker);
  state_version_++;
  kick();
  send_json(res, 200, {{"left", true}});
}

void Server::handle_heartbeat(const Request& req, Response& res) {
  if (!worker_authenticated(req, res)) return;
  json body;
  if (!parse_body(req, res, &body)) return;
  const std::string worker = body.value("worker_id", std::string());
  std::vector<store::JobStore::Heartbeat> beats;
  if (body.contains("tasks") && body["tasks"].is_array()) {
    for (const auto& t : body["tasks"]) {
      store::JobStore::Heartbeat h;
      h.task_id = t.value("task_id", int64_t{0});
      h.attempt = t.value("attempt", 0);
      h.tiles_done = t.value("tiles_done", int64_t{0});
      h.bytes_read = t.value("bytes_read", uint64_t{0});
      h.bytes_written = t.value("bytes_written", uint64_t{0});
      beats.push_back(h);
    }
  }
  const int64_t now = now_ms();
  Status touched = store_->touch_worker(worker, now);
  if (!touched.is_ok()) return send_status(res, touched);
  auto unknown = store_->heartbeat(worker, beats, config_.lease_seconds * 1000LL, now);
  if (!unknown.is_ok()) return send_status(res, unknown.status());
  auto cancels = store_->cancellations(worker);
  if (!cancels.is_ok()) return send_status(res, cancels.status());
  json c = json::array();
  for (const auto& [task, sig] : *cancels) c.push_back({{"task_id", task}, {"signal", sig}});
  send_json(res, 200, {{"cancel", c}, {"unknown", *unknown}});
}

void Server::handle_complete(const Request& req, Response& res) {
  if (!worker_authenticated(req, res)) return;
  json body;
  if (!parse_body(req, res, &body)) return;
  const std::string worker = body.value("worker_id", std::string());
  const int64_t task = body.value("task_id", int64_t{0});
  const int attempt = body.value("attempt", 0);
  const bool ok = body.value("ok", false);
  const json result = body.value("result", json::object());
  store::Failure err;
  if (body.contains("error") && body["error"].is_object()) {
    err.reason = body["error"].value("reason", std::string("TASK_FAILED"));
    err.message = body["error"].value("message", std::string());
  }
  const std::string step_id = body.value("step_id", std::string());
  const int64_t now = now_ms();
  auto taken = store_->complete(worker, task, attempt, ok, result, err, now);
  if (!taken.is_ok()) return send_status(res, taken.status());
  // The attempt ran on a node's slot: its step pays for it, whatever the
  // outcome (a failed attempt used the machine too).
  const ElasticControl::Charge charge = elastic_->charge(task, attempt, now);
  if (*taken && !step_id.empty() && charge.slot_seconds > 0) {
    Status st = store_->add_cost(step_id, charge.slot_seconds, charge.cost);
    if (!st.is_ok()) log::warn("cost of task " + std::to_string(task) + ": " + st.message());
  }
  if (*taken) {
    if (ok && result.contains("version")) {
      tiles_written_ += result.value("tiles", int64_t{0});
    }
    if (!step_id.empty()) {
      step_log(step_id, "task " + std::to_string(task) + " attempt " + std::to_string(attempt) +
                            (ok ? " done" : " failed: " + err.reason + ": " + err.message));
    }
    state_version_++;
    kick();
  }
  send_json(res, 200, {{"accepted", *taken}});
}

}  // namespace kiln::server
