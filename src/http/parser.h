// RequestParser: HTTP/1.1 requests (RFC 9112) from the bytes of one
// connection, as they arrive. Pure: no sockets, no clock, so the server,
// the unit tests and the fuzzer (fuzz/http_request_fuzzer.cc) drive the
// same code.
//
// What it accepts is deliberately narrow, because every byte comes from a
// tenant: origin-form targets only, HTTP/1.0 and 1.1, single spaces in the
// request line, no obsolete line folding, one Host, bodies framed by
// Content-Length only. Transfer-Encoding is refused (chunked: 411, others:
// 501) instead of half-supported, which also closes the CL/TE smuggling
// door. Limits are checked before bytes are kept: a head longer than
// max_header_bytes is refused as soon as that many bytes are buffered, a
// Content-Length above max_body_bytes as soon as the head is read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/message.h"

namespace kiln::http {

struct ParserLimits {
  // Request line + header lines + the blank line. Over it: 431. 16 KiB
  // holds any request Kiln's clients send (a SigV4 request is ~1.5 KiB)
  // with room; nginx's default buffers are 4 x 8 KiB.
  size_t max_header_bytes = 16 * 1024;
  // The request-target alone. Over it: 414. Routes match paths with
  // std::regex, whose matcher recurses per character: the bound also
  // bounds that recursion.
  size_t max_target_bytes = 4 * 1024;
  size_t max_headers = 100;          // over it: 431
  int64_t max_body_bytes = 1 << 20;  // over it: 413 ([server] max_body_bytes)
};

// Why a request was refused: the HTTP status to answer and a message that
// names the culprit. The connection closes after the answer (framing may
// be lost).
struct ParseError {
  int status = 0;
  std::string message;
};

class RequestParser {
 public:
  enum class State {
    kNeedMore,      // feed more bytes
    kHeadComplete,  // the head is parsed and a body follows; returned once
    kComplete,      // request() is whole; take_request() for the next one
    kError,         // error() says why; final
  };

  explicit RequestParser(ParserLimits limits) : limits_(limits) {}

  // Buffers bytes read from the connection.
  void append(std::string_view bytes) { buf_.append(bytes); }
  // Parses as far as the buffered bytes allow.
  State advance();

  // Whether bytes of a request not yet complete are buffered (the header
  // or body deadline is running), or a complete one waits to be taken.
  bool started() const { return phase_ != Phase::kHead || !buf_.empty(); }
  // The request so far: method, target, headers after kHeadComplete; the
  // body too after kComplete.
  const Request& request() const { return req_; }
  // After kComplete: the request; parsing moves on to the buffered bytes
  // that follow it (a pipelined request).
  Request take_request();
  // The current request's Content-Length and whether the client asked for
  // "100 Continue" before sending it. Valid from kHeadComplete.
  int64_t content_length() const { return content_length_; }
  bool expects_continue() const { return expect_continue_; }
  // Whether the connection stays open after the current request (HTTP/1.1
  // without "Connection: close", HTTP/1.0 with "Connection: keep-alive").
  bool keep_alive() const { return keep_alive_; }
  const ParseError& error() const { return error_; }
  size_t buffered_bytes() const { return buf_.size(); }

 private:
  enum class Phase { kHead, kBody, kDone, kError };

  State fail(int status, std::string message);
  // Parses buf_[0, end) (the head); on success moves past it.
  State parse_head(size_t end);
  State parse_header_line(std::string_view line, size_t* count, bool* host_seen,
                          std::string* content_length, std::string* transfer_encoding,
                          std::string* expect, std::string* connection);

  const ParserLimits limits_;
  std::string buf_;
  size_t scanned_ = 0;  // where to resume looking for the end of the head
  Phase phase_ = Phase::kHead;
  Request req_;
  int64_t content_length_ = 0;
  bool expect_continue_ = false;
  bool keep_alive_ = true;
  ParseError error_;
};

// %XX-decodes `text` (invalid escapes stay as they are); with
// plus_as_space, '+' becomes ' ' (query strings).
std::string percent_decode(std::string_view text, bool plus_as_space);

}  // namespace kiln::http
