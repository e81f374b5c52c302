// A small client for kiln serve's native REST API (docs/cluster.md), shared by
// `kiln step` and `kiln cluster`. API errors come back as Statuses whose codes
// give the CLI's exit codes (exit_codes.h), carrying the server's message.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/status.h"

namespace httplib {
class Client;
}

namespace kiln::cli {

// Where `kiln serve` listens unless --server or KILN_SERVER says otherwise
// (examples/kiln.toml's default listen address).
inline constexpr const char* kDefaultServer = "http://127.0.0.1:8470";

// --server and --token as given; empty: not given.
struct ApiFlags {
  std::string server;
  std::string token;
};

// Adds --server and --token to `cmd`. Called on each leaf subcommand so the
// flags may follow it (`kiln step list --server URL`).
void add_api_flags(CLI::App* cmd, ApiFlags* flags);

// One API endpoint and token. Not thread-safe: one per thread.
class ApiClient {
 public:
  // The server comes from flags.server, else $KILN_SERVER, else
  // kDefaultServer; the token from flags.token, else $KILN_TOKEN (none: the
  // server answers 401, whose message says how to give one).
  // invalid_argument unless the server is [http[s]://]host[:port].
  static Result<std::unique_ptr<ApiClient>> create(const ApiFlags& flags);
  ~ApiClient();

  // JSON requests. A 2xx response's parsed body, else the API error as a
  // Status: 400/401/403/409/413 -> kInvalidArgument (exit 2), 404 -> kNotFound
  // (exit 6), anything else and transport failures -> kInternal (exit 1).
  // `read_timeout_seconds` bounds the wait for the response (long polls
  // pass more than their own timeout).
  Result<nlohmann::json> get(const std::string& path, int read_timeout_seconds = 60);
  Result<nlohmann::json> post(const std::string& path, const nlohmann::json& body);
  Result<nlohmann::json> put(const std::string& path, const nlohmann::json& body);

  // A text/plain resource (step logs): the body and the X-Kiln-Log-Offset
  // header (the offset to ask for next; -1 when the server sent none).
  struct Text {
    std::string body;
    int64_t next_offset = -1;
  };
  Result<Text> get_text(const std::string& path);

  // The base URL requests go to, for messages.
  const std::string& server() const { return server_; }

 private:
  ApiClient(std::string server, std::string token);
  Status transport_error(const std::string& method, const std::string& path, int error) const;

  std::string server_;
  std::string token_;
  std::unique_ptr<httplib::Client> http_;
};

// Percent-encodes `value` for a URL path segment or query value.
std::string url_encode(const std::string& value);

}  // namespace kiln::cli
