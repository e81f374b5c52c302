// Fuzz target for the HTTP/1.1 request parser of Kiln's front door
// (kiln::http::RequestParser, src/http/parser.h): every byte a client sends
// reaches it before anything else.
//
// Refused requests are the expected outcome for most inputs and never a
// finding. What is a finding: a crash or sanitizer report, an exception
// escaping the parser, a request that breaks a limit it was given (head
// over max_header_bytes, body over max_body_bytes, a Content-Length that
// does not match the body), a refusal with a status outside the documented
// set, and, above all, a difference between parsing the input in one piece
// and parsing it cut into chunks (as TCP delivers it): the first byte of
// the input picks the chunk sizes, so the fuzzer explores the cuts too.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "http/parser.h"

namespace {

using kiln::http::ParserLimits;
using kiln::http::Request;
using kiln::http::RequestParser;

size_t g_checked = 0;  // requests parsed whole and checked

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "kiln_fuzz_http_request: %s\n", what.c_str());
  std::abort();
}

ParserLimits limits() {
  ParserLimits l;
  // Small, so inputs of a few KiB reach every limit.
  l.max_header_bytes = 2048;
  l.max_target_bytes = 512;
  l.max_headers = 20;
  l.max_body_bytes = 1024;
  return l;
}

// What a parse produced, in a form two parses can be compared by.
struct Outcome {
  std::vector<std::string> requests;  // one line per request: everything a handler sees
  int error = 0;                      // the refusal's status, 0 if none
};

std::string describe(const Request& r, bool keep_alive) {
  std::string out = r.method + " " + r.target + " " + r.path + " " + r.version +
                    (keep_alive ? " keep-alive" : " close");
  for (const auto& [k, v] : r.headers) out += "|" + k + ":" + v;
  for (const auto& [k, v] : r.params) out += "&" + k + "=" + v;
  out += "#" + r.body;
  return out;
}

// Feeds `data` in chunks of the sizes `cuts` cycles through (empty: whole).
Outcome run(std::string_view data, const std::vector<size_t>& cuts) {
  static const std::set<int> kStatuses = {400, 411, 413, 414, 417, 431, 501, 505};
  const ParserLimits lim = limits();
  RequestParser p(lim);
  Outcome out;
  size_t pos = 0, cut = 0;
  while (true) {
    const size_t n =
        cuts.empty() ? data.size() - pos : std::min(cuts[cut++ % cuts.size()], data.size() - pos);
    p.append(data.substr(pos, n));
    pos += n;
    for (;;) {
      const RequestParser::State s = p.advance();
      if (s == RequestParser::State::kHeadComplete) {
        if (p.content_length() < 0 || p.content_length() > lim.max_body_bytes) {
          fail("head accepted with Content-Length " + std::to_string(p.content_length()));
        }
        continue;
      }
      if (s == RequestParser::State::kComplete) {
        const bool keep_alive = p.keep_alive();
        const int64_t length = p.content_length();
        Request r = p.take_request();
        if (static_cast<int64_t>(r.body.size()) != length) {
          fail("body of " + std::to_string(r.body.size()) + " bytes, Content-Length " +
               std::to_string(length));
        }
        if (r.target.empty() || r.target.front() != '/' || r.target.size() > lim.max_target_bytes) {
          fail("accepted target '" + r.target + "'");
        }
        if (r.headers.size() > lim.max_headers) fail("accepted too many headers");
        out.requests.push_back(describe(r, keep_alive));
        continue;
      }
      if (s == RequestParser::State::kError) {
        out.error = p.error().status;
        if (!kStatuses.count(out.error)) fail("refused with status " + std::to_string(out.error));
        if (p.error().message.empty()) fail("refused without a message");
        return out;
      }
      break;  // kNeedMore
    }
    if (pos >= data.size()) return out;
  }
}

}  // namespace

// Number of requests parsed and checked so far in this process (replays).
extern "C" size_t kiln_fuzz_checked_count() { return g_checked; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the chunk sizes: 1..8 bytes, cycling.
  const unsigned seed = data[0];
  std::vector<size_t> cuts;
  for (unsigned i = 0; i < 4; ++i) cuts.push_back(1 + ((seed >> (2 * i)) & 7));
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

  const Outcome whole = run(text, {});
  const Outcome chunked = run(text, cuts);
  if (whole.requests != chunked.requests || whole.error != chunked.error) {
    // A limit may be noticed earlier when bytes arrive in pieces (a head
    // over the limit with no end yet), never a different request.
    const bool limit_only = (whole.error == 431 || whole.error == 414 || chunked.error == 431 ||
                             chunked.error == 414) &&
                            std::equal(chunked.requests.begin(),
                                       chunked.requests.begin() +
                                           std::min(whole.requests.size(), chunked.requests.size()),
                                       whole.requests.begin());
    if (!limit_only) {
      fail("whole and chunked parses differ: " + std::to_string(whole.requests.size()) + "/" +
           std::to_string(whole.error) + " vs " + std::to_string(chunked.requests.size()) + "/" +
           std::to_string(chunked.error));
    }
  }
  g_checked += whole.requests.size();
  return 0;
}
