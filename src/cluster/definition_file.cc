#include "cluster/definition_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace kiln::cluster {
namespace {

// Closes the descriptor it holds.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Read size per call; the deadline is checked between reads.
constexpr size_t kChunk = 64 * 1024;

}  // namespace

Result<std::string> read_definition_file(const std::string& what, const std::string& path,
                                         const DefinitionFileLimits& limits, const Clock& clock) {
  const std::string who = what + ": definition file '" + path + "'";
  auto refuse = [&](const std::string& why) -> Result<std::string> {
    return invalid_argument(who + " " + why);
  };
  // O_NONBLOCK: opening a FIFO with no writer would otherwise block this
  // request thread; fstat then refuses it before any read.
  Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ELOOP) return refuse("is a symbolic link (it changed after it was checked)");
    return refuse("cannot be opened: " + std::generic_category().message(err));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    return refuse("cannot be read: " + std::generic_category().message(errno));
  }
  if (!S_ISREG(st.st_mode)) return refuse("is not a regular file");
  if (st.st_size > limits.max_bytes) {
    return refuse("is " + std::to_string(st.st_size) + " bytes, over the limit of " +
                  std::to_string(limits.max_bytes) + " (server.max_body_bytes)");
  }
  const int64_t deadline = clock.now_ms() + limits.deadline_ms;
  std::string text;
  text.reserve(static_cast<size_t>(st.st_size));
  char buf[kChunk];
  for (;;) {
    if (clock.now_ms() > deadline) {
      return refuse("was not read within " + std::to_string(limits.deadline_ms) + " ms");
    }
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return refuse("cannot be read: " + std::generic_category().message(errno));
    }
    if (n == 0) break;
    // A file that grows while it is read is held to the same limit.
    if (static_cast<int64_t>(text.size()) + n > limits.max_bytes) {
      return refuse("grew over the limit of " + std::to_string(limits.max_bytes) +
                    " bytes (server.max_body_bytes) while it was read");
    }
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

}  // namespace kiln::cluster
