// API tokens: clients present a bearer token; the configuration holds only
// its SHA-256, so a leaked config file leaks no credential.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "server/core_names.h"

namespace kiln::server {

// Lower-case hex of `n` bytes.
std::string to_hex(const unsigned char* data, size_t n);
// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

// A fresh random token (32 bytes of the OS CSPRNG, hex).
std::string new_token();

class TokenTable {
 public:
  explicit TokenTable(const ServerConfig& config);
  // The environment a bearer token opens, if any.
  std::optional<std::string> environment_for(std::string_view token) const;
  // Whether the token is an operator's ([operator] token_sha256):
  // cluster operations such as interrupting a node, no environment's data.
  bool is_operator(std::string_view token) const;
  // Whether /metrics needs a token ([server] metrics_token_sha256 is set).
  bool metrics_need_token() const { return !metrics_hashes_.empty(); }
  // Whether `token` may read /metrics: its SHA-256 matches a configured
  // one, compared in constant time over every configured hash.
  bool may_read_metrics(std::string_view token) const;

 private:
  std::map<std::string, std::string> by_hash_;  // sha256 hex -> environment
  std::set<std::string> operator_hashes_;
  std::vector<std::string> metrics_hashes_;
};

// The token of an "Authorization: Bearer <token>" header value; empty when
// the header is missing or not a bearer token.
std::string bearer_token(std::string_view authorization);

}  // namespace kiln::server
