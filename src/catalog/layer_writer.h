// Internal to src/catalog: the directory-backed LayerWriter and the layout
// names Catalog and the writer share. Code outside the catalog library uses
// catalog.h only.
//
// Staging bookkeeping, beside the staging directories so that a publish
// renames tiles and metadata only:
//   <layer>/.staging/<id>/          the tiles and files being written
//   <layer>/.staging/.<id>.owner    JSON {"pid", "host", "shared", "created_at"}
// A name starting with '.' can never be a staging id, so the two never clash.
// Stale-staging cleanup goes by owner files only: a directory without one is
// never removed automatically.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "common/status.h"

namespace kiln::catalog::internal {

inline constexpr char kCurrentLinkName[] = "current";
inline constexpr char kVersionsDirName[] = "versions";
inline constexpr char kStagingDirName[] = ".staging";
inline constexpr char kLockFileName[] = ".lock";
inline constexpr char kMetadataFileName[] = "metadata.json";
// The highest version number ever published, kept when prune removes the
// newest versions so that their numbers are never given again.
inline constexpr char kHighestVersionFileName[] = ".highest_version";

// --- Names (names.cc) ---

// The directory name of a version under versions/: 3 -> "v000003".
// REQUIRES: version >= 1.
std::string version_name(int version);

// The version a versions/ entry or `current` target names: "v000003" -> 3,
// "versions/v000003" -> 3; nullopt for anything else.
std::optional<int> parse_version_name(std::string_view name);

// Ok if `relpath` names something strictly inside a staging directory:
// relative, '/'-separated, no empty, "." or ".." parts. kInvalidArgument
// naming the path otherwise.
Status validate_relpath(std::string_view relpath);

// A new staging id, unique across processes and hosts in practice:
// "<utc yyyymmddThhmmss>-<pid>-<8 random hex digits>". Thread-safe.
std::string fresh_staging_id();

// "1-3, 5" for the sorted versions {1, 2, 3, 5}; "none" when empty.
std::string format_ranges(const std::vector<int>& sorted);

// The current UTC time as ISO 8601 with a Z suffix: "2024-05-01T12:00:00Z".
std::string utc_now_iso8601();

// --- The layer directory (layer_writer.cc) ---

// The number the next commit of the layer takes: 1 + the highest of
// versions/ and of kHighestVersionFileName, so a number is never given to
// two versions (a versioned URL may be cached forever). kIOError naming the
// file when the record is unreadable. REQUIRES: the layer's lock.
Result<int> next_version(const std::filesystem::path& layer_dir);

// Records `version` in kHighestVersionFileName (durably), before upkeep
// removes it as the newest version. REQUIRES: the layer's lock.
Status record_highest_version(const std::filesystem::path& layer_dir, int version);

// Subdirectories of `dir` that can be environments or layers: valid names
// only (so never '.staging' or a hidden directory being removed), sorted.
// kIOError naming `dir` when it cannot be listed.
Result<std::vector<std::string>> child_names(const std::filesystem::path& dir);

// Published version numbers under <layer_dir>/versions, ascending; empty if
// there are none. kIOError naming the directory if it cannot be read.
Result<std::vector<int>> scan_versions(const std::filesystem::path& layer_dir);

// The version `current` points at; nullopt when the layer has none (never
// published, or the link is not one Kiln wrote).
std::optional<int> current_version(const std::filesystem::path& layer_dir);

// Points <layer_dir>/current at versions/vNNNNNN: a new relative symlink
// renamed over the old one, so a reader resolves the old or the new version.
// Does not check that the version exists. REQUIRES: the caller holds the
// layer's lock (kLockFileName).
Status point_current(const std::filesystem::path& layer_dir, int version);

// fsync of a directory, making a rename or unlink inside it durable.
Status sync_dir(const std::filesystem::path& dir);

// One staging directory under <layer>/.staging, as its owner file tells.
struct StagingEntry {
  std::string id;
  // Whether a writer may still use it: a private directory of a live process
  // on this host; one of another host (its pid cannot be checked from here);
  // a shared one (a cluster step's tasks come and go, so no pid tells); one
  // without a readable owner file (whose it is cannot be told). Not live: a
  // private directory whose process on this host is gone.
  bool live = true;
  // Why, for messages: "process 1234 on this host is writing it", ...
  std::string why;
};

// The staging directories under <layer_dir>/.staging (an owner file without
// its directory counts too), sorted by id; empty when there is no .staging.
// kIOError naming the directory when it cannot be read.
Result<std::vector<StagingEntry>> scan_staging(const std::filesystem::path& layer_dir);

// Removes <layer_dir>/.staging/<id> and its owner file. The caller decides
// that no one writes it (scan_staging's `live`).
Status remove_staging(const std::filesystem::path& layer_dir, const std::string& id);

// Starts writing a version of the layer at `layer_dir`, creating it if needed.
// Empty `staging_id`: a fresh private staging directory, removed when the
// writer is destroyed without commit. Non-empty: a shared one, created or
// joined, that outlives each writer until one commits or aborts it (several
// processes write one version). First removes stale private staging
// directories whose writer process on this host is gone.
// REQUIRES: staging_id is empty or passes validate_name.
Result<std::unique_ptr<LayerWriter>> open_layer_writer(const std::filesystem::path& layer_dir,
                                                       const std::string& staging_id);

}  // namespace kiln::catalog::internal
