#include "server/session.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>

#include "server/auth.h"

namespace kiln::server {
namespace {

constexpr char kVersion[] = "s1";
constexpr char kSep = '~';  // never in an environment name (catalog::validate_name)
constexpr size_t kMacBytes = 16;
constexpr size_t kMaxCookieBytes = 512;

}  // namespace

std::string Sessions::mac_hex(std::string_view environment, int64_t expires_s) const {
  const std::string e = std::to_string(expires_s);
  const std::string data =
      "kiln-session\n" + std::to_string(environment.size()) + ":" + std::string(environment) + e;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return to_hex(mac, kMacBytes);
}

std::string Sessions::seal(const std::string& environment, int64_t expires_s) const {
  return std::string(kVersion) + kSep + std::to_string(expires_s) + kSep + environment + kSep +
         mac_hex(environment, expires_s);
}

std::optional<std::string> Sessions::open(std::string_view value, int64_t now_s) const {
  if (value.size() > kMaxCookieBytes) return std::nullopt;
  const std::string_view version = kVersion;
  if (value.substr(0, version.size()) != version || value.size() <= version.size() ||
      value[version.size()] != kSep) {
    return std::nullopt;
  }
  std::string_view rest = value.substr(version.size() + 1);
  const size_t a = rest.find(kSep);
  if (a == std::string_view::npos) return std::nullopt;
  const size_t b = rest.find(kSep, a + 1);
  if (b == std::string_view::npos || rest.find(kSep, b + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  const std::string_view expires = rest.substr(0, a);
  const std::string_view env = rest.substr(a + 1, b - a - 1);
  const std::string_view given = rest.substr(b + 1);
  int64_t expires_s = 0;
  const auto [end, ec] =
      std::from_chars(expires.data(), expires.data() + expires.size(), expires_s);
  if (ec != std::errc() || end != expires.data() + expires.size() || expires.empty() ||
      expires[0] == '-' || env.empty()) {
    return std::nullopt;
  }
  const std::string expected = mac_hex(env, expires_s);
  if (given.size() != expected.size() ||
      CRYPTO_memcmp(given.data(), expected.data(), expected.size()) != 0) {
    return std::nullopt;
  }
  if (now_s >= expires_s) return std::nullopt;
  return std::string(env);
}

std::string cookie_value(std::string_view header, std::string_view name) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(';', pos);
    if (end == std::string_view::npos) end = header.size();
    std::string_view pair = header.substr(pos, end - pos);
    while (!pair.empty() && (pair.front() == ' ' || pair.front() == '\t')) pair.remove_prefix(1);
    while (!pair.empty() && (pair.back() == ' ' || pair.back() == '\t')) pair.remove_suffix(1);
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      std::string_view v = pair.substr(eq + 1);
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      return std::string(v);
    }
    pos = end + 1;
  }
  return "";
}

std::string session_set_cookie(const std::string& value, int64_t max_age_s) {
  return std::string(kSessionCookie) + "=" + value + "; Max-Age=" + std::to_string(max_age_s) +
         "; Path=/; HttpOnly; SameSite=Strict";
}

}  // namespace kiln::server
