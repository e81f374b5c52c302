// The subcommands of `kiln` and their flags.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

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
};

void add_ingest_flags(CLI::App* cmd, IngestFlags* flags, bool for_plan);
void add_catalog_commands(CLI::App* cmd, CatalogFlags* flags);

int run_ingest_command(const IngestFlags& flags);
int run_plan_command(const IngestFlags& flags);
int run_catalog_command(CLI::App* cmd, const CatalogFlags& flags);

}  // namespace kiln::cli
