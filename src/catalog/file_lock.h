// RAII owners of POSIX file descriptors for the catalog: UniqueFd closes a
// descriptor, FileLock holds an exclusive flock(2) on a lock file. Internal to
// src/catalog.
#pragma once

#include <string>

#include "common/status.h"

namespace kiln::catalog::internal {

// Owns one file descriptor; closes it when destroyed. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership; the caller closes the returned descriptor.
  int release();
  // Closes now and reports close(2)'s error (a write error may surface only
  // here, e.g. on NFS), naming `path`. Idempotent.
  Status close(const std::string& path);

 private:
  int fd_ = -1;
};

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
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace kiln::catalog::internal
