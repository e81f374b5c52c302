// Catalog upkeep: removing a layer, rolling `current` back to an earlier
// version, pruning old versions and the empty layers failed ingests leave.
// Each works under the layer's lock, the one a commit takes, so a commit and
// an upkeep of one layer never interleave.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/file_lock.h"
#include "catalog/layer_writer.h"
#include "common/log.h"

namespace kiln::catalog {
namespace {

namespace fs = std::filesystem;
using Kind = UpkeepChange::Kind;

// What upkeep looks at in one layer directory.
struct LayerState {
  std::vector<int> versions;  // ascending
  std::optional<int> current;
  std::vector<internal::StagingEntry> staging;
};

std::string layer_not_found(const std::string& env, const std::string& layer) {
  return "layer '" + layer + "' not found in environment '" + env + "'";
}

Result<LayerState> load_layer(const std::string& env, const std::string& layer,
                              const fs::path& dir) {
  std::error_code ec;
  // Checked again under the lock: another upkeep may have removed it.
  if (!fs::is_directory(dir, ec)) return not_found(layer_not_found(env, layer));
  LayerState s;
  KILN_ASSIGN_OR_RETURN(s.versions, internal::scan_versions(dir));
  s.current = internal::current_version(dir);
  KILN_ASSIGN_OR_RETURN(s.staging, internal::scan_staging(dir));
  return s;
}

// Why the layer is busy, naming its first live staging directory; nullopt
// when no ingest of it may be in progress.
std::optional<std::string> busy_reason(const LayerState& s) {
  for (const auto& e : s.staging) {
    if (e.live) {
      return "an ingest is in progress: staging '" + std::string(internal::kStagingDirName) + "/" +
             e.id + "' (" + e.why + ")";
    }
  }
  return std::nullopt;
}

Status busy_error(const std::string& env, const std::string& layer, const std::string& reason,
                  const std::string& what) {
  return unavailable("cannot " + what + " layer '" + layer + "' in environment '" + env +
                     "': " + reason + "; try again when it has ended");
}

// Renames `path` to a hidden sibling, which no listing shows and no reader
// resolves, then deletes it: readers see the whole directory or none of it.
Status remove_tree(const fs::path& path) {
  static std::atomic<uint64_t> counter{0};
  fs::path hidden = path.parent_path();
  hidden /= "." + path.filename().string() + ".removing-" + std::to_string(::getpid()) + "-" +
            std::to_string(counter++);
  if (::rename(path.c_str(), hidden.c_str()) != 0) {
    return io_error("cannot remove '" + path.string() + "': cannot rename it to '" +
                    hidden.string() + "': " + std::strerror(errno));
  }
  std::error_code ec;
  fs::remove_all(hidden, ec);
  if (ec) {
    return io_error("'" + path.string() + "' is out of the catalog, but deleting '" +
                    hidden.string() + "' failed: " + ec.message() + "; delete it by hand");
  }
  return Status::ok();
}

// Makes removals and swaps inside `dir` durable; they are done already, so
// a failure only weakens durability and is logged, not returned.
void sync_quietly(const fs::path& dir) {
  if (Status s = internal::sync_dir(dir); !s.is_ok()) log::warn(s.message());
}

// The layer's lock, unless this is a dry run (which must not even create
// the lock file).
Result<std::optional<internal::FileLock>> lock_layer(const fs::path& dir, bool dry_run) {
  std::optional<internal::FileLock> lock;
  if (dry_run) return lock;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return lock;  // load_layer reports it
  KILN_ASSIGN_OR_RETURN(internal::FileLock l,
                        internal::FileLock::acquire((dir / internal::kLockFileName).string()));
  lock.emplace(std::move(l));
  return lock;
}

UpkeepChange remove_layer_change(const std::string& layer, const fs::path& dir,
                                 const LayerState& s) {
  UpkeepChange c;
  c.kind = Kind::kRemoveLayer;
  c.layer = layer;
  c.from_version = s.current.value_or(0);
  c.versions = s.versions;
  c.path = dir.string();
  return c;
}

// Carries out one change (not a dry run). REQUIRES: the layer's lock.
Status apply(const UpkeepChange& c, const fs::path& layer_dir) {
  switch (c.kind) {
    case Kind::kRemoveLayer:
      KILN_RETURN_IF_ERROR(remove_tree(layer_dir));
      sync_quietly(layer_dir.parent_path());
      return Status::ok();
    case Kind::kRemoveVersion:
      KILN_RETURN_IF_ERROR(remove_tree(c.path));
      sync_quietly(fs::path(c.path).parent_path());
      return Status::ok();
    case Kind::kRemoveStaging:
      return internal::remove_staging(layer_dir, c.staging_id);
    case Kind::kMoveCurrent:
      KILN_RETURN_IF_ERROR(internal::point_current(layer_dir, c.version));
      sync_quietly(layer_dir);
      return Status::ok();
  }
  return internal_error("unknown upkeep change");
}

// Prunes one layer into `report`; a busy layer is skipped, or with
// o.layer (the caller named it) refused.
Status prune_layer(const std::string& env, const std::string& layer, const fs::path& dir,
                   const PruneOptions& o, UpkeepReport* report) {
  KILN_ASSIGN_OR_RETURN(std::optional<internal::FileLock> lock, lock_layer(dir, o.dry_run));
  KILN_ASSIGN_OR_RETURN(LayerState s, load_layer(env, layer, dir));
  if (std::optional<std::string> why = busy_reason(s)) {
    if (o.layer) return busy_error(env, layer, *why, "prune");
    report->skipped.push_back({layer, *why});
    return Status::ok();
  }

  const auto kept =
      static_cast<std::ptrdiff_t>(std::min(s.versions.size(), static_cast<size_t>(o.keep)));
  const std::vector<int> keep(s.versions.end() - kept, s.versions.end());
  std::vector<UpkeepChange> changes;
  bool removes_newest = false;  // and the layer stays
  if (!s.current && keep.empty()) {
    // No current and nothing kept: a layer whose first ingest failed (or
    // whose unpublished versions all go).
    changes.push_back(remove_layer_change(layer, dir, s));
  } else {
    for (int v : s.versions) {
      if (v == s.current || std::find(keep.begin(), keep.end(), v) != keep.end()) continue;
      UpkeepChange c;
      c.kind = Kind::kRemoveVersion;
      c.layer = layer;
      c.version = v;
      removes_newest = removes_newest || v == s.versions.back();
      c.path = (dir / internal::kVersionsDirName / internal::version_name(v)).string();
      changes.push_back(std::move(c));
    }
    for (const auto& e : s.staging) {
      if (e.live) continue;  // not here: busy_reason() above
      UpkeepChange c;
      c.kind = Kind::kRemoveStaging;
      c.layer = layer;
      c.staging_id = e.id;
      c.path = (dir / internal::kStagingDirName / e.id).string();
      changes.push_back(std::move(c));
    }
  }
  // The newest version going: its number must not be given again.
  if (!o.dry_run && removes_newest) {
    KILN_RETURN_IF_ERROR(internal::record_highest_version(dir, s.versions.back()));
  }
  for (UpkeepChange& c : changes) {
    if (!o.dry_run) KILN_RETURN_IF_ERROR(apply(c, dir));
    report->changes.push_back(std::move(c));
  }
  return Status::ok();
}

}  // namespace

std::string describe(const UpkeepChange& c, bool dry_run, bool with_path) {
  const std::string of_layer = "layer '" + c.layer + "'";
  std::string out;
  switch (c.kind) {
    case Kind::kRemoveLayer:
      out = (dry_run ? "would remove " : "removed ") + of_layer;
      if (c.versions.empty()) {
        out += ", which has no version";
      } else {
        out += " with version";
        if (c.versions.size() > 1) out += 's';
        out += ' ';
        out += internal::format_ranges(c.versions);
        out += c.from_version ? " (current " + std::to_string(c.from_version) + ")"
                              : " (none current)";
      }
      break;
    case Kind::kRemoveVersion:
      out = (dry_run ? "would remove version " : "removed version ") + std::to_string(c.version) +
            " of " + of_layer;
      break;
    case Kind::kRemoveStaging:
      out = (dry_run ? "would remove staging '" : "removed staging '") + c.staging_id + "' of " +
            of_layer + ", whose writer is gone";
      break;
    case Kind::kMoveCurrent:
      out = (dry_run ? "would point " : "pointed ") + of_layer + " at version " +
            std::to_string(c.version) + " (was " +
            (c.from_version ? std::to_string(c.from_version) : std::string("none")) + ")";
      break;
  }
  if (with_path && !c.path.empty()) out += ": " + c.path;
  return out;
}

nlohmann::json to_json(const UpkeepReport& r, bool with_paths) {
  using nlohmann::json;
  auto version_or_null = [](int v) { return v > 0 ? json(v) : json(nullptr); };
  json changes = json::array();
  for (const auto& c : r.changes) {
    json j = {{"layer", c.layer}, {"description", describe(c, r.dry_run, false)}};
    switch (c.kind) {
      case Kind::kRemoveLayer:
        j["action"] = "remove_layer";
        j["versions"] = c.versions;
        j["current"] = version_or_null(c.from_version);
        break;
      case Kind::kRemoveVersion:
        j["action"] = "remove_version";
        j["version"] = c.version;
        break;
      case Kind::kRemoveStaging:
        j["action"] = "remove_staging";
        j["staging"] = c.staging_id;
        break;
      case Kind::kMoveCurrent:
        j["action"] = "move_current";
        j["from"] = version_or_null(c.from_version);
        j["to"] = c.version;
        break;
    }
    if (with_paths) j["path"] = c.path;
    changes.push_back(std::move(j));
  }
  json skipped = json::array();
  for (const auto& s : r.skipped) skipped.push_back({{"layer", s.layer}, {"reason", s.reason}});
  return {{"environment", r.environment},
          {"dry_run", r.dry_run},
          {"changes", std::move(changes)},
          {"skipped", std::move(skipped)}};
}

Result<UpkeepReport> Catalog::remove_layer(const std::string& env, const std::string& layer,
                                           bool dry_run) const {
  KILN_RETURN_IF_ERROR(validate_name("environment", env));
  KILN_RETURN_IF_ERROR(validate_name("layer", layer));
  const fs::path dir = layer_dir(env, layer);
  KILN_ASSIGN_OR_RETURN(std::optional<internal::FileLock> lock, lock_layer(dir, dry_run));
  KILN_ASSIGN_OR_RETURN(LayerState s, load_layer(env, layer, dir));
  if (std::optional<std::string> why = busy_reason(s)) {
    return busy_error(env, layer, *why, "remove");
  }
  UpkeepReport report;
  report.environment = env;
  report.dry_run = dry_run;
  report.changes.push_back(remove_layer_change(layer, dir, s));
  if (!dry_run) KILN_RETURN_IF_ERROR(apply(report.changes.back(), dir));
  return report;
}

Result<UpkeepReport> Catalog::rollback(const std::string& env, const std::string& layer, int to,
                                       bool dry_run) const {
  KILN_RETURN_IF_ERROR(validate_name("environment", env));
  KILN_RETURN_IF_ERROR(validate_name("layer", layer));
  const fs::path dir = layer_dir(env, layer);
  KILN_ASSIGN_OR_RETURN(std::optional<internal::FileLock> lock, lock_layer(dir, dry_run));
  KILN_ASSIGN_OR_RETURN(LayerState s, load_layer(env, layer, dir));
  if (!std::binary_search(s.versions.begin(), s.versions.end(), to)) {
    return not_found("version " + std::to_string(to) + " of layer '" + layer +
                     "' not found in environment '" + env +
                     "' (versions: " + internal::format_ranges(s.versions) + ")");
  }
  if (std::optional<std::string> why = busy_reason(s)) {
    return busy_error(env, layer, *why, "roll back");
  }
  UpkeepReport report;
  report.environment = env;
  report.dry_run = dry_run;
  if (s.current == to) return report;  // nothing to change
  UpkeepChange c;
  c.kind = Kind::kMoveCurrent;
  c.layer = layer;
  c.version = to;
  c.from_version = s.current.value_or(0);
  c.path = (dir / internal::kCurrentLinkName).string();
  if (!dry_run) KILN_RETURN_IF_ERROR(apply(c, dir));
  report.changes.push_back(std::move(c));
  return report;
}

Result<UpkeepReport> Catalog::prune(const std::string& env, const PruneOptions& o) const {
  KILN_RETURN_IF_ERROR(validate_name("environment", env));
  if (o.keep < 0) {
    return invalid_argument("keep: must be 0 or more, not " + std::to_string(o.keep));
  }
  UpkeepReport report;
  report.environment = env;
  report.dry_run = o.dry_run;
  std::vector<std::string> layers;
  if (o.layer) {
    KILN_RETURN_IF_ERROR(validate_name("layer", *o.layer));
    std::error_code ec;
    if (!fs::is_directory(layer_dir(env, *o.layer), ec)) {
      return not_found(layer_not_found(env, *o.layer));
    }
    if (auto it = o.busy.find(*o.layer); it != o.busy.end()) {
      return busy_error(env, *o.layer, it->second, "prune");
    }
    layers.push_back(*o.layer);
  } else {
    const fs::path env_dir = fs::path(root_) / env;
    std::error_code ec;
    if (!fs::is_directory(env_dir, ec)) return report;  // no layer yet: nothing to prune
    KILN_ASSIGN_OR_RETURN(layers, internal::child_names(env_dir));
  }
  for (const std::string& layer : layers) {
    if (auto it = o.busy.find(layer); it != o.busy.end()) {
      report.skipped.push_back({layer, it->second});
      continue;
    }
    Status st = prune_layer(env, layer, layer_dir(env, layer), o, &report);
    // Removed by someone else since the listing: nothing left to prune.
    if (st.code() == StatusCode::kNotFound && !o.layer) continue;
    KILN_RETURN_IF_ERROR(st);
  }
  return report;
}

}  // namespace kiln::catalog
