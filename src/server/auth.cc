#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace kiln::server {

std::string to_hex(const unsigned char* data, size_t n) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(hex[data[i] >> 4]);
    out.push_back(hex[data[i] & 15]);
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return to_hex(md, len);
}

std::string new_token() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return {};
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out.push_back(hex[b >> 4]);
    out.push_back(hex[b & 15]);
  }
  return out;
}

TokenTable::TokenTable(const ServerConfig& config) {
  for (const auto& e : config.environments)
    for (const auto& h : e.token_sha256) by_hash_[h] = e.name;
  operator_hashes_.insert(config.operator_token_sha256.begin(), config.operator_token_sha256.end());
  metrics_hashes_ = config.metrics_token_sha256;
}

bool TokenTable::may_read_metrics(std::string_view token) const {
  if (token.empty()) return false;
  const std::string digest = sha256_hex(token);
  bool match = false;
  for (const std::string& h : metrics_hashes_) {
    // Every hash is looked at, and each comparison takes the same time
    // whatever the bytes, so the answer's timing tells nothing.
    match |= h.size() == digest.size() && CRYPTO_memcmp(h.data(), digest.data(), h.size()) == 0;
  }
  return match;
}

bool TokenTable::is_operator(std::string_view token) const {
  return !token.empty() && operator_hashes_.count(sha256_hex(token)) > 0;
}

std::optional<std::string> TokenTable::environment_for(std::string_view token) const {
  if (token.empty()) return std::nullopt;
  auto it = by_hash_.find(sha256_hex(token));
  if (it == by_hash_.end()) return std::nullopt;
  return it->second;
}

std::string bearer_token(std::string_view h) {
  constexpr std::string_view kPrefix = "Bearer ";
  if (h.size() <= kPrefix.size() || h.substr(0, kPrefix.size()) != kPrefix) return {};
  h.remove_prefix(kPrefix.size());
  while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
  while (!h.empty() && (h.back() == ' ' || h.back() == '\r')) h.remove_suffix(1);
  return std::string(h);
}

}  // namespace kiln::server
