#include "server/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdio>
#include <optional>

#include "server/auth.h"

namespace kiln::server {
namespace {

using std::chrono::sys_seconds;

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kTerminator = "aws4_request";

// HTTP statuses: see the table in sigv4.h for where they come from.
constexpr int kMissingTokenStatus = 403;
constexpr int kSignatureStatus = 400;

SigV4Error missing_token() {
  return {"MissingAuthenticationTokenException", "Missing Authentication Token",
          kMissingTokenStatus};
}
SigV4Error incomplete(std::string message) {
  return {"IncompleteSignatureException", std::move(message), kSignatureStatus};
}
SigV4Error invalid(std::string message) {
  return {"InvalidSignatureException", std::move(message), kSignatureStatus};
}
SigV4Error unrecognized_client() {
  return {"UnrecognizedClientException", "The security token included in the request is invalid.",
          kSignatureStatus};
}

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
  return out;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// SigV4's Trimall: outer whitespace dropped, inner runs become one space
// (botocore: ' '.join(value.split())).
std::string trim_all(std::string_view s) {
  std::string out;
  bool pending_space = false;
  for (char c : trim(s)) {
    if (is_space(c)) {
      pending_space = true;
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

std::string uri_encode(std::string_view s, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (is_unreserved(c) || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A '%' not followed by two hex digits stays a literal '%'.
std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

// Raw 32-byte HMAC-SHA256.
std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
  return std::string(reinterpret_cast<const char*>(md), len);
}

// Parses the digits of s[pos, pos+n); -1 if any is not a digit.
int digits(std::string_view s, size_t pos, size_t n) {
  if (pos + n > s.size()) return -1;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

std::optional<sys_seconds> make_time(int y, int mo, int d, int h, int mi, int s) {
  using namespace std::chrono;
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                           day{static_cast<unsigned>(d)}};
  if (y < 0 || mo < 1 || d < 1 || !ymd.ok() || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 ||
      s > 59) {
    return std::nullopt;
  }
  return sys_days(ymd) + hours(h) + minutes(mi) + seconds(s);
}

// ISO 8601 basic format as SigV4 uses it: 20150830T123600Z.
std::optional<sys_seconds> parse_amz_date(std::string_view s) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return std::nullopt;
  return make_time(digits(s, 0, 4), digits(s, 4, 2), digits(s, 6, 2), digits(s, 9, 2),
                   digits(s, 11, 2), digits(s, 13, 2));
}

// An HTTP Date header (RFC 7231 IMF-fixdate, "Sun, 30 Aug 2015 12:36:00 GMT").
// botocore writes the zone as "-0000" (email.utils.formatdate), so the
// numeric UTC spellings are accepted too.
std::optional<sys_seconds> parse_http_date(std::string_view s) {
  s = trim(s);
  if (const size_t comma = s.find(", "); comma != std::string_view::npos)
    s.remove_prefix(comma + 2);
  // "30 Aug 2015 12:36:00 GMT"
  if (s.size() < 24 || s[2] != ' ' || s[6] != ' ' || s[11] != ' ' || s[14] != ':' || s[17] != ':' ||
      s[20] != ' ') {
    return std::nullopt;
  }
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto month_it = std::find(std::begin(kMonths), std::end(kMonths), s.substr(3, 3));
  if (month_it == std::end(kMonths)) return std::nullopt;
  const std::string_view zone = s.substr(21);
  if (zone != "GMT" && zone != "UTC" && zone != "+0000" && zone != "-0000") return std::nullopt;
  return make_time(digits(s, 7, 4), static_cast<int>(month_it - std::begin(kMonths)) + 1,
                   digits(s, 0, 2), digits(s, 12, 2), digits(s, 15, 2), digits(s, 18, 2));
}

std::string format_amz_date(sys_seconds t) {
  using namespace std::chrono;
  const auto day_start = floor<days>(t);
  const year_month_day ymd{day_start};
  const hh_mm_ss hms{t - day_start};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d%02u%02uT%02d%02d%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

std::string describe_skew(std::chrono::seconds skew) {
  if (skew.count() % 60 == 0) return std::to_string(skew.count() / 60) + " min.";
  return std::to_string(skew.count()) + " sec.";
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t end = s.find(sep, start);
    parts.push_back(s.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

// The first header named `name` (lower case), if any.
const std::string* find_header(const SigV4Request& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (lower(k) == name) return &v;
  return nullptr;
}

// "Credential=...,SignedHeaders=...,Signature=..." after the algorithm.
struct AuthorizationFields {
  std::string algorithm;
  std::optional<std::string> credential, signed_headers, signature;
};

AuthorizationFields parse_authorization(std::string_view value) {
  AuthorizationFields f;
  value = trim(value);
  size_t sp = 0;
  while (sp < value.size() && !is_space(value[sp])) ++sp;
  f.algorithm = std::string(value.substr(0, sp));
  for (std::string_view part : split(value.substr(sp), ',')) {
    part = trim(part);
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view name = trim(part.substr(0, eq));
    std::string v(trim(part.substr(eq + 1)));
    if (name == "Credential") f.credential = std::move(v);
    if (name == "SignedHeaders") f.signed_headers = std::move(v);
    if (name == "Signature") f.signature = std::move(v);
  }
  return f;
}

bool query_has_presigned_auth(std::string_view raw_query) {
  for (std::string_view part : split(raw_query, '&')) {
    const std::string name = lower(percent_decode(part.substr(0, part.find('='))));
    if (name == "x-amz-signature" || name == "x-amz-credential" || name == "x-amz-algorithm")
      return true;
  }
  return false;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string sigv4_canonical_uri(std::string_view raw_path) {
  if (raw_path.empty()) return "/";
  // RFC 3986 section 5.2.4 plus the collapsing of empty segments that AWS
  // services require (botocore's remove_dot_segments; aws-c-auth's
  // "get-slashes-normalized" vector maps "//example//" to "/example/").
  std::vector<std::string_view> out;
  for (std::string_view seg : split(raw_path, '/')) {
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (!out.empty()) out.pop_back();
      continue;
    }
    out.push_back(seg);
  }
  // Always absolute: clients sign the path of a URL, which is "/" or starts
  // with it. A request-target that does not ("." or "a/b") is read as
  // rooted rather than given an empty or relative canonical form (found by
  // fuzz/sigv4_fuzzer.cc: "." had the canonical URI "").
  std::string path = "/";
  for (size_t i = 0; i < out.size(); ++i) {
    if (i > 0) path += '/';
    path += out[i];
  }
  if (raw_path.back() == '/' && !out.empty()) path += '/';
  return uri_encode(path, /*keep_slash=*/true);
}

std::string sigv4_canonical_query(std::string_view raw_query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (std::string_view part : split(raw_query, '&')) {
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    const std::string_view name = part.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? "" : part.substr(eq + 1);
    pairs.emplace_back(uri_encode(percent_decode(name), false),
                       uri_encode(percent_decode(value), false));
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [name, value] : pairs) {
    if (!out.empty()) out += '&';
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

std::vector<SigV4Key> sigv4_keys(const ServerConfig& config) {
  std::vector<SigV4Key> keys;
  for (const auto& env : config.environments)
    for (const auto& k : env.aws_keys)
      keys.push_back({k.access_key_id, k.secret_access_key, env.name});
  return keys;
}

SigV4Verifier::SigV4Verifier(std::vector<SigV4Key> keys, std::vector<std::string> allowed_regions,
                             std::chrono::seconds max_skew, std::string service,
                             std::vector<std::string> required_signed_headers)
    : keys_(std::move(keys)),
      allowed_regions_(std::move(allowed_regions)),
      max_skew_(max_skew),
      service_(std::move(service)),
      required_signed_headers_(std::move(required_signed_headers)) {}

SigV4Result SigV4Verifier::verify(const SigV4Request& request,
                                  std::chrono::system_clock::time_point now) const {
  const std::string* authorization = find_header(request, "authorization");
  if (authorization == nullptr) {
    if (query_has_presigned_auth(request.query)) {
      return incomplete(
          "This endpoint accepts Signature Version 4 in the Authorization header only, not "
          "presigned URLs (X-Amz-Signature in the query string).");
    }
    if (find_header(request, "x-amz-security-token") != nullptr) {
      return incomplete(
          "The request has an X-Amz-Security-Token header but no Authorization header.");
    }
    return missing_token();
  }

  // 1. The header's shape. Like AWS, every missing part is named at once.
  const AuthorizationFields auth = parse_authorization(*authorization);
  if (auth.algorithm != kAlgorithm) {
    return incomplete("Unsupported Authorization scheme '" + auth.algorithm +
                      "': this endpoint accepts AWS Signature Version 4 (" +
                      std::string(kAlgorithm) + ") only. Authorization=" + *authorization);
  }
  const std::string* amz_date_header = find_header(request, "x-amz-date");
  const std::string* date_header =
      amz_date_header != nullptr ? nullptr : find_header(request, "date");
  std::string missing;
  if (!auth.credential) missing += "Authorization header requires 'Credential' parameter. ";
  if (!auth.signature) missing += "Authorization header requires 'Signature' parameter. ";
  if (!auth.signed_headers) missing += "Authorization header requires 'SignedHeaders' parameter. ";
  if (amz_date_header == nullptr && date_header == nullptr) {
    missing +=
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
        "header. ";
  }
  if (!missing.empty()) return incomplete(missing + "Authorization=" + *authorization);

  const std::vector<std::string_view> scope = split(*auth.credential, '/');
  if (scope.size() != 5 ||
      std::any_of(scope.begin(), scope.end(), [](std::string_view s) { return s.empty(); })) {
    return incomplete(
        "Credential must have exactly 5 slash-delimited elements, e.g. "
        "keyid/date/region/service/term, got '" +
        *auth.credential + "'");
  }
  const std::string_view access_key_id = scope[0], scope_date = scope[1], region = scope[2],
                         service = scope[3], terminator = scope[4];

  std::optional<sys_seconds> signed_at;
  if (amz_date_header != nullptr) {
    signed_at = parse_amz_date(trim(*amz_date_header));
    if (!signed_at) {
      return incomplete("Date must be in ISO-8601 'basic format'. Got '" + *amz_date_header +
                        "'. See http://en.wikipedia.org/wiki/ISO_8601");
    }
  } else {
    signed_at = parse_http_date(*date_header);
    if (!signed_at) {
      return incomplete(
          "Date header must be an HTTP date such as 'Sun, 30 Aug 2015 12:36:00 "
          "GMT'. Got '" +
          *date_header + "'");
    }
  }
  // The string to sign always carries the basic-format timestamp, even when
  // the client dated the request with a Date header (botocore does the same).
  const std::string amz_date = format_amz_date(*signed_at);

  // 2. The credential scope.
  if (terminator != kTerminator) {
    return invalid("Credential should be scoped with a valid terminator: 'aws4_request', not '" +
                   std::string(terminator) + "'.");
  }
  if (service != service_) {
    return invalid("Credential should be scoped to correct service: '" + service_ + "'. ");
  }
  if (!allowed_regions_.empty() && std::find(allowed_regions_.begin(), allowed_regions_.end(),
                                             region) == allowed_regions_.end()) {
    std::string allowed;
    for (const auto& r : allowed_regions_) allowed += (allowed.empty() ? "" : ", ") + r;
    return invalid("Credential should be scoped to a valid region, not '" + std::string(region) +
                   "'. This endpoint accepts: " + allowed + ".");
  }
  if (scope_date != std::string_view(amz_date).substr(0, 8)) {
    return invalid(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '" +
        std::string(scope_date) + "' != '" + amz_date.substr(0, 8) + "', from '" + amz_date + "'.");
  }

  // 3. The signed headers. Host must be among them, or the signature could
  // be replayed against another server; so must every header the caller
  // acts on, or whoever relays the request can rewrite it (issue 14: a
  // ListSteps signed over host;x-amz-date was re-sent as CancelSteps).
  std::vector<std::string> signed_names;
  for (std::string_view name : split(*auth.signed_headers, ';'))
    signed_names.push_back(lower(trim(name)));
  const auto is_signed = [&](std::string_view name) {
    return std::find(signed_names.begin(), signed_names.end(), name) != signed_names.end();
  };
  if (!is_signed("host")) {
    return invalid("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
  }
  std::string unsigned_names;
  for (const std::string& name : required_signed_headers_) {
    // A request dated by a Date header alone (botocore then signs Date
    // instead of adding X-Amz-Date) must sign the header that dates it.
    const std::string dating = (name == "x-amz-date" && amz_date_header == nullptr) ? "date" : name;
    if (is_signed(dating)) continue;
    unsigned_names += (unsigned_names.empty() ? "" : ", ") + dating;
  }
  if (!unsigned_names.empty()) {
    std::string required;
    for (const std::string& name : required_signed_headers_)
      required += (required.empty() ? "" : ";") + name;
    return invalid("This endpoint requires SignedHeaders to include " + required +
                   "; not signed: " + unsigned_names + ".");
  }
  // One value each: a relay that adds a second X-Amz-Target must not be
  // able to make the signed value and the acted-on one differ.
  for (const std::string& name : required_signed_headers_) {
    const auto count = std::count_if(request.headers.begin(), request.headers.end(),
                                     [&](const auto& h) { return lower(h.first) == name; });
    if (count > 1) {
      return invalid("The signed header '" + name + "' appears " + std::to_string(count) +
                     " times; this endpoint accepts it once.");
    }
  }

  // 4. Who signed. Kiln issues no temporary credentials, so a session token
  // cannot be valid.
  if (find_header(request, "x-amz-security-token") != nullptr) return unrecognized_client();
  const auto key = std::find_if(keys_.begin(), keys_.end(), [&](const SigV4Key& k) {
    return k.access_key_id == access_key_id;
  });
  if (key == keys_.end()) return unrecognized_client();

  // 5. When. AWS's wording, e.g. "Signature expired: 20150830T123600Z is now
  // earlier than 20150830T125100Z (20150830T130600Z - 15 min.)".
  const sys_seconds now_s = std::chrono::floor<std::chrono::seconds>(now);
  if (*signed_at < now_s - max_skew_) {
    return invalid("Signature expired: " + amz_date + " is now earlier than " +
                   format_amz_date(now_s - max_skew_) + " (" + format_amz_date(now_s) + " - " +
                   describe_skew(max_skew_) + ")");
  }
  if (*signed_at > now_s + max_skew_) {
    return invalid("Signature not yet current: " + amz_date + " is still later than " +
                   format_amz_date(now_s + max_skew_) + " (" + format_amz_date(now_s) + " + " +
                   describe_skew(max_skew_) + ")");
  }

  // 6. The payload. A client may state its hash in X-Amz-Content-Sha256; it
  // must then be exactly the body's (lower-case hex, as clients write it).
  // UNSIGNED-PAYLOAD is refused: step definitions travel in the body and
  // must not be alterable in flight. The canonical request carries the hash
  // computed here, never the stated one.
  const std::string body_hash = sha256_hex(request.body);
  if (const std::string* stated = find_header(request, "x-amz-content-sha256")) {
    const std::string stated_value(trim(*stated));
    if (stated_value == "UNSIGNED-PAYLOAD" || stated_value.rfind("STREAMING-", 0) == 0) {
      return invalid("This endpoint requires a signed payload; X-Amz-Content-Sha256 '" +
                     stated_value + "' is not accepted.");
    }
    if (stated_value != body_hash) {
      return invalid(
          "The provided 'x-amz-content-sha256' header does not match what was computed.");
    }
  }

  // 7. The canonical request, exactly as the client built it.
  std::string canonical = request.method + "\n" + sigv4_canonical_uri(request.path) + "\n" +
                          sigv4_canonical_query(request.query) + "\n";
  std::string signed_list;
  for (const std::string& name : signed_names) {
    std::string value;
    bool first = true;
    for (const auto& [k, v] : request.headers) {
      if (lower(k) != name) continue;
      if (!first) value += ',';
      value += trim_all(v);
      first = false;
    }
    canonical += name + ":" + value + "\n";
    signed_list += (signed_list.empty() ? "" : ";") + name;
  }
  canonical += "\n" + signed_list + "\n" + body_hash;

  const std::string scope_text = std::string(scope_date) + "/" + std::string(region) + "/" +
                                 std::string(service) + "/" + std::string(terminator);
  const std::string string_to_sign =
      std::string(kAlgorithm) + "\n" + amz_date + "\n" + scope_text + "\n" + sha256_hex(canonical);

  std::string signing_key = hmac_sha256("AWS4" + key->secret_access_key, scope_date);
  signing_key = hmac_sha256(signing_key, region);
  signing_key = hmac_sha256(signing_key, service);
  signing_key = hmac_sha256(signing_key, terminator);
  const std::string mac = hmac_sha256(signing_key, string_to_sign);
  const std::string expected =
      to_hex(reinterpret_cast<const unsigned char*>(mac.data()), mac.size());
  OPENSSL_cleanse(signing_key.data(), signing_key.size());

  if (!constant_time_equal(expected, *auth.signature)) {
    // AWS shows both intermediate strings; neither holds a secret, and they
    // are what a client author needs to find the difference.
    return invalid(
        "The request signature we calculated does not match the signature you provided. Check "
        "your AWS Secret Access Key and signing method. Consult the service documentation for "
        "details.\n\nThe Canonical String for this request should have been\n'" +
        canonical + "'\n\nThe String-to-Sign should have been\n'" + string_to_sign + "'\n");
  }
  return SigV4Accepted{*key, expected, *signed_at};
}

}  // namespace kiln::server
