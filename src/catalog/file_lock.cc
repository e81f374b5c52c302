#include "catalog/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace kiln::catalog::internal {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

int UniqueFd::release() { return std::exchange(fd_, -1); }

Status UniqueFd::close(const std::string& path) {
  if (fd_ < 0) return Status::ok();
  // Linux releases the descriptor even when close() fails, so no retry.
  if (::close(release()) != 0) {
    return io_error("cannot close '" + path + "': " + std::strerror(errno));
  }
  return Status::ok();
}

Result<FileLock> FileLock::acquire(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) {
    return io_error("cannot open lock file '" + path + "': " + std::strerror(errno));
  }
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) {
      return io_error("cannot lock '" + path + "': " + std::strerror(errno));
    }
  }
  return FileLock(std::move(fd));
}

}  // namespace kiln::catalog::internal
