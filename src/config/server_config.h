// kiln serve's configuration: a TOML file (examples/kiln.toml documents
// every setting and its default).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/sandbox.h"
#include "common/status.h"
#include "config/limits.h"
#include "elastic/autoscaler.h"

namespace kiln::config {

// An AWS-style key pair for the EMR-compatible endpoint. SigV4 needs the
// secret itself on the server side (it signs, it cannot compare hashes).
struct AwsKey {
  std::string access_key_id;
  std::string secret_access_key;
};

struct EnvironmentConfig {
  std::string name;
  std::vector<std::string> token_sha256;  // lower-case hex
  std::string catalog;                    // absolute
  int concurrency = 1;                    // 1-256
  int priority = 0;
  std::vector<AwsKey> aws_keys;  // EMR endpoint credentials
  // The prefixes its steps may read sources and definition files from, in
  // config::canonical_root form (config/source_roots.h). Empty: none.
  std::vector<std::string> source_roots;
  // Quotas (both doors): authenticated requests per second and the bursts
  // above it, then 429 / ThrottlingException; PENDING steps at most, then
  // a submit is refused the same way.
  double requests_per_second = kDefaultRequestsPerSecond;
  double request_burst = kDefaultRequestBurst;
  int64_t max_pending_steps = kDefaultMaxPendingSteps;
};

// [slurm]: the Slurm executor (docs/slurm.md).
struct SlurmConfig {
  std::string conf;     // slurm.conf, absolute; required with executor "slurm"
  std::string bin_dir;  // Slurm's clients; empty: found in PATH
  std::string kiln;     // the kiln binary on the compute nodes; empty: this one
  // How compute nodes reach this server; empty: http://127.0.0.1:<port>
  // (a cluster on this host).
  std::string server_url;
  std::map<std::string, std::string> partitions;  // environment -> partition (default: its name)
  int poll_ms = 1000;
  int resubmit_after_seconds = 5;
};

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8470;        // 0: any free port (tests)
  std::string state_dir;  // absolute
  int64_t max_body_bytes = 1 << 20;
  int shutdown_grace_seconds = 30;
  // SHA-256 (hex) of the tokens that may read /metrics; empty: anyone
  // who reaches the port may (the startup log says so).
  std::vector<std::string> metrics_token_sha256;
  // The HTTP front door (src/http/README.md says why these defaults).
  int http_threads = 16;
  int max_header_bytes = 16 * 1024;
  int header_timeout_seconds = 10;
  int body_timeout_seconds = 30;
  int idle_timeout_seconds = 60;
  int write_timeout_seconds = 30;
  int max_connections = 10'000;
  int max_connections_per_address = 1'024;
  int64_t max_buffered_body_bytes = 256 << 20;  // bodies in memory at once, in all
  // Rendered tiles (server/render_pool.h): renderer processes per
  // environment (0: analytic layers are served as stored tif only), and how
  // long one render may take.
  int render_processes = 2;
  int render_timeout_seconds = 10;

  int lease_seconds = 15;
  int heartbeat_seconds = 2;
  int max_attempts = 3;
  int starvation_seconds = 30;
  int cancel_grace_seconds = 10;

  std::string executor = "local";  // "local" | "slurm"
  SlurmConfig slurm;
  int workers = 1;
  int slots_per_worker = 2;
  // Nice level of worker processes and their tasks (0: the server's own).
  int worker_nice = 10;

  // The EMR-compatible endpoint (POST / with X-Amz-Target).
  bool emr_enabled = true;
  std::vector<std::string> emr_regions;    // empty: any region
  double emr_requests_per_second = 10000;  // per access key; above: ThrottlingException
  double emr_burst = 10000;
  std::string emr_release_label = "emr-6.15.0";

  std::vector<EnvironmentConfig> environments;

  // [sandbox]: how tenant input is opened (docs/security.md): tasks and the
  // planner at submit under bubblewrap, with these limits.
  sandbox::Policy sandbox;

  // Operators' tokens (SHA-256 hex): cluster operations that concern every
  // environment, such as `kiln cluster interrupt`. Not an environment.
  std::vector<std::string> operator_token_sha256;

  // Elastic capacity: instance groups and autoscaling policies ([[group]],
  // [autoscaling]). Without [[group]] tables: one on-demand core group of
  // `workers` nodes with `slots_per_worker` slots, as before.
  elastic::AutoscalerConfig autoscaler;
  // [spot]: how long a spot notice gives a node, and a random notice rate
  // for chaos runs (notices per ready spot node-hour; 0: none).
  int64_t spot_notice_ms = 120 * 1000;
  double spot_interruption_rate_per_node_hour = 0;
  uint64_t spot_chaos_seed = 1;

  const EnvironmentConfig* environment(const std::string& name) const;
};

// Parses TOML text; relative paths resolve against `base_dir`. Errors name
// the key ("environment[1].concurrency: must be 1-256").
Result<ServerConfig> parse_config(const std::string& text, const std::string& base_dir);
// Reads and parses a file.
Result<ServerConfig> load_config(const std::string& path);

}  // namespace kiln::config
