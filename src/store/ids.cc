// random_id: uniform characters from getrandom(2) by rejection sampling.
#include "store/ids.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

namespace kiln::store::internal {
namespace {

constexpr char kAlphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
constexpr unsigned kAlphabetSize = sizeof(kAlphabet) - 1;  // 36
// Bytes at or above 252 = 7 * 36 are redrawn: taking them modulo 36 would
// make the first 4 characters more likely than the rest.
constexpr unsigned kAcceptBelow = 256 / kAlphabetSize * kAlphabetSize;

Status fill_random(unsigned char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(buf + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return internal_error(std::string("getrandom failed: ") + std::strerror(errno));
    }
    got += static_cast<size_t>(r);
  }
  return Status::ok();
}

}  // namespace

Result<std::string> random_id(const std::string& prefix, int length) {
  std::string id = prefix;
  id.reserve(prefix.size() + static_cast<size_t>(length));
  unsigned char buf[32];
  while (id.size() < prefix.size() + static_cast<size_t>(length)) {
    KILN_RETURN_IF_ERROR(fill_random(buf, sizeof(buf)));
    for (unsigned char b : buf) {
      if (b >= kAcceptBelow) continue;
      id.push_back(kAlphabet[b % kAlphabetSize]);
      if (id.size() == prefix.size() + static_cast<size_t>(length)) break;
    }
  }
  return id;
}

}  // namespace kiln::store::internal
