// The job store's schema and its migrations. Internal to src/store.
#pragma once

#include "common/status.h"
#include "store/sqlite.h"

namespace kiln::store::internal {

// The schema version this build writes (PRAGMA user_version).
int latest_schema_version();

// Brings the database up to latest_schema_version(), one transaction per
// migration, so a crash part way leaves a database at some whole version.
// Safe when several processes open the same file at once: each migration
// re-reads the version under the write lock. A database newer than this
// build is refused (kIOError naming both versions) rather than misread.
Status migrate(Database& db);

}  // namespace kiln::store::internal
