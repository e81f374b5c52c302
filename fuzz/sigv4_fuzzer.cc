// Fuzz target for SigV4 verification (server/sigv4.h): the canonical URI and
// query, the Authorization header, the dates, the signed-header and payload
// rules, over a whole request as the EMR door hands it over.
//
// Input: an HTTP/1.1 request in its wire form, "METHOD TARGET HTTP/1.1",
// header lines "Name: value", an empty line, the body (CRLF or LF). No
// framing is checked: every byte reaches the verifier somewhere.
//
// Refusals are expected and never a finding. What is: a crash or sanitizer
// report, an exception escaping, an error without a type, message or 4xx
// status, a canonical URI or query with a byte outside what SigV4 allows, a
// result that changes when the same request is verified twice, and, the
// strong one, a signature mismatch that is not self-consistent. The
// mismatch message shows the string to sign the server computed; the
// target signs it with the key itself and verifies again, which must then
// succeed (the signature is the last check), and must fail the replay
// cache's second claim.
#include <openssl/hmac.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "server/sigv4.h"
#include "server/sigv4_replay_cache.h"

namespace {

using kiln::server::SigV4Request;
using kiln::server::SigV4Result;
using kiln::server::SigV4Verifier;

constexpr char kKeyId[] = "AKIAKILNEXAMPLE00001";
constexpr char kSecret[] = "kiln/Secret+Example/0123456789abcdefghij";

// The botocore fixtures of sigv4_test.cc were signed at this instant, so
// seeds made from them verify and the fuzzer starts past the signature.
const std::chrono::system_clock::time_point kNow =
    std::chrono::sys_days(std::chrono::year_month_day{std::chrono::year{2024},
                                                      std::chrono::month{3}, std::chrono::day{1}}) +
    std::chrono::hours(12);

size_t g_checked = 0;  // requests whose signature the target made verify

[[noreturn]] void fail(const std::string& what, std::string_view input) {
  std::fprintf(stderr, "kiln_fuzz_sigv4: %s\n  input: %.*s\n", what.c_str(),
               static_cast<int>(input.size()), input.data());
  std::abort();
}

std::string_view strip_cr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

SigV4Request parse_wire(std::string_view in) {
  SigV4Request r;
  size_t eol = in.find('\n');
  std::string_view line = strip_cr(in.substr(0, eol));
  const size_t sp1 = line.find(' ');
  r.method = std::string(line.substr(0, sp1));
  if (sp1 != std::string_view::npos) {
    std::string_view target = line.substr(sp1 + 1);
    target = target.substr(0, target.rfind(" HTTP/"));
    const size_t q = target.find('?');
    r.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
  }
  size_t pos = eol == std::string_view::npos ? in.size() : eol + 1;
  while (pos < in.size()) {
    eol = in.find('\n', pos);
    line = strip_cr(in.substr(pos, eol == std::string_view::npos ? eol : eol - pos));
    pos = eol == std::string_view::npos ? in.size() : eol + 1;
    if (line.empty()) break;
    const size_t colon = line.find(':');
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    r.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  r.body = std::string(in.substr(pos));
  return r;
}

bool is_upper_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }

// SigV4's encoded form: unreserved bytes, `extra`, and %XX with upper-case hex.
bool well_encoded(std::string_view s, std::string_view extra) {
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~' || extra.find(c) != std::string_view::npos)
      continue;
    if (c == '%' && i + 2 < s.size() + 0 && is_upper_hex(s[i + 1]) && is_upper_hex(s[i + 2])) {
      i += 2;
      continue;
    }
    return false;
  }
  return true;
}

std::string hmac(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string to_hex(std::string_view raw) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

// The string to sign quoted in a mismatch message, or "" if absent.
std::string quoted_string_to_sign(const std::string& message) {
  const std::string marker = "The String-to-Sign should have been\n'";
  const size_t start = message.find(marker);
  if (start == std::string::npos) return "";
  const size_t from = start + marker.size();
  const size_t end = message.rfind("'\n");
  if (end == std::string::npos || end < from) return "";
  return message.substr(from, end - from);
}

// SIGV4 key derivation over the scope line of a string to sign.
std::string sign(const std::string& string_to_sign) {
  // "AWS4-HMAC-SHA256\n<date>\n<yyyymmdd>/<region>/<service>/aws4_request\n<hash>"
  const size_t l1 = string_to_sign.find('\n');
  const size_t l2 = string_to_sign.find('\n', l1 + 1);
  const size_t l3 = string_to_sign.find('\n', l2 + 1);
  const std::string scope = string_to_sign.substr(l2 + 1, l3 - l2 - 1);
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t slash; (slash = scope.find('/', start)) != std::string::npos; start = slash + 1)
    parts.push_back(scope.substr(start, slash - start));
  parts.push_back(scope.substr(start));
  std::string key = "AWS4" + std::string(kSecret);
  for (const std::string& p : parts) key = hmac(key, p);
  return to_hex(hmac(key, string_to_sign));
}

void check_error(const SigV4Result& r, std::string_view input) {
  const auto& e = r.error();
  if (e.type.empty() || e.message.empty() || e.http_status < 400 || e.http_status > 499)
    fail("an error without a type, message or 4xx status: " + e.type, input);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const SigV4Request request = parse_wire(input);

  const std::string uri = kiln::server::sigv4_canonical_uri(request.path);
  if (uri.empty() || uri.front() != '/' || !well_encoded(uri, "/"))
    fail("canonical URI not absolute or badly encoded: '" + uri + "'", input);
  const std::string query = kiln::server::sigv4_canonical_query(request.query);
  if (!well_encoded(query, "=&")) fail("canonical query badly encoded: " + query, input);

  static const SigV4Verifier verifier({{kKeyId, kSecret, "production"}});
  const SigV4Result first = verifier.verify(request, kNow);
  const SigV4Result second = verifier.verify(request, kNow);
  if (first.ok() != second.ok() ||
      (!first.ok() && first.error().message != second.error().message)) {
    fail("the same request verified twice gave two answers", input);
  }
  if (!first.ok()) {
    check_error(first, input);
    const std::string string_to_sign = quoted_string_to_sign(first.error().message);
    if (string_to_sign.empty()) return 0;  // refused before the signature
    // Sign what the server says it computed, put that signature in place of
    // the client's (appended last: the last Signature= part counts), and
    // verify again. Skipped when the Authorization header is itself signed.
    SigV4Request resigned = request;
    bool auth_signed = false;
    for (auto& [name, value] : resigned.headers) {
      std::string lower = name;
      for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
      if (lower != "authorization") continue;
      std::string lower_value = value;
      for (char& c : lower_value) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
      if (lower_value.find("authorization") != std::string::npos) auth_signed = true;
      value += ", Signature=" + sign(string_to_sign);
      break;
    }
    if (auth_signed) return 0;
    const SigV4Result again = verifier.verify(resigned, kNow);
    if (!again.ok()) {
      fail("signed with the string to sign the server showed, still refused: " +
               again.error().message,
           input);
    }
    ++g_checked;
    kiln::server::SigV4ReplayCache cache(verifier.max_skew());
    if (cache.claim(again.accepted(), kNow).has_value())
      fail("a fresh cache refused the first claim", input);
    if (!cache.claim(again.accepted(), kNow).has_value())
      fail("a fresh cache let the same signature through twice", input);
  } else {
    ++g_checked;
  }
  return 0;
}

extern "C" size_t kiln_fuzz_checked_count() { return g_checked; }
