// `kiln ingest` and `kiln plan`.
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/progress_display.h"
#include "common/log.h"
#include "ingest/definition.h"
#include "ingest/engine.h"
#include "ingest/plan.h"

namespace kiln::cli {
namespace {

CancelToken g_cancel;

extern "C" void on_signal(int) { g_cancel.cancel(); }

Result<std::vector<int>> parse_int_list(const std::string& flag, const std::string& text) {
  std::vector<int> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      int v = std::stoi(item, &used);
      if (used != item.size()) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception&) {
      return invalid_argument(flag + ": '" + item + "' is not an integer (expected e.g. 3,2,1)");
    }
  }
  return out;
}

// Errors from flags name the flag, not the definition field it became.
std::string name_flags(std::string message) {
  static const std::pair<const char*, const char*> kFields[] = {
      {"output.zoom.max", "--max-zoom"},
      {"output.zoom.min", "--min-zoom"},
      {"output.tile_size", "--tile-size"},
      {"output.pyramid_resample", "--pyramid-resample"},
      {"output.resample", "--resample"},
      {"output.encoding.format", "--format"},
      {"output.encoding.webp_quality", "--webp-quality"},
      {"output.encoding.tif_compression", "--tif-compression"},
      {"output.cell_type", "--cell-type"},
      {"output.nodata", "--nodata"},
      {"output.layout", "--layout"},
      {"output.environment", "--env"},
      {"output.error_threshold", "--error-threshold"},
      {"output.partitioning.curve", "--curve"},
      {"output.catalog", "--catalog"},
  };
  for (const auto& [field, flag] : kFields) {
    for (size_t at = message.find(field); at != std::string::npos; at = message.find(field)) {
      message.replace(at, std::strlen(field), flag);
    }
  }
  if (message.rfind("layer:", 0) == 0) message.replace(0, 5, "--layer");
  return message;
}

// Builds Kiln-format JSON from the flags and parses it like a file, so both
// paths share one validator.
Result<std::vector<ingest::IngestDefinition>> definitions_from(const IngestFlags& f) {
  std::vector<ingest::IngestDefinition> defs;
  if (!f.definition.empty()) {
    if (!f.sources.empty()) {
      return invalid_argument("give either --definition or SOURCE arguments, not both");
    }
    KILN_ASSIGN_OR_RETURN(defs, ingest::load_definition(f.definition));
    for (auto& d : defs) {
      if (!f.catalog.empty()) d.output.catalog = f.catalog;
      if (!f.env.empty()) d.output.environment = f.env;
      if (d.output.catalog.empty()) {
        return invalid_argument("output.catalog: no catalog given (set it or pass --catalog)");
      }
    }
    return defs;
  }
  if (f.sources.empty()) {
    return invalid_argument(
        "nothing to ingest: give --definition DEF.json or SOURCE... "
        "--layer NAME --catalog DIR (see kiln ingest --help)");
  }
  if (f.layer.empty()) return invalid_argument("--layer is required with SOURCE arguments");
  if (f.catalog.empty()) return invalid_argument("--catalog is required with SOURCE arguments");
  KILN_ASSIGN_OR_RETURN(nlohmann::json j, ingest_flags_to_json(f));
  nlohmann::json& o = j["output"];
  o["catalog"] = f.catalog;
  if (!f.env.empty()) o["environment"] = f.env;
  auto parsed = ingest::parse_definition(j);
  if (!parsed.is_ok()) {
    return Status(parsed.status().code(), name_flags(parsed.status().message()));
  }
  return parsed;
}

void print_plan(const ingest::Plan& p) {
  const auto& o = p.def.output;
  std::printf("layer %s (environment %s): %s layout, %s, %d px %s tiles, %s x %d band%s\n",
              p.def.layer.c_str(), o.environment.c_str(), ingest::layout_name(o.layout),
              p.grid.is_web_mercator() ? "EPSG:3857" : "source CRS", p.grid.tile_size(),
              tile_extension(o.encoding.format), cell_type_name(p.cell_type), p.bands,
              p.bands == 1 ? "" : "s");
  const std::string choice = ingest::format_choice(p);
  if (!choice.empty()) std::printf("format %s\n", choice.c_str());
  std::printf("%5s %10s  %-31s %s\n", "zoom", "tiles", "key range x / y", "resolution");
  for (const auto& l : p.levels) {
    char range[64];
    std::snprintf(range, sizeof range, "%lld-%lld / %lld-%lld",
                  static_cast<long long>(l.range.min_x), static_cast<long long>(l.range.max_x),
                  static_cast<long long>(l.range.min_y), static_cast<long long>(l.range.max_y));
    std::printf("%5d %10lld  %-31s %.6g\n", l.zoom, static_cast<long long>(l.tiles), range,
                l.resolution);
  }
  uint64_t file_bytes = 0;
  for (const auto& s : p.sources) file_bytes += s.info.file_size;
  const int side = 1 << (p.max_zoom - p.region_zoom);
  std::printf(
      "total %lld tiles (upper bound: empty tiles are skipped) in %zu partition%s of up to "
      "%dx%d max-zoom tiles (partition zoom %d)\n",
      static_cast<long long>(p.total_tiles()), p.partitions.size(),
      p.partitions.size() == 1 ? "" : "s", side, side, p.region_zoom);
  std::printf("read about %s of decoded pixels from %zu source%s (%s on disk)\n",
              human_bytes(static_cast<double>(p.read_bytes)).c_str(), p.sources.size(),
              p.sources.size() == 1 ? "" : "s",
              human_bytes(static_cast<double>(file_bytes)).c_str());
}

}  // namespace

void add_ingest_flags(CLI::App* cmd, IngestFlags* f, bool for_plan) {
  cmd->add_option("SOURCE", f->sources,
                  "Source rasters: paths or GDAL names (/vsicurl/..., /vsis3/...)");
  cmd->add_option("--definition,-d", f->definition,
                  "Ingest definition JSON (Kiln's or Raster Foundry's format; docs/definition.md)");
  cmd->add_option("--layer,-l", f->layer,
                  "Layer name: [A-Za-z0-9._-], starting with a letter or digit");
  cmd->add_option("--catalog,-c", f->catalog,
                  "Catalog root directory (overrides the definition's)");
  cmd->add_option("--env", f->env, "Environment inside the catalog (default: default)");
  cmd->add_option(
      "--layout", f->layout,
      "zoomed (EPSG:3857 XYZ pyramid, default) or floating (source CRS and resolution)");
  cmd->add_option(
      "--tile-size", f->tile_size,
      "Tile size in pixels: a power of two from 64 to 4096; 256 (default) and 512 are usual");
  cmd->add_option("--min-zoom", f->min_zoom, "Lowest zoom level (default 0)");
  cmd->add_option(
      "--max-zoom", f->max_zoom,
      "Highest zoom level (default: from the source resolution, as gdal2tiles picks it)");
  cmd->add_option("--bands", f->bands, "Source bands in output order, 1-based, e.g. 3,2,1");
  cmd->add_option("--cell-type", f->cell_type,
                  "Output cell type: uint8, uint16, int16, uint32, int32, uint64, int64, float32, "
                  "float64 (default: the source's)");
  cmd->add_option("--nodata", f->nodata, "Output nodata value or nan (default: the source's)");
  cmd->add_option("--resample", f->resample,
                  "Warp resampling: nearest, bilinear (default), cubic, lanczos");
  cmd->add_option("--pyramid-resample", f->pyramid_resample,
                  "Pyramid resampling: average (default), mode, min, max, median, nearest");
  cmd->add_option("--format", f->format,
                  "Tile encoding: png, webp or tif (default: png for 1 or 3 bands of uint8, tif\n"
                  "otherwise: a uint16 or float layer, 2 or 4+ bands)");
  cmd->add_option("--webp-quality", f->webp_quality, "WebP quality 0-100 (default 75)");
  cmd->add_flag("--webp-lossless", f->webp_lossless, "Lossless WebP");
  cmd->add_option("--tif-compression", f->tif_compression, "deflate (default) or zstd");
  cmd->add_option("--src-crs", f->src_crs,
                  "CRS for sources that lack one (EPSG:n, WKT or PROJ string)");
  cmd->add_option("--error-threshold", f->error_threshold,
                  "Max error of the approximate transform, in pixels (default 0.125; 0 = exact)");
  cmd->add_option("--curve", f->curve, "Partition order: zorder (default) or hilbert");
  cmd->add_option("--threads,-j", f->threads, "Worker threads (default: one per core)");
  if (for_plan) {
    cmd->add_flag("--json", f->json, "Print the plan as JSON");
  } else {
    cmd->add_option("--progress", f->progress,
                    "auto (a bar on a terminal), bar, json (JSON lines on stderr) or none")
        ->capture_default_str();
    cmd->add_flag("--quiet,-q", f->quiet, "Print nothing but errors");
    cmd->add_flag("--json", f->json, "Print the result (the layer metadata) as JSON on stdout");
  }
}

void add_plan_server_flags(CLI::App* cmd, IngestFlags* f) {
  cmd->add_option("--server", f->server,
                  "Cut the partitions as kiln serve at this URL cuts them, for the slots it may "
                  "grow to (asks it; instead of --threads)");
  cmd->add_option("--token", f->token, "With --server: an API token (default: $KILN_TOKEN)");
}

// How many threads kiln serve at f.server plans for (GET /v1/environment's
// plan_threads): its steps' partitions are the plan's for that many.
Result<int> server_plan_threads(const IngestFlags& f) {
  if (f.threads > 0) {
    return invalid_argument(
        "--threads and --server: give one (with --server the partitions are cut for the "
        "server's slots)");
  }
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<ApiClient> client,
                        ApiClient::create(ApiFlags{f.server, f.token}));
  KILN_ASSIGN_OR_RETURN(nlohmann::json env, client->get("/v1/environment"));
  const auto it = env.find("plan_threads");
  if (it == env.end() || !it->is_number_integer() || it->get<int64_t>() < 1 ||
      it->get<int64_t>() > 1'000'000) {
    return internal_error("kiln serve at " + client->server() +
                          " does not say how it partitions (GET /v1/environment has no "
                          "plan_threads): a server older than this kiln");
  }
  return static_cast<int>(it->get<int64_t>());
}

int run_plan_command(const IngestFlags& f) {
  auto defs = definitions_from(f);
  if (!defs.is_ok()) return report_error(defs.status());
  // The server partitions for every slot it may grow to, this machine for
  // its own threads: one planner (make_plan), told which.
  int threads = ingest::resolve_threads(f.threads);
  std::string cut_for;
  if (!f.server.empty()) {
    auto t = server_plan_threads(f);
    if (!t.is_ok()) return report_error(t.status());
    threads = *t;
    cut_for = "partitions cut for " + std::to_string(threads) + " slot(s), as kiln serve at " +
              f.server + " cuts them";
  } else {
    cut_for = "partitions cut for " + std::to_string(threads) +
              " thread(s) of this machine (kiln serve cuts them for its slots: --server URL "
              "shows its partitions)";
  }
  nlohmann::json all = nlohmann::json::array();
  for (const auto& def : *defs) {
    auto plan = ingest::make_plan(def, {threads});
    if (!plan.is_ok()) return report_error(plan.status());
    for (const std::string& w : ingest::plan_warnings(*plan))
      std::fprintf(stderr, "kiln: warning: layer %s: %s\n", def.layer.c_str(), w.c_str());
    if (f.json) {
      nlohmann::json j = ingest::plan_to_json(*plan);
      j["plan_threads"] = threads;
      j["partitioned_for"] = f.server.empty() ? "local" : "server";
      all.push_back(std::move(j));
    } else {
      print_plan(*plan);
      std::printf("%s\n", cut_for.c_str());
    }
  }
  if (f.json) std::printf("%s\n", (all.size() == 1 ? all[0] : all).dump(2).c_str());
  return kExitOk;
}

int run_ingest_command(const IngestFlags& f) {
  auto mode = parse_progress_mode(f.progress);
  if (!mode.is_ok()) return report_error(mode.status());
  if (f.quiet) log::set_level(log::Level::kWarn);
  auto defs = definitions_from(f);
  if (!defs.is_ok()) return report_error(defs.status());
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  for (const auto& def : *defs) {
    ingest::Progress progress;
    auto start = std::chrono::steady_clock::now();
    ProgressDisplay display(progress, f.quiet ? ProgressMode::kNone : *mode);
    ingest::IngestOptions opts;
    opts.threads = f.threads;
    opts.progress = &progress;
    opts.cancel = &g_cancel;
    auto result = ingest::run_ingest(def, opts);
    display.stop();
    if (!result.is_ok()) return report_error(result.status());
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto& s = *result;
    if (f.json) {
      std::printf("%s\n", s.metadata.dump(2).c_str());
    } else if (!f.quiet) {
      std::string current = s.layer_dir + "/current";
      std::printf("layer      %s/%s, version %d\n", s.environment.c_str(), s.layer.c_str(),
                  s.version);
      std::printf("published  %s\n", current.c_str());
      std::printf("tiles      %lld %s tiles, zoom %d-%d, %s\n", static_cast<long long>(s.tiles),
                  s.format.c_str(), s.min_zoom, s.max_zoom,
                  human_bytes(static_cast<double>(s.bytes)).c_str());
      if (!s.format_choice.empty()) std::printf("format     %s\n", s.format_choice.c_str());
      std::printf("took       %.2f s (%lld partitions, %d threads)\n", secs,
                  static_cast<long long>(s.partitions), ingest::resolve_threads(f.threads));
      std::printf("look       gdalinfo %s/layer.xml   |   XYZ url file://%s/{z}/{x}/{y}.%s\n",
                  current.c_str(), current.c_str(), s.format.c_str());
    }
  }
  return kExitOk;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", b, units[u]);
  return buf;
}

Result<nlohmann::json> ingest_flags_to_json(const IngestFlags& f) {
  nlohmann::json j;
  j["layer"] = f.layer;
  std::vector<int> bands;
  if (!f.bands.empty()) {
    KILN_ASSIGN_OR_RETURN(bands, parse_int_list("--bands", f.bands));
  }
  for (const auto& s : f.sources) {
    nlohmann::json src = {{"uri", s}};
    if (!bands.empty()) src["bands"] = bands;
    if (!f.src_crs.empty()) src["crs"] = f.src_crs;
    j["sources"].push_back(src);
  }
  nlohmann::json& o = j["output"];
  o = nlohmann::json::object();
  if (!f.layout.empty()) o["layout"] = f.layout;
  if (f.tile_size) o["tile_size"] = *f.tile_size;
  if (f.min_zoom) o["zoom"]["min"] = *f.min_zoom;
  if (f.max_zoom) o["zoom"]["max"] = *f.max_zoom;
  if (!f.cell_type.empty()) o["cell_type"] = f.cell_type;
  if (!f.nodata.empty()) {
    if (f.nodata == "nan" || f.nodata == "NaN") {
      o["nodata"] = "nan";
    } else {
      try {
        size_t used = 0;
        double v = std::stod(f.nodata, &used);
        if (used != f.nodata.size()) throw std::invalid_argument(f.nodata);
        o["nodata"] = v;
      } catch (const std::exception&) {
        return invalid_argument("--nodata: '" + f.nodata + "' is not a number or nan");
      }
    }
  }
  if (!f.resample.empty()) o["resample"] = f.resample;
  if (!f.pyramid_resample.empty()) o["pyramid_resample"] = f.pyramid_resample;
  if (!f.format.empty()) o["encoding"]["format"] = f.format;
  if (f.webp_quality) o["encoding"]["webp_quality"] = *f.webp_quality;
  if (f.webp_lossless) o["encoding"]["webp_lossless"] = true;
  if (!f.tif_compression.empty()) o["encoding"]["tif_compression"] = f.tif_compression;
  if (f.error_threshold) o["error_threshold"] = *f.error_threshold;
  if (!f.curve.empty()) o["partitioning"]["curve"] = f.curve;
  return j;
}

}  // namespace kiln::cli
