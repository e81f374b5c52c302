// Reading a definition file a step names (`ingest_uri`, EMR `--definition`)
// in the server process, carefully: the path comes from a tenant. The
// caller has already placed it under the environment's source roots
// (config::check_source); this adds what a check on the name cannot.
#pragma once

#include <cstdint>
#include <string>

#include "common/clock.h"
#include "common/status.h"

namespace kiln::cluster {

struct DefinitionFileLimits {
  int64_t max_bytes = 1 << 20;  // the server's max_body_bytes: a file is a body
  int64_t deadline_ms = 5000;   // from the first read, on the injected clock
};

// The bytes of the regular file at `path` (a real path, from check_source).
// Opened with O_NOFOLLOW|O_NONBLOCK|O_NOCTTY and checked with fstat before a
// byte is read, so a FIFO, a device or a socket is refused without
// blocking or being read, and a symlink swapped in after the check is not
// followed. More than limits.max_bytes, or reading past the deadline
// (checked between 64 KiB chunks), is refused. Errors (kInvalidArgument)
// name `what` and the path and never hold any of the file's bytes.
// Thread-safe.
Result<std::string> read_definition_file(const std::string& what, const std::string& path,
                                         const DefinitionFileLimits& limits, const Clock& clock);

}  // namespace kiln::cluster
