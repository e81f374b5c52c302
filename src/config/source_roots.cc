#include "config/source_roots.h"

#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <system_error>

namespace kiln::config {
namespace {

// GDAL's virtual file systems for object stores that a root may name. Their
// keys are plain names under a bucket, checked like paths below.
constexpr const char* kObjectStores[] = {"/vsis3/", "/vsigs/", "/vsiaz/", "/vsiadls/"};
constexpr const char* kVsiCurl = "/vsicurl/";

const char* const kAccepted =
    "accepted: local files, http(s):// URLs (also as /vsicurl/http(s)://...) and "
    "/vsis3/, /vsigs/, /vsiaz/, /vsiadls/ keys, under the environment's source roots";

bool starts_with(const std::string& s, const std::string& p) {
  return s.compare(0, p.size(), p) == 0;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_unreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

// Characters a URL path may hold raw (RFC 3986 pchar and '/'); '%' is
// handled apart.
bool is_path_char(unsigned char c) {
  return is_unreserved(c) || std::strchr("!$&'()*+,;=:@/", c) != nullptr;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// What a location is, before any filesystem or network look-up.
struct Location {
  enum class Kind { kLocal, kRelative, kRemote };
  Kind kind = Kind::kLocal;
  std::string match;  // the form compared with the roots
  std::string open;   // the name GDAL (or the definition reader) gets
};

// A "." or ".." segment in a '/'-separated path (after decoding).
bool has_dot_segment(const std::string& path) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string seg = path.substr(start, end - start);
    if (seg == "." || seg == "..") return true;
    start = end + 1;
  }
  return false;
}

// "http(s)://host[:port]/path[?query]" with a lower-case scheme and host,
// no default port, percent-escapes of unreserved characters decoded and
// the others upper-cased. Refuses user information, fragments, "." and ".."
// segments (raw or encoded), encoded '/', '\' and control characters: the
// spellings that could make a server see another path than the one matched.
Result<Location> parse_url(const std::string& url, bool root) {
  const size_t sep = url.find("://");
  const std::string scheme = lower(url.substr(0, sep));
  if (scheme != "http" && scheme != "https") {
    return invalid_argument("scheme '" + scheme + "://' is not accepted (" + kAccepted + ")");
  }
  std::string rest = url.substr(sep + 3);
  if (rest.find('#') != std::string::npos)
    return invalid_argument("a URL fragment ('#') is not accepted");
  const size_t auth_end = rest.find_first_of("/?");
  const std::string authority = rest.substr(0, auth_end);
  std::string path_query = auth_end == std::string::npos ? "/" : rest.substr(auth_end);
  if (path_query[0] == '?') path_query = "/" + path_query;
  if (authority.find('@') != std::string::npos) {
    return invalid_argument("user information ('user@') in a URL is not accepted");
  }
  std::string host, port;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos) return invalid_argument("an IPv6 host lacks its ']'");
    host = lower(authority.substr(0, close + 1));
    for (size_t i = 1; i < close; ++i) {
      if (!std::isxdigit(static_cast<unsigned char>(host[i])) && host[i] != ':' && host[i] != '.') {
        return invalid_argument("the host '" + host + "' is not an IPv6 address");
      }
    }
    const std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return invalid_argument("unexpected text after the host");
      port = after.substr(1);
    }
  } else {
    const size_t colon = authority.rfind(':');
    host = lower(authority.substr(0, colon));
    if (colon != std::string::npos) port = authority.substr(colon + 1);
    if (host.empty() || host.front() == '.' || host.back() == '.' ||
        host.find("..") != std::string::npos) {
      return invalid_argument("the host '" + host + "' is not a host name");
    }
    for (char c : host) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') {
        return invalid_argument("the host '" + host + "' is not a host name");
      }
    }
  }
  std::string port_part;
  if (!port.empty() || authority.find(':') != std::string::npos) {
    long p = 0;
    for (char c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || p > 65535) {
        return invalid_argument("the port '" + port + "' is not a number 1-65535");
      }
      p = p * 10 + (c - '0');
    }
    if (port.empty() || p < 1 || p > 65535) {
      return invalid_argument("the port '" + port + "' is not a number 1-65535");
    }
    const long dflt = scheme == "https" ? 443 : 80;
    if (p != dflt) port_part = ":" + std::to_string(p);
  }

  const size_t q = path_query.find('?');
  const std::string raw_path = path_query.substr(0, q);
  const std::string query = q == std::string::npos ? "" : path_query.substr(q + 1);
  if (root && q != std::string::npos) return invalid_argument("a root may not have a query ('?')");
  std::string path, decoded;
  for (size_t i = 0; i < raw_path.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(raw_path[i]);
    if (c == '%') {
      const int hi = i + 2 < raw_path.size() ? hex_value(raw_path[i + 1]) : -1;
      const int lo = hi >= 0 ? hex_value(raw_path[i + 2]) : -1;
      if (hi < 0 || lo < 0) return invalid_argument("a '%' in the path is not a %XX escape");
      const unsigned char v = static_cast<unsigned char>(hi * 16 + lo);
      if (v == '/' || v == '\\' || v < 0x20 || v >= 0x7f) {
        return invalid_argument(
            "the path encodes '/', '\\', a control or a non-ASCII byte (%XX); spell it plainly");
      }
      if (is_unreserved(v)) {
        path += static_cast<char>(v);
      } else {
        static const char kHex[] = "0123456789ABCDEF";
        path += '%';
        path += kHex[v >> 4];
        path += kHex[v & 15];
      }
      decoded += static_cast<char>(v);
      i += 2;
    } else if (is_path_char(c)) {
      path += static_cast<char>(c);
      decoded += static_cast<char>(c);
    } else {
      return invalid_argument(std::string("the path holds '") + static_cast<char>(c) +
                              "', which a URL must escape");
    }
  }
  if (has_dot_segment(decoded)) {
    return invalid_argument("'.' and '..' segments are not accepted in a URL's path");
  }
  for (char c : query) {
    if (c == ' ' || c == '\\') return invalid_argument("the query holds a space or '\\'");
  }
  Location loc;
  loc.kind = Location::Kind::kRemote;
  loc.match = scheme + "://" + host + port_part + path;
  loc.open = kVsiCurl + loc.match + (q == std::string::npos ? "" : "?" + query);
  return loc;
}

// "/vsis3/bucket/key": a bucket and a key without '.'/'..' segments, '%',
// '\', '?' or '#'.
Result<Location> parse_object_key(const std::string& prefix, const std::string& s) {
  const std::string rest = s.substr(prefix.size());
  if (rest.empty() || rest[0] == '/')
    return invalid_argument("'" + prefix + "' needs a bucket name");
  if (rest.find_first_of("%\\?#") != std::string::npos) {
    return invalid_argument("an object key may not hold '%', '\\', '?' or '#'");
  }
  if (has_dot_segment(rest)) {
    return invalid_argument("'.' and '..' segments are not accepted in an object key");
  }
  Location loc;
  loc.kind = Location::Kind::kRemote;
  loc.match = loc.open = s;
  return loc;
}

// Classifies `s`; refuses every GDAL syntax that is not a plain file, URL
// or object key. The message says what `s` is and is meant to follow
// "'<s>' ".
Result<Location> parse_location(const std::string& s, bool root) {
  if (s.empty()) return invalid_argument("is empty");
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return invalid_argument("holds a control character");
  }
  auto refuse = [](const std::string& why) -> Result<Location> { return invalid_argument(why); };
  if (starts_with(s, "/vsi")) {
    for (const char* p : kObjectStores) {
      if (starts_with(s, p)) {
        auto loc = parse_object_key(p, s);
        if (!loc.is_ok()) return refuse("is not a usable object key: " + loc.status().message());
        return loc;
      }
    }
    if (starts_with(s, kVsiCurl)) {
      const std::string url = s.substr(std::strlen(kVsiCurl));
      const size_t sep = url.find("://");
      if (sep == std::string::npos) {
        return refuse("is not /vsicurl/ followed by an http(s):// URL");
      }
      auto loc = parse_url(url, root);
      if (!loc.is_ok()) return refuse("is not a usable URL: " + loc.status().message());
      return loc;
    }
    const size_t end = s.find_first_of("/?", 1);
    const std::string fs = s.substr(0, end == std::string::npos ? s.size() : end + 1);
    return refuse("uses GDAL's virtual file system '" + fs + "', which is not accepted (" +
                  kAccepted + ")");
  }
  if (s[0] == '/') {
    Location loc;
    loc.match = loc.open = s;
    return loc;
  }
  const size_t first = s.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && s[first] == '<') {
    return refuse(
        "is inline XML (a VRT or another GDAL dataset description), which is not accepted: "
        "give the path or URL of a raster file");
  }
  const size_t sep = s.find("://");
  size_t name_end = 0;
  while (name_end < s.size() &&
         (std::isalnum(static_cast<unsigned char>(s[name_end])) || s[name_end] == '_' ||
          s[name_end] == '+' || s[name_end] == '-' || s[name_end] == '.')) {
    ++name_end;
  }
  if (sep != std::string::npos && sep == name_end) {
    const std::string scheme = lower(s.substr(0, sep));
    if (scheme == "http" || scheme == "https") {
      auto loc = parse_url(s, root);
      if (!loc.is_ok()) return refuse("is not a usable URL: " + loc.status().message());
      return loc;
    }
    std::string hint;
    if (scheme == "s3") hint = "; for S3 write /vsis3/bucket/key";
    if (scheme == "gs") hint = "; for Google Cloud Storage write /vsigs/bucket/key";
    if (scheme == "file") hint = "; give the absolute path itself";
    return refuse("uses the scheme '" + scheme + "://', which is not accepted (" + kAccepted + ")" +
                  hint);
  }
  if (name_end > 0 && name_end < s.size() && s[name_end] == ':') {
    return refuse("is a GDAL connection string or driver-prefixed name ('" +
                  s.substr(0, name_end + 1) +
                  "'), which is not accepted: give the path or URL of a raster file");
  }
  Location loc;
  loc.kind = Location::Kind::kRelative;
  loc.match = loc.open = s;
  return loc;
}

// The root as compared now: a local root that exists is taken by its real
// path, so roots under symlinked directories (/tmp -> /private/tmp) match
// the real paths of the files in them.
std::string resolved_root(const std::string& root) {
  if (root.empty() || root[0] != '/' || starts_with(root, "/vsi")) return root;
  char buf[PATH_MAX];
  if (::realpath(root.c_str(), buf) == nullptr) return root;
  std::string r = buf;
  if (r.back() != '/') r += '/';
  return r;
}

bool is_local_root(const std::string& root) { return root[0] == '/' && !starts_with(root, "/vsi"); }

std::optional<std::string> real_path(const std::string& path, int* err) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) {
    *err = errno;
    return std::nullopt;
  }
  return std::string(buf);
}

// `real` (a real path) is one of the local roots or lies under one.
bool under_local_root(const std::vector<std::string>& roots, const std::string& real) {
  const std::string dir = real.back() == '/' ? real : real + "/";
  for (const auto& r : roots) {
    if (is_local_root(r) && starts_with(dir, resolved_root(r))) return true;
  }
  return false;
}

std::string join(const std::vector<std::string>& roots) {
  std::string s;
  for (const auto& r : roots) s += (s.empty() ? "" : ", ") + r;
  return s;
}

}  // namespace

Result<std::string> canonical_root(const std::string& root, const std::string& base_dir,
                                   const std::string& key) {
  auto loc = parse_location(root, /*root=*/true);
  if (!loc.is_ok()) {
    return invalid_argument(key + ": '" + root + "' " + loc.status().message());
  }
  std::string out;
  switch (loc->kind) {
    case Location::Kind::kRemote:
      out = loc->match;
      break;
    case Location::Kind::kRelative:
    case Location::Kind::kLocal: {
      std::filesystem::path p(root);
      if (p.is_relative()) p = std::filesystem::path(base_dir) / p;
      out = p.lexically_normal().string();
      break;
    }
  }
  if (out.back() != '/') out += '/';
  return out;
}

Result<std::string> check_source(const std::vector<std::string>& roots, const std::string& env,
                                 const std::string& what, const std::string& location,
                                 bool local_only) {
  if (roots.empty()) {
    return invalid_argument("environment '" + env +
                            "' has no source roots, so its steps can read nothing: the operator "
                            "lists the prefixes they may read from in source_roots of its "
                            "[[environment]] in kiln.toml");
  }
  auto loc = parse_location(location, /*root=*/false);
  if (!loc.is_ok())
    return invalid_argument(what + ": '" + location + "' " + loc.status().message());
  const std::string outside = what + ": '" + location +
                              "' is not under the source roots of environment '" + env + "' (" +
                              join(roots) + "); its steps may read only from there";
  switch (loc->kind) {
    case Location::Kind::kRelative:
      return invalid_argument(what + ": '" + location +
                              "' is relative; the server does not share your working directory, "
                              "give an absolute path");
    case Location::Kind::kRemote:
      if (local_only) {
        return invalid_argument(what + ": '" + location +
                                "' is remote; only local files under the source roots are read");
      }
      for (const auto& r : roots) {
        if (!is_local_root(r) && starts_with(loc->match, r)) return loc->open;
      }
      return invalid_argument(outside);
    case Location::Kind::kLocal:
      break;
  }

  int err = 0;
  if (auto real = real_path(location, &err)) {
    if (!under_local_root(roots, *real)) return invalid_argument(outside);
    struct stat st;
    if (::stat(real->c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return invalid_argument(what + ": '" + location + "' is not a regular file");
    }
    return *real;
  }
  // It does not resolve. Say why only if resolution stopped inside a root:
  // walk up the path as written (not lexically normalised, which would
  // differ from the kernel on "link/..") to the deepest prefix that
  // resolves.
  std::string prefix = location;
  for (;;) {
    while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
    const size_t slash = prefix.rfind('/');
    if (slash == std::string::npos) return invalid_argument(outside);
    prefix = slash == 0 ? "/" : prefix.substr(0, slash);
    int ignored = 0;
    if (auto real = real_path(prefix, &ignored)) {
      if (!under_local_root(roots, *real)) return invalid_argument(outside);
      return invalid_argument(what + ": '" + location +
                              "' cannot be read: " + std::generic_category().message(err));
    }
    if (prefix == "/") return invalid_argument(outside);
  }
}

}  // namespace kiln::config
