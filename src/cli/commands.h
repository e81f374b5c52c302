// The subcommands of `kiln` and their flags.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/status.h"

namespace kiln::cli {

struct IngestFlags {
  std::string definition;
  std::vector<std::string> sources;
  std::string layer;
  std::string catalog;
  std::string env;
  std::string layout;
  std::optional<int> tile_size;
  std::optional<int> min_zoom;
  std::optional<int> max_zoom;
  std::string bands;
  std::string cell_type;
  std::string nodata;
  std::string resample;
  std::string pyramid_resample;
  std::string format;
  std::optional<int> webp_quality;
  bool webp_lossless = false;
  std::string tif_compression;
  std::string src_crs;
  std::optional<double> error_threshold;
  std::string curve;
  int threads = 0;
  // kiln plan: partitions cut as the kiln serve there cuts them.
  std::string server;
  std::string token;
  std::string progress = "auto";
  bool quiet = false;
  bool json = false;
};

struct CatalogFlags {
  std::string catalog;
  std::string env;
  std::string layer;
  std::optional<int> version;
  bool json = false;
  // rm, rollback, prune
  std::optional<int> to;
  int keep = 0;  // set from catalog::kDefaultPruneKeep by add_catalog_commands
  bool dry_run = false;
};

void add_ingest_flags(CLI::App* cmd, IngestFlags* flags, bool for_plan);
// kiln plan's --server and --token (IngestFlags::server, token).
void add_plan_server_flags(CLI::App* cmd, IngestFlags* flags);
// Kiln-format definition JSON from SOURCE... and the ingest flags (layer,
// sources, output settings); output.catalog and output.environment are left
// to the caller. Malformed --bands/--nodata are refused naming the flag.
Result<nlohmann::json> ingest_flags_to_json(const IngestFlags& flags);
// "12.3 MiB": bytes for people.
std::string human_bytes(double bytes);
void add_catalog_commands(CLI::App* cmd, CatalogFlags* flags);

int run_ingest_command(const IngestFlags& flags);
int run_plan_command(const IngestFlags& flags);
int run_catalog_command(CLI::App* cmd, const CatalogFlags& flags);

// A subcommand that owns its flags: add_*_command() registers it on `app`
// and returns it with the function main() runs when it was chosen.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};
Command add_serve_command(CLI::App& app);       // serve_command.cc
Command add_worker_command(CLI::App& app);      // worker_command.cc
Command add_task_command(CLI::App& app);        // task_command.cc
Command add_slurm_task_command(CLI::App& app);  // slurm_task_command.cc
Command add_step_command(CLI::App& app);        // step_command.cc: step submit|list|...
Command add_cluster_command(CLI::App& app);     // cluster_command.cc: cluster status
Command add_token_command(CLI::App& app);       // token_command.cc: token new|hash
Command add_simulate_command(CLI::App& app);    // simulate_command.cc: simulate replay
Command add_render_command(CLI::App& app);      // render_command.cc: render-tile

}  // namespace kiln::cli
