// The one place where failures become process exit codes (README lists them).
#pragma once

#include "common/status.h"

namespace kiln::cli {

enum ExitCode {
  kExitOk = 0,
  kExitInternal = 1,
  kExitUsage = 2,     // bad flags or an invalid definition
  kExitInput = 3,     // a source is missing, unreadable, corrupt or not georeferenced
  kExitEmpty = 4,     // nothing to ingest
  kExitCatalog = 5,   // the catalog cannot be written, or a name escapes it
  kExitNotFound = 6,  // a layer/version asked for does not exist
  // `kiln catalog rm|rollback|prune`: the layer is busy, an ingest of it is
  // running (the catalog's kUnavailable; catalog_command.cc).
  kExitConflict = 7,
  // `kiln step wait` gave up at --timeout with the step still going; the
  // code timeout(1) uses, so scripts can tell "not yet" from "failed".
  kExitTimedOut = 124,
  kExitInterrupted = 130,
};

inline int exit_code_for(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return kExitOk;
    case StatusCode::kInvalidArgument:
      return kExitUsage;
    case StatusCode::kInputError:
      return kExitInput;
    case StatusCode::kEmpty:
      return kExitEmpty;
    case StatusCode::kIOError:
      return kExitCatalog;
    case StatusCode::kNotFound:
      return kExitNotFound;
    case StatusCode::kCancelled:
      return kExitInterrupted;
    case StatusCode::kInternal:
    case StatusCode::kUnavailable:
    case StatusCode::kResourceExhausted:
      return kExitInternal;
  }
  return kExitInternal;
}

// Prints "kiln: error: <message>" on stderr and returns the exit code.
int report_error(const Status& s);

}  // namespace kiln::cli
