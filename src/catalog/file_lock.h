// FileLock: an exclusive flock(2) on a lock file, held for the owner's
// lifetime. Internal to src/catalog.
#pragma once

#include <string>

#include "common/process.h"
#include "common/status.h"

namespace kiln::catalog::internal {

// Holds an exclusive flock(2) on a file from acquire() until destruction.
// flock locks belong to the open file description, so two FileLocks on one
// path exclude each other even inside one process (two threads committing).
class FileLock {
 public:
  // Opens (creating if needed) `path` and blocks until the lock is held.
  // Errors are kIOError naming the path.
  static Result<FileLock> acquire(const std::string& path);

  FileLock(FileLock&&) = default;
  FileLock& operator=(FileLock&&) = default;
  // Closing the descriptor releases the lock.
  ~FileLock() = default;

 private:
  explicit FileLock(os::Fd fd) : fd_(std::move(fd)) {}
  os::Fd fd_;
};

}  // namespace kiln::catalog::internal
