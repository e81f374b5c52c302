#include "server/open_beneath.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>

namespace kiln::server {
namespace {

// Cleared when the kernel (or a seccomp filter) refuses openat2 itself.
std::atomic<bool> have_openat2{true};

bool has_dot_component(std::string_view path) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view c = path.substr(start, end - start);
    if (c.empty() || c == "." || c == "..") return true;
    start = end + 1;
  }
  return false;
}

}  // namespace

int open_beneath_walk(int dir, std::string_view path, int flags) {
  if (path.empty() || path.front() == '/' || has_dot_component(path)) {
    errno = EXDEV;
    return -1;
  }
  int at = dir;
  int owned = -1;  // the intermediate directory we opened, if any
  size_t start = 0;
  for (;;) {
    const size_t end = path.find('/', start);
    const bool last = end == std::string_view::npos;
    const std::string name(path.substr(start, last ? std::string_view::npos : end - start));
    const int fd = ::openat(at, name.c_str(),
                            last ? (flags | O_NOFOLLOW | O_CLOEXEC)
                                 : (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    const int saved = errno;
    if (owned >= 0) ::close(owned);
    errno = saved;
    if (fd < 0 || last) return fd;
    owned = at = fd;
    start = end + 1;
  }
}

int open_beneath(int dir, std::string_view path, int flags) {
  if (path.empty() || path.front() == '/' || has_dot_component(path)) {
    errno = EXDEV;
    return -1;
  }
  if (have_openat2.load(std::memory_order_relaxed)) {
    open_how how{};
    how.flags = static_cast<uint64_t>(flags | O_NOFOLLOW | O_CLOEXEC);
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    const std::string p(path);
    for (int attempt = 0; attempt < 3; ++attempt) {
      const long fd = ::syscall(SYS_openat2, dir, p.c_str(), &how, sizeof how);
      if (fd >= 0) return static_cast<int>(fd);
      // EAGAIN: a rename raced the lookup (the walk below cannot be fooled).
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno != ENOSYS && errno != EPERM && errno != E2BIG) return -1;
      // ENOSYS (kernel before 5.6) or EPERM (a seccomp filter; these
      // read-only opens get EPERM from nothing else): walk from now on.
      have_openat2.store(false, std::memory_order_relaxed);
      break;
    }
  }
  return open_beneath_walk(dir, path, flags);
}

}  // namespace kiln::server
