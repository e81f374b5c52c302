#include "cli/api_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <regex>

#include <httplib.h>

#include "common/process.h"
#include "server/http_errors.h"

namespace kiln::cli {
namespace {

// Long enough for a slow first connection; loopback connects in microseconds.
constexpr int kConnectTimeoutSeconds = 10;

std::string from_env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// The API's error body is {"error": {"code": "...", "message": "..."}}; a
// proxy or a crashed handler may send anything else, so fall back to the
// status line and a short excerpt of the body.
Status status_from_response(int http_status, const std::string& body) {
  std::string message, code;
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("error") && j["error"].is_object()) {
    const auto& e = j["error"];
    if (e.contains("message") && e["message"].is_string()) message = e["message"];
    if (e.contains("code") && e["code"].is_string()) code = e["code"];
  }
  if (message.empty()) {
    message = "HTTP " + std::to_string(http_status);
    if (!body.empty()) message += ": " + body.substr(0, 200);
  }
  // Errors of the cluster core carry a native code (server/http_errors.h);
  // the door's own refusals (authentication, limits) go by HTTP status.
  switch (http_status) {
    case 401:
      return invalid_argument(message + " (give a token with --token or KILN_TOKEN)");
    case 403:
    case 409:
    case 413:
      return invalid_argument(message);
    default:
      break;
  }
  const StatusCode c = server::status_code_for_native(code);
  if (c != StatusCode::kInternal && c != StatusCode::kOk) return Status(c, message);
  if (http_status == 400) return invalid_argument(message);
  if (http_status == 404) return not_found(message);
  return internal_error(message);
}

Result<nlohmann::json> parse_body(const httplib::Result& res) {
  if (res->status < 200 || res->status > 299) return status_from_response(res->status, res->body);
  if (res->body.empty()) return nlohmann::json::object();
  auto j = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return internal_error("the server answered HTTP " + std::to_string(res->status) +
                          " with a body that is not JSON: " + res->body.substr(0, 200));
  }
  return j;
}

// How long the probe in connect_failure_reason waits: a refused or
// unreachable address answers at once; httplib has already waited its own
// connection timeout before.
constexpr int kProbeTimeoutMs = 2000;

// cpp-httplib says only "Connection" when it cannot connect (the socket's
// error stays inside it; errno then holds EINPROGRESS from its non-blocking
// connect). To name the reason, connect once more ourselves and report what
// that attempt got: "connection refused", "no route to host", a name that
// does not resolve... `server` is a URL as ApiClient::create normalises it.
std::string connect_failure_reason(const std::string& server) {
  static const std::regex kHostPort(R"(^(https?)://(\[([^\]]+)\]|[^:/]+)(:([0-9]+))?$)");
  std::smatch m;
  if (!std::regex_match(server, m, kHostPort)) return "cannot connect";
  const std::string host = m[3].matched ? m[3].str() : m[2].str();
  const std::string port = m[5].matched ? m[5].str() : (m[1] == "https" ? "443" : "80");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return "cannot resolve host '" + host + "': " + gai_strerror(rc);
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addrs(found, &freeaddrinfo);
  int err = 0;
  for (const addrinfo* a = addrs.get(); a; a = a->ai_next) {
    os::Fd fd(socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
    if (!fd.valid()) {
      err = errno;
      continue;
    }
    if (connect(fd.get(), a->ai_addr, a->ai_addrlen) == 0) return "the connection dropped";
    err = errno;
    if (err != EINPROGRESS) continue;
    pollfd p{fd.get(), POLLOUT, 0};
    const int ready = poll(&p, 1, kProbeTimeoutMs);
    if (ready == 0) {
      err = ETIMEDOUT;
      continue;
    }
    socklen_t len = sizeof err;
    if (ready < 0 || getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    // It connects now: the server came up or went away between the tries.
    if (err == 0) return "the connection failed, then succeeded on a second try";
  }
  std::string reason = std::strerror(err);
  if (!reason.empty()) reason[0] = static_cast<char>(std::tolower(reason[0]));
  return reason;
}

}  // namespace

void add_api_flags(CLI::App* cmd, ApiFlags* flags) {
  cmd->add_option(
      "--server", flags->server,
      std::string("kiln serve's URL (default: $KILN_SERVER, else ") + kDefaultServer + ")");
  cmd->add_option("--token", flags->token,
                  "API token; it selects the environment (default: $KILN_TOKEN)");
}

Result<std::unique_ptr<ApiClient>> ApiClient::create(const ApiFlags& flags) {
  std::string server = !flags.server.empty() ? flags.server : from_env("KILN_SERVER");
  if (server.empty()) server = kDefaultServer;
  std::string token = !flags.token.empty() ? flags.token : from_env("KILN_TOKEN");
  while (!server.empty() && server.back() == '/') server.pop_back();
  // httplib::Client takes a bare host too; a path would be silently dropped,
  // so refuse it rather than talk to the wrong place.
  static const std::regex kUrl(
      R"(^(https?://)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$)");
  if (!std::regex_match(server, kUrl)) {
    return invalid_argument("--server: '" + server +
                            "' is not a server URL (expected e.g. http://127.0.0.1:8470)");
  }
  if (server.find("://") == std::string::npos) server = "http://" + server;
  std::unique_ptr<ApiClient> c(new ApiClient(server, token));
  if (!c->http_->is_valid()) return invalid_argument("--server: cannot use '" + server + "'");
  return c;
}

ApiClient::ApiClient(std::string server, std::string token)
    : server_(std::move(server)),
      token_(std::move(token)),
      http_(std::make_unique<httplib::Client>(server_)) {
  http_->set_connection_timeout(kConnectTimeoutSeconds);
  // A request's headers and body may go out in two writes; with Nagle on,
  // the second waits for the server's delayed ACK (40 ms on Linux).
  http_->set_tcp_nodelay(true);
  if (!token_.empty()) http_->set_bearer_token_auth(token_);
}

ApiClient::~ApiClient() = default;

Status ApiClient::transport_error(const std::string& method, const std::string& path,
                                  int error) const {
  std::string reason;
  switch (static_cast<httplib::Error>(error)) {
    case httplib::Error::Connection:
      reason = connect_failure_reason(server_);
      break;
    case httplib::Error::ConnectionTimeout:
      reason = "no connection within " + std::to_string(kConnectTimeoutSeconds) + " s";
      break;
    case httplib::Error::Read:
      reason = "the connection closed or timed out before the answer";
      break;
    case httplib::Error::Write:
      reason = "the connection closed while sending the request";
      break;
    default:
      reason = httplib::to_string(static_cast<httplib::Error>(error));
      break;
  }
  return internal_error("cannot reach kiln serve at " + server_ + ": " + reason + " (" + method +
                        " " + path + ")");
}

Result<nlohmann::json> ApiClient::get(const std::string& path, int read_timeout_seconds) {
  http_->set_read_timeout(read_timeout_seconds);
  auto res = http_->Get(path);
  if (!res) return transport_error("GET", path, static_cast<int>(res.error()));
  return parse_body(res);
}

Result<nlohmann::json> ApiClient::post(const std::string& path, const nlohmann::json& body) {
  http_->set_read_timeout(60);
  auto res = http_->Post(path, body.dump(), "application/json");
  if (!res) return transport_error("POST", path, static_cast<int>(res.error()));
  return parse_body(res);
}

Result<nlohmann::json> ApiClient::put(const std::string& path, const nlohmann::json& body) {
  http_->set_read_timeout(60);
  auto res = http_->Put(path, body.dump(), "application/json");
  if (!res) return transport_error("PUT", path, static_cast<int>(res.error()));
  return parse_body(res);
}

Result<ApiClient::Text> ApiClient::get_text(const std::string& path) {
  http_->set_read_timeout(60);
  auto res = http_->Get(path);
  if (!res) return transport_error("GET", path, static_cast<int>(res.error()));
  if (res->status < 200 || res->status > 299) return status_from_response(res->status, res->body);
  Text t;
  t.body = std::move(res->body);
  const std::string offset = res->get_header_value("X-Kiln-Log-Offset");
  if (!offset.empty()) {
    char* end = nullptr;
    long long v = std::strtoll(offset.c_str(), &end, 10);
    if (end && *end == '\0' && v >= 0) t.next_offset = v;
  }
  return t;
}

std::string url_encode(const std::string& value) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

}  // namespace kiln::cli
