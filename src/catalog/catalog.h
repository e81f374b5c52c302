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
#include <map>
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

// One thing catalog upkeep (Catalog::remove_layer, rollback, prune) changes
// on disk, or with a dry run would change.
struct UpkeepChange {
  enum class Kind {
    kRemoveLayer,    // the layer directory, with every version and staging
    kRemoveVersion,  // one versions/vNNNNNN that `current` does not point at
    kRemoveStaging,  // a staging directory whose writer on this host is gone
    kMoveCurrent,    // `current` swapped to another version (a rollback)
  };
  Kind kind = Kind::kRemoveVersion;
  std::string layer;
  // kRemoveVersion: the version removed. kMoveCurrent: the new current.
  int version = 0;
  // kMoveCurrent: the version `current` pointed at before; kRemoveLayer: the
  // layer's current version. 0: none.
  int from_version = 0;
  std::vector<int> versions;  // kRemoveLayer: the versions removed with it
  std::string staging_id;     // kRemoveStaging
  std::string path;           // absolute: what is removed, or the `current` link
};

// A layer prune left alone, and why ("an ingest is in progress: ...").
struct SkippedLayer {
  std::string layer;
  std::string reason;
};

// What an upkeep call did, or with dry_run would do: applying the changes
// in order gives the result.
struct UpkeepReport {
  std::string environment;
  bool dry_run = false;
  std::vector<UpkeepChange> changes;
  std::vector<SkippedLayer> skipped;  // prune of a whole environment only
};

// One line for people: "removed version 1 of layer 'ortho'", or "would remove
// ..." for a dry run; with_path appends the directory (": /data/cat/...").
std::string describe(const UpkeepChange& change, bool dry_run, bool with_path);

// The report as JSON: {"environment", "dry_run", "changes": [{"action":
// "remove_layer"|"remove_version"|"remove_staging"|"move_current", "layer",
// "description", and "versions"+"current" | "version" | "staging" |
// "from"+"to"}], "skipped": [{"layer", "reason"}]}; with_paths adds each
// change's "path" (kiln serve leaves them out: its paths are no tenant's
// business).
nlohmann::json to_json(const UpkeepReport& report, bool with_paths);

// Versions prune keeps by default besides the current one.
inline constexpr int kDefaultPruneKeep = 3;

struct PruneOptions {
  // The newest `keep` versions of each layer stay, and so does its current
  // version, whichever it is. >= 0.
  int keep = kDefaultPruneKeep;
  // Only this layer (it must exist; busy is an error then); nullopt: every
  // layer of the environment (busy layers are skipped).
  std::optional<std::string> layer;
  bool dry_run = false;
  // Layers the caller knows to be busy, with the reason to report: kiln
  // serve's PENDING and RUNNING steps, which may not have written anything
  // yet.
  std::map<std::string, std::string> busy;
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

  // Catalog upkeep (docs/catalog.md, "Upkeep"). Each takes the layer's lock
  // (as a commit does) and refuses with kUnavailable (the layer cannot take
  // it now; common/status.h has no conflict code yet), naming the staging
  // directory, while an ingest of the layer is in progress: a staging directory whose
  // writer may be alive (on this host, another host, or a cluster step's
  // shared one). With dry_run nothing on disk changes, not even the lock
  // file, and the report says what would change. Names are checked with
  // validate_name; a missing layer is kNotFound naming it. Thread-safe; safe
  // against concurrent commits and other processes' upkeep of the layer.

  // Removes the layer with all its versions: renamed out of sight in one
  // rename(2), then deleted.
  Result<UpkeepReport> remove_layer(const std::string& env, const std::string& layer,
                                    bool dry_run) const;
  // Points `current` at version `to`, atomically (the publish's symlink
  // swap); a later or an earlier version alike. kNotFound listing the
  // versions there are when `to` is not one; no change when it is current.
  Result<UpkeepReport> rollback(const std::string& env, const std::string& layer, int to,
                                bool dry_run) const;
  // Removes versions beyond the newest `keep` (never the current one),
  // staging directories of writers on this host that are gone, and layers
  // that are left with no current and no version (failed first ingests).
  // Stops at the first failure; what was removed before stays removed.
  Result<UpkeepReport> prune(const std::string& env, const PruneOptions& options) const;

  std::string layer_dir(const std::string& env, const std::string& layer) const;
  std::string version_dir(const std::string& env, const std::string& layer, int version) const;

 private:
  explicit Catalog(std::string root) : root_(std::move(root)) {}
  std::string root_;
};

}  // namespace kiln::catalog
