#include "config/server_config.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "config/autoscaler_config.h"
#include "config/limits.h"
#include "config/source_roots.h"
#include "config/toml_fields.h"

namespace kiln::config {
namespace {

namespace fs = std::filesystem;
using config::check_keys;
using config::get_int;
using config::get_string;

std::string absolute_from(const std::string& base, const std::string& p) {
  fs::path path(p);
  if (path.is_relative()) path = fs::path(base) / path;
  return path.lexically_normal().string();
}

const toml::table* subtable(const toml::table& root, const char* key, Status* err) {
  const toml::node* n = root.get(key);
  if (!n) return nullptr;
  if (!n->is_table())
    *err = invalid_argument(std::string(key) + ": must be a table ([" + key + "])");
  return n->as_table();
}

Status parse_listen(const std::string& listen, ServerConfig* c) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return invalid_argument("server.listen: expected HOST:PORT, got '" + listen + "'");
  }
  c->host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  char* end = nullptr;
  long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end || p < 0 || p > 65535) {
    return invalid_argument("server.listen: port must be 0-65535, got '" + port + "'");
  }
  c->port = static_cast<int>(p);
  return Status::ok();
}

bool is_hex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char ch : s)
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
  return true;
}

// An environment's quotas: requests_per_second > 0, request_burst >= 1,
// max_pending_steps 1..kMaxMaxPendingSteps.
Status parse_quotas(const toml::table& t, const std::string& where, EnvironmentConfig* e) {
  KILN_RETURN_IF_ERROR(
      config::get_number(t, where, "requests_per_second", &e->requests_per_second));
  if (!(e->requests_per_second > 0)) {
    return invalid_argument(where + ".requests_per_second: must be > 0");
  }
  KILN_RETURN_IF_ERROR(config::get_number(t, where, "request_burst", &e->request_burst));
  if (!(e->request_burst >= 1)) {
    return invalid_argument(where + ".request_burst: must be >= 1 (one request at least)");
  }
  return get_int(t, where, "max_pending_steps", 1, kMaxMaxPendingSteps, &e->max_pending_steps);
}

}  // namespace

const EnvironmentConfig* ServerConfig::environment(const std::string& name) const {
  for (const auto& e : environments)
    if (e.name == name) return &e;
  return nullptr;
}

// `key` = ["<sha256 hex>", ...]: hashes of tokens, never the tokens.
Status get_token_hashes(const toml::table& t, const std::string& where, bool required,
                        std::vector<std::string>* out, const char* name = "token_sha256") {
  const toml::node* tokens = t.get(name);
  if (!tokens && !required) return Status::ok();
  const std::string key = where + "." + name;
  if (!tokens || !tokens->is_array() || tokens->as_array()->empty()) {
    return invalid_argument(key + ": " + (required ? "required, " : "") +
                            "a list of SHA-256 hex digests (make one with `kiln token new`)");
  }
  for (const toml::node& tn : *tokens->as_array()) {
    auto s = tn.value<std::string>();
    if (!s || !is_hex64(*s)) {
      return invalid_argument(key +
                              ": every entry must be 64 lower-case hex characters (the "
                              "SHA-256 of a token, not the token)");
    }
    out->push_back(*s);
  }
  return Status::ok();
}

Result<ServerConfig> parse_config(const std::string& text, const std::string& base_dir) {
  toml::table root;
  try {
    root = toml::parse(text);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << "line " << e.source().begin.line << ", column " << e.source().begin.column << ": "
        << e.description();
    return invalid_argument(msg.str());
  }
  KILN_RETURN_IF_ERROR(check_keys(root, "",
                                  {"server", "scheduler", "executor", "emr", "environment", "group",
                                   "autoscaling", "spot", "operator", "slurm", "sandbox"}));

  ServerConfig c;
  c.state_dir = absolute_from(base_dir, "kiln-state");
  Status err;
  if (const toml::table* t = subtable(root, "server", &err)) {
    KILN_RETURN_IF_ERROR(check_keys(
        *t, "server",
        {"listen", "state_dir", "max_body_bytes", "shutdown_grace_seconds", "metrics_token_sha256",
         // the HTTP front door (src/http/README.md)
         "http_threads", "max_header_bytes", "header_timeout_seconds", "body_timeout_seconds",
         "idle_timeout_seconds", "write_timeout_seconds", "max_connections",
         "max_connections_per_address", "max_buffered_body_bytes",
         // the tile endpoint's renderers (server/render_pool.h)
         "render_processes", "render_timeout_seconds"}));
    std::string listen;
    KILN_RETURN_IF_ERROR(get_string(*t, "server", "listen", &listen));
    if (!listen.empty()) KILN_RETURN_IF_ERROR(parse_listen(listen, &c));
    std::string state_dir;
    KILN_RETURN_IF_ERROR(get_string(*t, "server", "state_dir", &state_dir));
    if (!state_dir.empty()) c.state_dir = absolute_from(base_dir, state_dir);
    KILN_RETURN_IF_ERROR(
        get_int(*t, "server", "max_body_bytes", 1024, int64_t{1} << 30, &c.max_body_bytes));
    KILN_RETURN_IF_ERROR(
        get_int(*t, "server", "shutdown_grace_seconds", 0, 3600, &c.shutdown_grace_seconds));
    KILN_RETURN_IF_ERROR(get_token_hashes(*t, "server", /*required=*/false, &c.metrics_token_sha256,
                                          "metrics_token_sha256"));
    KILN_RETURN_IF_ERROR(get_int(*t, "server", "http_threads", 1, 1024, &c.http_threads));
    KILN_RETURN_IF_ERROR(
        get_int(*t, "server", "max_header_bytes", 1024, 1 << 20, &c.max_header_bytes));
    KILN_RETURN_IF_ERROR(
        get_int(*t, "server", "header_timeout_seconds", 1, 3600, &c.header_timeout_seconds));
    KILN_RETURN_IF_ERROR(
        get_int(*t, "server", "body_timeout_seconds", 1, 3600, &c.body_timeout_seconds));
    KILN_RETURN_IF_ERROR(
        get_int(*t, "server", "idle_timeout_seconds", 1, 86400, &c.idle_timeout_seconds));
    KILN_RETURN_IF_ERROR(
        get_int(*t, "server", "write_timeout_seconds", 1, 3600, &c.write_timeout_seconds));
    KILN_RETURN_IF_ERROR(
        get_int(*t, "server", "max_connections", 16, 1'000'000, &c.max_connections));
    KILN_RETURN_IF_ERROR(get_int(*t, "server", "max_connections_per_address", 1, 1'000'000,
                                 &c.max_connections_per_address));
    KILN_RETURN_IF_ERROR(get_int(*t, "server", "max_buffered_body_bytes", 1024, int64_t{1} << 40,
                                 &c.max_buffered_body_bytes));
    KILN_RETURN_IF_ERROR(get_int(*t, "server", "render_processes", 0, 64, &c.render_processes));
    KILN_RETURN_IF_ERROR(
        get_int(*t, "server", "render_timeout_seconds", 1, 600, &c.render_timeout_seconds));
    if (c.max_buffered_body_bytes < c.max_body_bytes) {
      return invalid_argument(
          "[server] max_buffered_body_bytes (" + std::to_string(c.max_buffered_body_bytes) +
          ") must be at least max_body_bytes (" + std::to_string(c.max_body_bytes) + ")");
    }
  }
  KILN_RETURN_IF_ERROR(err);
  if (const toml::table* t = subtable(root, "scheduler", &err)) {
    KILN_RETURN_IF_ERROR(check_keys(*t, "scheduler",
                                    {"lease_seconds", "heartbeat_seconds", "max_attempts",
                                     "starvation_seconds", "cancel_grace_seconds"}));
    KILN_RETURN_IF_ERROR(get_int(*t, "scheduler", "lease_seconds", 2, 3600, &c.lease_seconds));
    KILN_RETURN_IF_ERROR(
        get_int(*t, "scheduler", "heartbeat_seconds", 1, 600, &c.heartbeat_seconds));
    KILN_RETURN_IF_ERROR(get_int(*t, "scheduler", "max_attempts", 1, 100, &c.max_attempts));
    KILN_RETURN_IF_ERROR(
        get_int(*t, "scheduler", "starvation_seconds", 1, 86400, &c.starvation_seconds));
    KILN_RETURN_IF_ERROR(
        get_int(*t, "scheduler", "cancel_grace_seconds", 0, 3600, &c.cancel_grace_seconds));
    if (c.heartbeat_seconds * 2 > c.lease_seconds) {
      return invalid_argument(
          "scheduler.heartbeat_seconds: must be at most half of lease_seconds, so one late "
          "heartbeat does not lose a lease");
    }
  }
  KILN_RETURN_IF_ERROR(err);
  if (const toml::table* t = subtable(root, "executor", &err)) {
    KILN_RETURN_IF_ERROR(
        check_keys(*t, "executor", {"kind", "workers", "slots_per_worker", "nice"}));
    KILN_RETURN_IF_ERROR(get_string(*t, "executor", "kind", &c.executor));
    if (c.executor != "local" && c.executor != "slurm") {
      return invalid_argument("executor.kind: '" + c.executor +
                              "' is not known (known: local, slurm)");
    }
    KILN_RETURN_IF_ERROR(get_int(*t, "executor", "workers", 1, kMaxExecutorWorkers, &c.workers));
    KILN_RETURN_IF_ERROR(
        get_int(*t, "executor", "slots_per_worker", 1, kMaxSlotsPerNode, &c.slots_per_worker));
    KILN_RETURN_IF_ERROR(get_int(*t, "executor", "nice", 0, 19, &c.worker_nice));
  }
  KILN_RETURN_IF_ERROR(err);

  if (const toml::table* t = subtable(root, "slurm", &err)) {
    KILN_RETURN_IF_ERROR(check_keys(*t, "slurm",
                                    {"conf", "bin_dir", "kiln", "server_url", "partitions",
                                     "poll_ms", "resubmit_after_seconds"}));
    std::string conf, bin_dir, kiln;
    KILN_RETURN_IF_ERROR(get_string(*t, "slurm", "conf", &conf));
    KILN_RETURN_IF_ERROR(get_string(*t, "slurm", "bin_dir", &bin_dir));
    KILN_RETURN_IF_ERROR(get_string(*t, "slurm", "kiln", &kiln));
    if (!conf.empty()) c.slurm.conf = absolute_from(base_dir, conf);
    if (!bin_dir.empty()) c.slurm.bin_dir = absolute_from(base_dir, bin_dir);
    if (!kiln.empty()) c.slurm.kiln = absolute_from(base_dir, kiln);
    KILN_RETURN_IF_ERROR(get_string(*t, "slurm", "server_url", &c.slurm.server_url));
    KILN_RETURN_IF_ERROR(get_int(*t, "slurm", "poll_ms", 100, 60000, &c.slurm.poll_ms));
    KILN_RETURN_IF_ERROR(
        get_int(*t, "slurm", "resubmit_after_seconds", 1, 3600, &c.slurm.resubmit_after_seconds));
    if (const toml::node* n = t->get("partitions")) {
      const toml::table* parts = n->as_table();
      if (!parts) {
        return invalid_argument("slurm.partitions: must be a table of environment = \"partition\"");
      }
      for (const auto& [env, v] : *parts) {
        auto name = v.value<std::string>();
        if (!name || name->empty()) {
          return invalid_argument("slurm.partitions." + std::string(env.str()) +
                                  ": must be a partition name (a string)");
        }
        c.slurm.partitions[std::string(env.str())] = *name;
      }
    }
  }
  KILN_RETURN_IF_ERROR(err);
  if (c.executor == "slurm") {
    if (c.slurm.conf.empty()) {
      return invalid_argument(
          "slurm.conf: required with executor.kind = \"slurm\" (the path of slurm.conf; "
          "without it Slurm's clients look the controller up in DNS)");
    }
  }
  if (const toml::table* t = subtable(root, "operator", &err)) {
    KILN_RETURN_IF_ERROR(check_keys(*t, "operator", {"token_sha256"}));
    KILN_RETURN_IF_ERROR(
        get_token_hashes(*t, "operator", /*required=*/true, &c.operator_token_sha256));
  }
  KILN_RETURN_IF_ERROR(err);
  if (const toml::table* t = subtable(root, "spot", &err)) {
    KILN_RETURN_IF_ERROR(
        check_keys(*t, "spot", {"notice_seconds", "interruption_rate_per_node_hour", "seed"}));
    int64_t notice = c.spot_notice_ms / 1000, seed = static_cast<int64_t>(c.spot_chaos_seed);
    KILN_RETURN_IF_ERROR(get_int(*t, "spot", "notice_seconds", 0, 3600, &notice));
    KILN_RETURN_IF_ERROR(get_int(*t, "spot", "seed", 0, INT64_MAX, &seed));
    c.spot_notice_ms = notice * 1000;
    c.spot_chaos_seed = static_cast<uint64_t>(seed);
    if (const toml::node* n = t->get("interruption_rate_per_node_hour")) {
      auto v = n->value<double>();
      if (!v || !(*v >= 0) || *v > 3600) {
        return invalid_argument("spot.interruption_rate_per_node_hour: must be a number 0-3600");
      }
      c.spot_interruption_rate_per_node_hour = *v;
    }
  }
  KILN_RETURN_IF_ERROR(err);
  // Instance groups and policies; without [[group]], the [executor] pool
  // above is the one core group.
  {
    CoreDefaults core;
    core.nodes = c.workers;
    core.slots_per_node = c.slots_per_worker;
    auto a = parse_autoscaler_config(root, core);
    if (!a.is_ok()) return a.status();
    c.autoscaler = std::move(a).value();
  }

  if (const toml::table* t = subtable(root, "emr", &err)) {
    KILN_RETURN_IF_ERROR(check_keys(
        *t, "emr", {"enabled", "regions", "requests_per_second", "burst", "release_label"}));
    if (const toml::node* n = t->get("enabled")) {
      if (!n->is_boolean()) return invalid_argument("emr.enabled: must be true or false");
      c.emr_enabled = *n->value<bool>();
    }
    if (const toml::node* n = t->get("regions")) {
      if (!n->is_array()) return invalid_argument("emr.regions: must be a list of region names");
      for (const toml::node& r : *n->as_array()) {
        auto s = r.value<std::string>();
        if (!s || s->empty()) return invalid_argument("emr.regions: entries must be strings");
        c.emr_regions.push_back(*s);
      }
    }
    for (const char* key : {"requests_per_second", "burst"}) {
      if (const toml::node* n = t->get(key)) {
        auto v = n->value<double>();
        if (!v || *v <= 0) return invalid_argument(std::string("emr.") + key + ": must be > 0");
        (std::string(key) == "burst" ? c.emr_burst : c.emr_requests_per_second) = *v;
      }
    }
    KILN_RETURN_IF_ERROR(get_string(*t, "emr", "release_label", &c.emr_release_label));
  }
  KILN_RETURN_IF_ERROR(err);

  if (const toml::table* t = subtable(root, "sandbox", &err)) {
    KILN_RETURN_IF_ERROR(
        check_keys(*t, "sandbox",
                   {"mode", "address_space_mb", "cpu_seconds", "file_size_mb", "tmp_mb", "pass_env",
                    "plan_timeout_seconds", "plan_cpu_seconds", "tenant_drivers"}));
    sandbox::Policy& p = c.sandbox;
    std::string mode = sandbox::mode_name(p.mode);
    KILN_RETURN_IF_ERROR(get_string(*t, "sandbox", "mode", &mode));
    if (mode != "bwrap" && mode != "none") {
      return invalid_argument("sandbox.mode: '" + mode + "' is not known (known: bwrap, none)");
    }
    p.mode = mode == "bwrap" ? sandbox::Mode::kBwrap : sandbox::Mode::kNone;
    KILN_RETURN_IF_ERROR(get_int(*t, "sandbox", "address_space_mb", 256, int64_t{1} << 30,
                                 &p.limits.address_space_mb));
    KILN_RETURN_IF_ERROR(
        get_int(*t, "sandbox", "cpu_seconds", 1, int64_t{1} << 31, &p.limits.cpu_seconds));
    KILN_RETURN_IF_ERROR(
        get_int(*t, "sandbox", "file_size_mb", 1, int64_t{1} << 30, &p.limits.file_size_mb));
    KILN_RETURN_IF_ERROR(get_int(*t, "sandbox", "tmp_mb", 1, int64_t{1} << 30, &p.limits.tmp_mb));
    KILN_RETURN_IF_ERROR(
        get_int(*t, "sandbox", "plan_timeout_seconds", 1, 3600, &p.plan_timeout_seconds));
    KILN_RETURN_IF_ERROR(get_int(*t, "sandbox", "plan_cpu_seconds", 1, 86400, &p.plan_cpu_seconds));
    if (const toml::node* n = t->get("pass_env")) {
      if (!n->is_array()) return invalid_argument("sandbox.pass_env: must be a list of names");
      for (const toml::node& v : *n->as_array()) {
        auto s = v.value<std::string>();
        if (!s || s->empty() || s->find('=') != std::string::npos) {
          return invalid_argument("sandbox.pass_env: entries must be variable names");
        }
        p.pass_env.push_back(*s);
      }
    }
    if (const toml::node* n = t->get("tenant_drivers")) {
      const char* what = "sandbox.tenant_drivers: must be a list of GDAL driver names";
      if (!n->is_array()) return invalid_argument(what);
      for (const toml::node& v : *n->as_array()) {
        auto s = v.value<std::string>();
        if (!s || s->empty() || s->find_first_of(",= ") != std::string::npos) {
          return invalid_argument(what);
        }
        p.tenant_drivers.push_back(*s);
      }
      // Drivers whose files name other files (VRT, ...) are safe only where
      // the operating system decides what those names reach.
      if (p.mode == sandbox::Mode::kNone) {
        return invalid_argument(
            "sandbox.tenant_drivers: widening the drivers tenant rasters open with needs the "
            "sandbox on (mode = \"bwrap\"); without it a VRT could name any file");
      }
    }
  }
  KILN_RETURN_IF_ERROR(err);

  const toml::node* envs = root.get("environment");
  if (!envs || !envs->is_array_of_tables() || envs->as_array()->empty()) {
    return invalid_argument(
        "environment: at least one [[environment]] is required (name, token_sha256, catalog)");
  }
  int i = 0;
  for (const toml::node& n : *envs->as_array()) {
    const toml::table& t = *n.as_table();
    const std::string where = "environment[" + std::to_string(i++) + "]";
    KILN_RETURN_IF_ERROR(
        check_keys(t, where,
                   {"name", "token_sha256", "catalog", "concurrency", "priority", "aws_access_keys",
                    "source_roots", "requests_per_second", "request_burst", "max_pending_steps"}));
    EnvironmentConfig e;
    KILN_RETURN_IF_ERROR(get_string(t, where, "name", &e.name));
    if (e.name.empty()) return invalid_argument(where + ".name: required");
    for (char ch : e.name) {
      if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_')) {
        return invalid_argument(where + ".name: '" + e.name +
                                "' may only hold letters, digits, '-' and '_'");
      }
    }
    if (c.environment(e.name)) {
      return invalid_argument(where + ".name: '" + e.name + "' is configured twice");
    }
    KILN_RETURN_IF_ERROR(get_token_hashes(t, where, /*required=*/true, &e.token_sha256));
    std::string catalog;
    KILN_RETURN_IF_ERROR(get_string(t, where, "catalog", &catalog));
    if (catalog.empty()) return invalid_argument(where + ".catalog: required");
    e.catalog = absolute_from(base_dir, catalog);
    KILN_RETURN_IF_ERROR(
        get_int(t, where, "concurrency", kMinConcurrency, kMaxConcurrency, &e.concurrency));
    KILN_RETURN_IF_ERROR(get_int(t, where, "priority", -1000, 1000, &e.priority));
    // Missing or empty: the environment can ingest nothing (refused at
    // submit with a message saying so), never "anything".
    if (const toml::node* roots = t.get("source_roots")) {
      const std::string key = where + ".source_roots";
      if (!roots->is_array()) {
        return invalid_argument(key + ": must be a list of directories or remote prefixes");
      }
      int r = 0;
      for (const toml::node& rn : *roots->as_array()) {
        auto s = rn.value<std::string>();
        const std::string rk = key + "[" + std::to_string(r++) + "]";
        if (!s) return invalid_argument(rk + ": must be a string");
        KILN_ASSIGN_OR_RETURN(std::string root, canonical_root(*s, base_dir, rk));
        e.source_roots.push_back(std::move(root));
      }
    }
    KILN_RETURN_IF_ERROR(parse_quotas(t, where, &e));
    if (const toml::node* keys = t.get("aws_access_keys")) {
      if (!keys->is_array_of_tables()) {
        return invalid_argument(where + ".aws_access_keys: must be a list of " +
                                "{ id = \"...\", secret_env = \"VAR\" } tables");
      }
      int k = 0;
      for (const toml::node& kn : *keys->as_array()) {
        const toml::table& kt = *kn.as_table();
        const std::string kw = where + ".aws_access_keys[" + std::to_string(k++) + "]";
        KILN_RETURN_IF_ERROR(check_keys(kt, kw, {"id", "secret", "secret_env"}));
        AwsKey key;
        KILN_RETURN_IF_ERROR(get_string(kt, kw, "id", &key.access_key_id));
        if (key.access_key_id.empty()) return invalid_argument(kw + ".id: required");
        std::string secret_env;
        KILN_RETURN_IF_ERROR(get_string(kt, kw, "secret", &key.secret_access_key));
        KILN_RETURN_IF_ERROR(get_string(kt, kw, "secret_env", &secret_env));
        if (!secret_env.empty()) {
          // Keeps the secret out of the file: read from the environment.
          const char* v = std::getenv(secret_env.c_str());
          if (!v || !*v) {
            return invalid_argument(kw + ".secret_env: environment variable " + secret_env +
                                    " is not set");
          }
          key.secret_access_key = v;
        }
        if (key.secret_access_key.empty()) {
          return invalid_argument(kw + ": give secret_env (preferred) or secret");
        }
        e.aws_keys.push_back(std::move(key));
      }
    }
    c.environments.push_back(std::move(e));
  }
  // One token (or access key) opens one environment only.
  std::set<std::string> seen, seen_keys;
  for (const auto& e : c.environments) {
    for (const auto& k : e.aws_keys) {
      if (!seen_keys.insert(k.access_key_id).second) {
        return invalid_argument("environment '" + e.name + "': access key id '" + k.access_key_id +
                                "' is configured more than once");
      }
    }
  }
  for (const auto& e : c.environments) {
    for (const auto& h : e.token_sha256) {
      if (!seen.insert(h).second) {
        return invalid_argument("environment '" + e.name +
                                "': a token hash is shared with another environment");
      }
    }
  }
  return c;
}

Result<ServerConfig> load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found("config '" + path + "': cannot read it");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string base = fs::absolute(fs::path(path)).parent_path().string();
  auto c = parse_config(ss.str(), base);
  if (!c.is_ok()) return c.status().with_context("config '" + path + "'");
  return c;
}

}  // namespace kiln::config
