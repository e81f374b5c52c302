#include "server/list_marker.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/process.h"
#include "server/auth.h"

namespace kiln::server {
namespace {

constexpr char kPrefix[] = "k1.";
// 128 bits of the HMAC: forging one is as hard as guessing the key.
constexpr size_t kMacBytes = 16;
// Longer cursors than any store hands out are refused unread.
constexpr size_t kMaxCursorBytes = 256;

bool from_hex(const std::string& hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    int v = 0;
    for (size_t j = i; j < i + 2; ++j) {
      const char c = hex[j];
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return false;
      v = v * 16 + d;
    }
    out->push_back(static_cast<char>(v));
  }
  return true;
}

std::string random_key() {
  unsigned char key[32];
  // Without randomness no marker could be trusted: a server that cannot
  // draw 32 bytes at start has a broken kernel, not a bad request.
  if (RAND_bytes(key, sizeof key) != 1) std::abort();
  return std::string(reinterpret_cast<const char*>(key), sizeof key);
}

Status invalid_marker() {
  return invalid_argument(
      "invalid marker: not one this server handed to this environment (list again from the "
      "start)");
}

}  // namespace

ListMarkers::ListMarkers() : key_(random_key()) {}

Result<std::string> ListMarkers::load_or_create_key(const std::string& path,
                                                    const std::string& what) {
  for (int round = 0; round < 2; ++round) {
    os::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd.get() >= 0) {
      char buf[80];
      const ssize_t n = ::read(fd.get(), buf, sizeof buf);
      std::string hex(buf, n > 0 ? static_cast<size_t>(n) : 0);
      while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r')) hex.pop_back();
      std::string key;
      if (hex.size() != 64 || !from_hex(hex, &key)) {
        return io_error(what + " " + path +
                        ": must hold 64 hex digits; remove it to draw a new key (markers "
                        "handed out before then become invalid)");
      }
      return key;
    }
    if (errno != ENOENT) {
      return io_error("cannot read the " + what + " " + path + ": " + std::strerror(errno));
    }
    const std::string key = random_key();
    os::Fd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (out.get() < 0) {
      if (errno == EEXIST) continue;  // another process wrote it first: read that one
      return io_error("cannot create the " + what + " " + path + ": " + std::strerror(errno));
    }
    const std::string line =
        to_hex(reinterpret_cast<const unsigned char*>(key.data()), key.size()) + "\n";
    if (::write(out.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
        ::fsync(out.get()) != 0) {
      const std::string why = std::strerror(errno);
      ::unlink(path.c_str());
      return io_error("cannot write the " + what + " " + path + ": " + why);
    }
    return key;
  }
  return io_error(what + " " + path + ": appeared and vanished while read");
}

std::string ListMarkers::mac_hex(const std::string& environment, const std::string& cursor) const {
  // Lengths first, so ("ab", "c") and ("a", "bc") sign different bytes.
  const std::string data = "kiln-list-marker\n" + std::to_string(environment.size()) + ":" +
                           environment + std::to_string(cursor.size()) + ":" + cursor;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return to_hex(mac, kMacBytes);
}

std::string ListMarkers::seal(const std::string& environment, const std::string& cursor) const {
  if (cursor.empty()) return "";
  return kPrefix + to_hex(reinterpret_cast<const unsigned char*>(cursor.data()), cursor.size()) +
         "." + mac_hex(environment, cursor);
}

Result<std::string> ListMarkers::open(const std::string& environment,
                                      const std::string& marker) const {
  const std::string prefix = kPrefix;
  if (marker.size() > prefix.size() + 2 * kMaxCursorBytes + 1 + 2 * kMacBytes ||
      marker.compare(0, prefix.size(), prefix) != 0) {
    return invalid_marker();
  }
  const size_t dot = marker.rfind('.');
  if (dot == std::string::npos || dot < prefix.size()) return invalid_marker();
  std::string cursor;
  if (!from_hex(marker.substr(prefix.size(), dot - prefix.size()), &cursor) || cursor.empty()) {
    return invalid_marker();
  }
  const std::string given = marker.substr(dot + 1);
  const std::string expected = mac_hex(environment, cursor);
  if (given.size() != expected.size() ||
      CRYPTO_memcmp(given.data(), expected.data(), expected.size()) != 0) {
    return invalid_marker();
  }
  return cursor;
}

}  // namespace kiln::server
