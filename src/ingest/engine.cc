#include "ingest/engine.h"

#include <future>
#include <thread>
#include <vector>

#include "catalog/catalog.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "ingest/checksum.h"
#include "ingest/metadata.h"
#include "ingest/partition.h"
#include "ingest/reduce.h"
#include "raster/gdal_env.h"

namespace kiln::ingest {
namespace {

// The first error of the partition pool's threads; the later ones are
// mostly the stop it triggered. Thread-safe.
class FirstError {
 public:
  void record(const Status& s) EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    if (status_.is_ok()) status_ = s;
  }
  Status get() const EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return status_;
  }

 private:
  mutable Mutex mu_;
  Status status_ GUARDED_BY(mu_);
};

}  // namespace

int resolve_threads(int requested) {
  if (requested > 0) return requested;
  unsigned n = std::thread::hardware_concurrency();
  return n ? static_cast<int>(n) : 1;
}

Result<IngestSummary> run_ingest(const IngestDefinition& def, const IngestOptions& options) {
  init_gdal();
  const int threads = resolve_threads(options.threads);
  Progress local_progress;
  Progress* progress = options.progress ? options.progress : &local_progress;
  CancelToken local_cancel;
  const CancelToken& outer_cancel = options.cancel ? *options.cancel : local_cancel;

  KILN_ASSIGN_OR_RETURN(Plan plan, make_plan(def, PlanOptions{threads}));
  log::info("planned layer '" + def.layer + "': zoom " + std::to_string(plan.min_zoom) + "-" +
            std::to_string(plan.max_zoom) + ", " + std::to_string(plan.total_tiles()) +
            " tiles in " + std::to_string(plan.partitions.size()) + " partitions");
  progress->tiles_total.store(plan.total_tiles());
  progress->partitions_total.store(static_cast<int64_t>(plan.partitions.size()));

  auto catalog = catalog::Catalog::open(def.output.catalog, /*create=*/true);
  if (!catalog.is_ok()) return catalog.status();
  KILN_ASSIGN_OR_RETURN(auto writer, catalog->begin(def.output.environment, def.layer));

  // Checksums read the sources once more; do it beside the tiling.
  auto checksums = std::async(std::launch::async, [&plan] {
    std::vector<std::optional<std::string>> out;
    for (const auto& s : plan.sources) out.push_back(source_sha256(s.info.uri));
    return out;
  });

  // Partitions in curve order, pulled by a fixed pool of threads. The first
  // error stops the others at their next tile.
  std::vector<PartitionResult> results(plan.partitions.size());
  std::atomic<size_t> next{0};
  FirstError pool_error;
  CancelToken stop;
  auto worker = [&] {
    SourceCache sources(plan);
    for (;;) {
      if (outer_cancel.cancelled()) stop.cancel();
      size_t i = next.fetch_add(1);
      if (i >= plan.partitions.size() || stop.cancelled()) return;
      auto r = run_partition(plan, static_cast<int64_t>(i), writer.get(), &sources, progress, stop);
      if (!r.is_ok()) {
        pool_error.record(r.status());
        stop.cancel();
        return;
      }
      results[i] = std::move(r).value();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  auto sums = checksums.get();
  Status first_error = pool_error.get();
  if (outer_cancel.cancelled() && first_error.is_ok())
    first_error = cancelled("interrupted; nothing was published");
  if (!first_error.is_ok()) {
    writer->abort();
    return first_error;
  }

  auto reduced = run_reduce(plan, results, writer.get(), progress, outer_cancel);
  if (!reduced.is_ok()) {
    writer->abort();
    return reduced.status();
  }
  std::map<int, LevelResult> levels = std::move(reduced).value();
  for (const auto& r : results)
    for (const auto& [z, l] : r.levels) levels[z].merge(l);
  int64_t tiles = 0;
  uint64_t bytes = 0;
  for (const auto& [z, l] : levels) {
    tiles += l.tiles;
    bytes += l.bytes;
  }
  if (tiles == 0) {
    writer->abort();
    return empty_error("no tile has data: every source pixel in the layer's area is nodata");
  }

  const std::string layer_dir = catalog->layer_dir(def.output.environment, def.layer);
  nlohmann::json metadata = build_metadata(plan, results, levels, sums);
  KILN_RETURN_IF_ERROR(writer->write_file("layer.xml", gdal_wms_xml(plan, layer_dir + "/current")));
  if (outer_cancel.cancelled()) {
    writer->abort();
    return cancelled("interrupted; nothing was published");
  }
  KILN_ASSIGN_OR_RETURN(int version, writer->commit(metadata));
  metadata["version"] = version;

  IngestSummary s;
  s.environment = def.output.environment;
  s.layer = def.layer;
  s.layer_dir = layer_dir;
  s.version = version;
  s.tiles = tiles;
  s.bytes = bytes;
  s.min_zoom = plan.min_zoom;
  s.max_zoom = plan.max_zoom;
  s.partitions = static_cast<int64_t>(plan.partitions.size());
  s.format = tile_extension(plan.def.output.encoding.format);
  s.format_choice = format_choice(plan);
  s.metadata = std::move(metadata);
  return s;
}

}  // namespace kiln::ingest
