// Naming rules of the catalog: which layer/environment names are safe path
// components, which relative paths stay inside a staging directory, and the
// names the catalog itself gives to versions and staging directories.
#include <unistd.h>

#include <cctype>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <string_view>

#include "catalog/catalog.h"
#include "catalog/layer_writer.h"

namespace kiln::catalog {
namespace {

constexpr size_t kMaxNameLength = 128;

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Quotes user text for a message; control bytes become \xNN so that a name
// with a newline cannot forge a log line.
std::string quoted(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string utc_now(const char* format) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  size_t n = std::strftime(buf, sizeof(buf), format, &tm);
  return std::string(buf, n);
}

}  // namespace

Status validate_name(std::string_view what, std::string_view name) {
  bool ok = !name.empty() && name.size() <= kMaxNameLength && is_alnum(name.front());
  for (size_t i = 0; ok && i < name.size(); ++i) {
    char c = name[i];
    ok = is_alnum(c) || c == '.' || c == '_' || c == '-';
  }
  if (ok) return Status::ok();
  return invalid_argument(std::string(what) + " name " + quoted(name) +
                          " is not allowed: use 1-128 characters of A-Z a-z 0-9 . _ - "
                          "starting with a letter or digit");
}

namespace internal {

std::string version_name(int version) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "v%06d", version);
  return buf;
}

std::optional<int> parse_version_name(std::string_view name) {
  constexpr std::string_view kPrefix = "versions/";
  if (name.substr(0, kPrefix.size()) == kPrefix) name.remove_prefix(kPrefix.size());
  if (name.size() < 2 || name.front() != 'v') return std::nullopt;
  name.remove_prefix(1);
  for (char c : name) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  int version = 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), version);
  if (ec != std::errc() || end != name.data() + name.size() || version < 1) return std::nullopt;
  return version;
}

Status validate_relpath(std::string_view relpath) {
  if (relpath.empty()) {
    return invalid_argument("path '' is empty: name a file inside the staging directory");
  }
  if (relpath.front() == '/') {
    return invalid_argument("path " + quoted(relpath) +
                            " is absolute: use a path relative to the staging directory");
  }
  if (relpath.find('\0') != std::string_view::npos) {
    return invalid_argument("path " + quoted(relpath) + " contains a NUL byte");
  }
  std::string_view rest = relpath;
  while (true) {
    size_t slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    if (part == "..") {
      return invalid_argument("path " + quoted(relpath) +
                              " leaves the staging directory: '..' is not allowed");
    }
    if (part.empty() || part == ".") {
      return invalid_argument("path " + quoted(relpath) +
                              " is not allowed: use '/'-separated names without empty or "
                              "'.' parts");
    }
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return Status::ok();
}

std::string fresh_staging_id() {
  // random_device per call: ids are made once per ingest, and a shared engine
  // would need a lock.
  std::random_device rd;
  char hex[16];
  std::snprintf(hex, sizeof(hex), "%08x", static_cast<unsigned>(rd()));
  return utc_now("%Y%m%dT%H%M%S") + "-" + std::to_string(::getpid()) + "-" + hex;
}

std::string utc_now_iso8601() { return utc_now("%Y-%m-%dT%H:%M:%SZ"); }

// "1-3, 5" for {1, 2, 3, 5}; "none" when empty.
std::string format_ranges(const std::vector<int>& sorted) {
  if (sorted.empty()) return "none";
  std::string out;
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) ++j;
    if (!out.empty()) out += ", ";
    out += std::to_string(sorted[i]);
    if (j > i) {
      // Not `"-" + std::to_string(...)`: GCC 12 at -O3 reports a false
      // -Wrestrict overlap for that operator+ (GCC bug 105651).
      out += '-';
      out += std::to_string(sorted[j]);
    }
    i = j + 1;
  }
  return out;
}

}  // namespace internal
}  // namespace kiln::catalog
