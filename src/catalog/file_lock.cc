#include "catalog/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace kiln::catalog::internal {

Result<FileLock> FileLock::acquire(const std::string& path) {
  os::Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
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
