// The catalog: layers on disk, versioned, published atomically.
//
//   <root>/<environment>/<layer>/
//     current -> versions/v000003      symlink; swapped by rename(2), so a
//                                      reader sees the old or new version
//     versions/v000003/metadata.json   the layer metadata (see docs/catalog.md)
//     versions/v000003/<z>/<x>/<y>.<ext>
//     .staging/<id>/                   an ingest in progress: invisible to
//                                      readers, removed on abort
//     .lock                            flock(2)-ed while a version is published
//
// Web maps and GDAL read <root>/<env>/<layer>/current/{z}/{x}/{y}.<ext>.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace kiln::catalog {

// Returns ok if `name` is a safe single path component for a layer or
// environment: 1-128 characters of [A-Za-z0-9._-], starting with a letter or
// digit (so never "." or "..", never absolute, never containing "/").
// `what` ("layer", "environment") names the culprit in the message.
Status validate_name(std::string_view what, std::string_view name);

// Writes one new version of a layer into a staging directory, then publishes
// it. Thread-safe for write_tile/write_file from many threads.
// If destroyed without commit(), a private staging directory (fresh id) is
// removed; a shared one (staging_id given to begin) outlives each writer and
// ends only by commit() or an explicit abort(), so one worker's exit never
// deletes the others' tiles.
class LayerWriter {
 public:
  virtual ~LayerWriter() = default;
  // Absolute path of the staging directory.
  virtual const std::string& staging_dir() const = 0;
  // Writes <staging>/<z>/<x>/<y>.<ext>, creating directories as needed.
  virtual Status write_tile(int z, int64_t x, int64_t y, std::string_view ext,
                            std::string_view bytes) = 0;
  // Writes <staging>/<relpath>; relpath must stay inside staging.
  virtual Status write_file(std::string_view relpath, std::string_view bytes) = 0;
  // Reads back a file written with write_file (for partition partials).
  virtual Result<std::string> read_file(std::string_view relpath) const = 0;
  // Removes <staging>/<relpath> recursively (e.g. "_partials" before commit).
  virtual Status remove(std::string_view relpath) = 0;
  // Publishes the staged tiles as the next version: takes the layer lock,
  // sets metadata["version"] and metadata["created_at"] (UTC, ISO 8601),
  // writes metadata.json, renames staging to versions/vNNNNNN, then points
  // `current` at it. Returns the version number. After a failed commit the
  // previous version is still current.
  virtual Result<int> commit(nlohmann::json metadata) = 0;
  // Removes the staging directory. Idempotent.
  virtual void abort() = 0;
};

struct LayerSummary {
  std::string environment;
  std::string layer;
  int current_version = 0;  // 0: no published version
  int version_count = 0;
};

class Catalog {
 public:
  // Opens the catalog at `root` (a local directory; created when `create`).
  static Result<Catalog> open(const std::string& root, bool create);

  const std::string& root() const { return root_; }

  // Starts a new version of env/layer. `staging_id` names the staging
  // directory so several processes can write one version (a cluster step);
  // empty picks a fresh unique id. Stale staging directories of crashed
  // writers (their pid gone) are removed here.
  Result<std::unique_ptr<LayerWriter>> begin(const std::string& env, const std::string& layer,
                                             const std::string& staging_id = "") const;

  // All layers, or those of one environment, sorted by environment and name.
  Result<std::vector<LayerSummary>> list(const std::optional<std::string>& env) const;

  // The metadata of a version (default: current). kNotFound names what is
  // missing.
  Result<nlohmann::json> metadata(const std::string& env, const std::string& layer,
                                  std::optional<int> version = std::nullopt) const;

  std::string layer_dir(const std::string& env, const std::string& layer) const;
  std::string version_dir(const std::string& env, const std::string& layer, int version) const;

 private:
  explicit Catalog(std::string root) : root_(std::move(root)) {}
  std::string root_;
};

}  // namespace kiln::catalog
