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

// The current UTC time as ISO 8601 with a Z suffix: "2024-05-01T12:00:00Z".
std::string utc_now_iso8601();

// --- The layer directory (layer_writer.cc) ---

// Published version numbers under <layer_dir>/versions, ascending; empty if
// there are none. kIOError naming the directory if it cannot be read.
Result<std::vector<int>> scan_versions(const std::filesystem::path& layer_dir);

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
