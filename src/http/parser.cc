#include "http/parser.h"

#include <algorithm>
#include <cctype>

namespace kiln::http {
namespace {

// RFC 9110 5.6.2: tchar.
bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return is_tchar(static_cast<unsigned char>(c)); });
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A printable excerpt of tenant bytes for an error message.
std::string excerpt(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? c : '?';
  }
  if (s.size() > 64) out += "...";
  return out;
}

// Comma-separated list items, trimmed, empty ones dropped (RFC 9110 5.6.1).
template <typename F>
void for_each_item(std::string_view list, F f) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view item = trim_ows(list.substr(0, comma));
    if (!item.empty()) f(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

void parse_query(std::string_view query, Params* out) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    if (!item.empty()) {
      const size_t eq = item.find('=');
      const std::string_view key = item.substr(0, eq);
      const std::string_view value =
          eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
      out->emplace(percent_decode(key, true), percent_decode(value, true));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
}

}  // namespace

std::string percent_decode(std::string_view text, bool plus_as_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      const int hi = hex_value(text[i + 1]), lo = hex_value(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += (plus_as_space && c == '+') ? ' ' : c;
  }
  return out;
}

RequestParser::State RequestParser::fail(int status, std::string message) {
  phase_ = Phase::kError;
  error_ = {status, std::move(message)};
  buf_.clear();
  return State::kError;
}

RequestParser::State RequestParser::advance() {
  switch (phase_) {
    case Phase::kError:
      return State::kError;
    case Phase::kDone:
      return State::kComplete;
    case Phase::kBody: {
      const auto need = static_cast<size_t>(content_length_);
      if (buf_.size() < need) return State::kNeedMore;
      req_.body.assign(buf_, 0, need);
      buf_.erase(0, need);
      phase_ = Phase::kDone;
      return State::kComplete;
    }
    case Phase::kHead:
      break;
  }
  // RFC 9112 2.2: empty lines before a request line are ignored.
  if (scanned_ == 0) {
    size_t skip = 0;
    while (skip < buf_.size() && (buf_[skip] == '\r' || buf_[skip] == '\n')) ++skip;
    buf_.erase(0, skip);
  }
  // The head ends at the first empty line: "\n\n" or "\n\r\n".
  size_t end = std::string::npos;
  size_t pos = scanned_;
  while ((pos = buf_.find('\n', pos)) != std::string::npos) {
    if (pos + 1 >= buf_.size()) break;
    if (buf_[pos + 1] == '\n') {
      end = pos + 2;
      break;
    }
    if (buf_[pos + 1] == '\r') {
      if (pos + 2 >= buf_.size()) break;
      if (buf_[pos + 2] == '\n') {
        end = pos + 3;
        break;
      }
    }
    ++pos;
  }
  if (end == std::string::npos) {
    // Resume at the last newline seen: the blank line may start there.
    scanned_ = pos == std::string::npos ? (buf_.empty() ? 0 : buf_.size() - 1) : pos;
    if (buf_.find('\n') == std::string::npos && buf_.size() > limits_.max_target_bytes + 64) {
      return fail(414, "request line longer than " + std::to_string(limits_.max_target_bytes) +
                           " bytes of target");
    }
    if (buf_.size() > limits_.max_header_bytes) {
      return fail(431, "request head (request line and headers) over " +
                           std::to_string(limits_.max_header_bytes) + " bytes");
    }
    return State::kNeedMore;
  }
  if (end > limits_.max_header_bytes) {
    return fail(431, "request head (request line and headers) over " +
                         std::to_string(limits_.max_header_bytes) + " bytes");
  }
  return parse_head(end);
}

RequestParser::State RequestParser::parse_head(size_t end) {
  std::string_view head(buf_.data(), end);
  // Lines end in LF, optionally preceded by CR (RFC 9112 2.2); a CR
  // anywhere else is refused.
  auto next_line = [&head](std::string_view* line) {
    const size_t nl = head.find('\n');
    *line = head.substr(0, nl);
    head.remove_prefix(nl + 1);
    if (!line->empty() && line->back() == '\r') line->remove_suffix(1);
    return line->find('\r') == std::string_view::npos;
  };

  req_ = Request();
  std::string_view line;
  if (!next_line(&line)) return fail(400, "bare CR in the request line");
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return fail(400, "request line must be 'METHOD /target HTTP/1.1'; got '" + excerpt(line) + "'");
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method)) return fail(400, "method '" + excerpt(method) + "' is not a token");
  if (target.size() > limits_.max_target_bytes) {
    return fail(
        414, "request target longer than " + std::to_string(limits_.max_target_bytes) + " bytes");
  }
  if (target.empty() || target.front() != '/') {
    return fail(400,
                "request target must be a path starting with '/'; got '" + excerpt(target) + "'");
  }
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return fail(400, "request target holds a byte that must be percent-encoded: '" +
                           excerpt(target) + "'");
    }
  }
  if (version == "HTTP/1.1") {
    keep_alive_ = true;
  } else if (version == "HTTP/1.0") {
    keep_alive_ = false;
  } else if (version.size() == 8 && version.substr(0, 5) == "HTTP/" && version[6] == '.' &&
             std::isdigit(static_cast<unsigned char>(version[5])) &&
             std::isdigit(static_cast<unsigned char>(version[7]))) {
    return fail(505, "HTTP version '" + std::string(version) + "' not supported (1.0 and 1.1 are)");
  } else {
    return fail(400, "malformed HTTP version '" + excerpt(version) + "'");
  }
  req_.method = std::string(method);
  req_.target = std::string(target);
  req_.version = std::string(version);
  const size_t q = target.find('?');
  req_.path = percent_decode(target.substr(0, q), false);
  if (q != std::string_view::npos) parse_query(target.substr(q + 1), &req_.params);

  size_t count = 0;
  bool host_seen = false;
  std::string content_length, transfer_encoding, expect, connection;
  for (;;) {
    if (!next_line(&line)) return fail(400, "bare CR in a header line");
    if (line.empty()) break;  // the blank line that ends the head
    const State s = parse_header_line(line, &count, &host_seen, &content_length, &transfer_encoding,
                                      &expect, &connection);
    if (s == State::kError) return s;
  }
  if (req_.version == "HTTP/1.1" && !host_seen) {
    return fail(400, "HTTP/1.1 request without a Host header");
  }
  if (!transfer_encoding.empty()) {
    std::string last;
    for_each_item(transfer_encoding, [&last](std::string_view item) { last = lower(item); });
    if (last == "chunked") {
      return fail(411,
                  "chunked request bodies are not supported: send the body with Content-Length");
    }
    return fail(501, "Transfer-Encoding '" + excerpt(transfer_encoding) +
                         "' is not supported: send the body with Content-Length");
  }
  content_length_ = 0;
  if (!content_length.empty()) {
    // Repeated or listed values must agree (RFC 9110 8.6).
    std::string value;
    bool bad = false;
    for_each_item(content_length, [&](std::string_view item) {
      if (!value.empty() && item != value) bad = true;
      value = std::string(item);
    });
    if (bad || value.empty() || value.size() > 18 ||
        !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return fail(
          400, "Content-Length '" + excerpt(content_length) + "' is not one non-negative integer");
    }
    content_length_ = std::stoll(value);
    if (content_length_ > limits_.max_body_bytes) {
      return fail(413, "request body of " + value + " bytes is over the limit of " +
                           std::to_string(limits_.max_body_bytes) + " bytes");
    }
  }
  expect_continue_ = false;
  if (!expect.empty()) {
    if (lower(trim_ows(expect)) != "100-continue") {
      return fail(417, "Expect '" + excerpt(expect) + "' not supported (only 100-continue is)");
    }
    expect_continue_ = content_length_ > 0;
  }
  for_each_item(connection, [this](std::string_view item) {
    const std::string token = lower(item);
    if (token == "close") keep_alive_ = false;
    if (token == "keep-alive" && req_.version == "HTTP/1.0") keep_alive_ = true;
  });

  buf_.erase(0, end);
  scanned_ = 0;
  if (content_length_ == 0) {
    phase_ = Phase::kDone;
    return State::kComplete;
  }
  phase_ = Phase::kBody;
  return State::kHeadComplete;
}

RequestParser::State RequestParser::parse_header_line(std::string_view line, size_t* count,
                                                      bool* host_seen, std::string* content_length,
                                                      std::string* transfer_encoding,
                                                      std::string* expect,
                                                      std::string* connection) {
  if (line.front() == ' ' || line.front() == '\t') {
    return fail(400, "obsolete line folding in the headers is not accepted");
  }
  if (++*count > limits_.max_headers) {
    return fail(431, "more than " + std::to_string(limits_.max_headers) + " header fields");
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    return fail(400, "header line without ':': '" + excerpt(line) + "'");
  }
  const std::string_view name = line.substr(0, colon);
  if (!is_token(name)) {
    return fail(400, "header name '" + excerpt(name) + "' is not a token");
  }
  const std::string_view value = trim_ows(line.substr(colon + 1));
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) {
      return fail(400, "header '" + std::string(name) + "' holds a control character");
    }
  }
  const std::string key = lower(name);
  auto append_list = [value](std::string* list) {
    if (!list->empty()) *list += ",";
    *list += value;
  };
  if (value.empty() && (key == "content-length" || key == "transfer-encoding" || key == "expect")) {
    return fail(400, "header '" + std::string(name) + "' is empty");
  }
  if (key == "host") {
    if (*host_seen) return fail(400, "more than one Host header");
    *host_seen = true;
  } else if (key == "content-length") {
    // An empty value still counts as present (and is refused).
    append_list(content_length);
  } else if (key == "transfer-encoding") {
    append_list(transfer_encoding);
  } else if (key == "expect") {
    append_list(expect);
  } else if (key == "connection") {
    append_list(connection);
  }
  req_.headers.emplace(std::string(name), std::string(value));
  return State::kNeedMore;
}

Request RequestParser::take_request() {
  Request out = std::move(req_);
  req_ = Request();
  phase_ = Phase::kHead;
  scanned_ = 0;
  content_length_ = 0;
  expect_continue_ = false;
  return out;
}

}  // namespace kiln::http
