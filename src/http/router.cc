#include "http/router.h"

#include <cctype>
#include <string_view>

namespace kiln::http {
namespace {

constexpr std::string_view kRegexOperators = "\\^$.|?*+()[]{}";
constexpr std::string_view kSegmentGroup = "([^/]+)";

// The literal text every path the pattern matches starts with: the pattern
// up to its first regex operator, less a last character a quantifier may
// repeat or drop; empty when the pattern has an alternation anywhere.
std::string literal_prefix(const std::string& pattern) {
  if (pattern.find('|') != std::string::npos) return "";
  std::string out;
  for (const char c : pattern) {
    if (kRegexOperators.find(c) != std::string_view::npos) {
      if ((c == '?' || c == '*' || c == '+' || c == '{') && !out.empty()) out.pop_back();
      break;
    }
    out += c;
  }
  return out;
}

}  // namespace

bool Router::parse_segments(const std::string& pattern, std::vector<Piece>* pieces) {
  pieces->clear();
  size_t i = 0;
  while (i < pattern.size()) {
    const std::string_view rest = std::string_view(pattern).substr(i);
    if (rest.substr(0, kSegmentGroup.size()) == kSegmentGroup) {
      // The group must end at a '/' or at the end: then it spans exactly
      // up to the path's next '/', as the regex would.
      const size_t next = i + kSegmentGroup.size();
      if (next < pattern.size() && pattern[next] != '/') return false;
      pieces->push_back({true, ""});
      i = next;
      continue;
    }
    char c = pattern[i];
    if (c == '\\') {
      if (i + 1 >= pattern.size() || std::isalnum(static_cast<unsigned char>(pattern[i + 1]))) {
        return false;  // \d, \w, ...: a class, not a literal
      }
      c = pattern[++i];
    } else if (kRegexOperators.find(c) != std::string_view::npos) {
      return false;
    }
    if (pieces->empty() || pieces->back().group) pieces->push_back({false, ""});
    pieces->back().literal += c;
    ++i;
  }
  return true;
}

bool Router::match_segments(const std::vector<Piece>& pieces, const std::string& path,
                            std::vector<std::string>* groups) {
  size_t pos = 0;
  for (const Piece& p : pieces) {
    if (p.group) {
      size_t end = path.find('/', pos);
      if (end == std::string::npos) end = path.size();
      if (end == pos) return false;  // [^/]+ takes at least one character
      groups->emplace_back(path, pos, end - pos);
      pos = end;
    } else {
      if (path.compare(pos, p.literal.size(), p.literal) != 0) return false;
      pos += p.literal.size();
    }
  }
  return pos == path.size();
}

void Router::add(const std::string& method, const std::string& pattern, Handler handler) {
  Route r{method, std::regex(pattern), literal_prefix(pattern), {}, false, std::move(handler)};
  r.plain = parse_segments(pattern, &r.pieces);
  routes_.push_back(std::move(r));
}

const Handler* Router::find(Request* req, Outcome* outcome) const {
  const std::string& method = req->method == "HEAD" ? std::string("GET") : req->method;
  *outcome = Outcome::kNoPath;
  std::vector<std::string> groups;
  for (const Route& r : routes_) {
    // A path without the route's literal prefix cannot match it: the
    // regex (microseconds each, and a tile request passes every route
    // added before the tile door's) is not run.
    if (req->path.compare(0, r.prefix.size(), r.prefix) != 0) continue;
    groups.clear();
    if (r.plain) {
      if (!match_segments(r.pieces, req->path, &groups)) continue;
    } else {
      std::smatch m;
      if (!std::regex_match(req->path, m, r.pattern)) continue;
      for (size_t i = 1; i < m.size(); ++i) groups.push_back(m[i].str());
    }
    if (r.method != method) {
      *outcome = Outcome::kWrongMethod;
      continue;
    }
    req->matches.clear();
    req->matches.push_back(req->path);
    for (std::string& g : groups) req->matches.push_back(std::move(g));
    *outcome = Outcome::kFound;
    return &r.handler;
  }
  return nullptr;
}

}  // namespace kiln::http
