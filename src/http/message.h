// Request and Response: what a handler of kiln::http::Server reads and
// writes. The names and members mirror the subset of cpp-httplib's
// Request/Response that Kiln's doors used (method, path, headers,
// get_header_value, get_param_value, matches, set_content...), so a door
// moved from httplib changes types, not logic.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kiln::http {

class Deferred;
struct DeferredTarget;

// ASCII case-insensitive ordering: header names compare without case.
struct CaseInsensitiveLess {
  bool operator()(const std::string& a, const std::string& b) const;
};

using Headers = std::multimap<std::string, std::string, CaseInsensitiveLess>;
using Params = std::multimap<std::string, std::string>;

struct Request {
  std::string method;   // as sent ("GET"); methods are case-sensitive
  std::string target;   // the request-target as sent: percent-encoded, with the query
  std::string path;     // target up to '?', percent-decoded
  std::string version;  // "HTTP/1.1" or "HTTP/1.0"
  Headers headers;
  Params params;  // the query, percent-decoded ('+' is a space)
  std::string body;
  // The route's regex match on `path`: [0] the whole path, [1..] its groups.
  std::vector<std::string> matches;
  std::string remote_addr;  // the peer's address ("127.0.0.1")
  int remote_port = 0;
  // Unique per request within the process; error bodies and the log carry it.
  std::string request_id;

  bool has_header(const std::string& key) const;
  // The id-th value of header `key` (case-insensitive), or `def`.
  std::string get_header_value(const std::string& key, const char* def = "", size_t id = 0) const;
  bool has_param(const std::string& key) const;
  // The id-th value of query parameter `key`, or "".
  std::string get_param_value(const std::string& key, size_t id = 0) const;
};

struct Response {
  Response() = default;
  Response(Response&&) = default;
  Response& operator=(Response&&) = default;

  // -1 until a handler sets it; the server sends 200 then.
  int status = -1;
  Headers headers;
  std::string body;

  bool has_header(const std::string& key) const;
  std::string get_header_value(const std::string& key, const char* def = "") const;
  // Replaces any value of `key`. Names or values with CR, LF or NUL are
  // dropped (they would split the response).
  void set_header(const std::string& key, const std::string& value);
  void set_content(const std::string& body_text, const std::string& content_type);
  void set_content(std::string&& body_text, const std::string& content_type);

  // Suspends the request: the handler returns without an answer, no thread
  // waits, and the connection stays open until someone calls complete() on
  // the returned object, from any thread. What the handler wrote into this
  // Response is discarded. Call at most once, from the handler.
  std::shared_ptr<Deferred> suspend();
  bool suspended() const { return deferred_ != nullptr; }

 private:
  friend class Server;
  std::shared_ptr<DeferredTarget> target_;  // set by the server before the handler runs
  std::shared_ptr<Deferred> deferred_;
};

}  // namespace kiln::http
