#include "http/router.h"

#include <string_view>

namespace kiln::http {
namespace {

// The literal text every path the pattern matches starts with: the pattern
// up to its first regex operator, less a last character a quantifier may
// repeat or drop; empty when the pattern has an alternation anywhere.
std::string literal_prefix(const std::string& pattern) {
  if (pattern.find('|') != std::string::npos) return "";
  std::string out;
  for (const char c : pattern) {
    if (std::string_view("\\^$.?*+()[]{}").find(c) != std::string_view::npos) {
      if ((c == '?' || c == '*' || c == '+' || c == '{') && !out.empty()) out.pop_back();
      break;
    }
    out += c;
  }
  return out;
}

}  // namespace

void Router::add(const std::string& method, const std::string& pattern, Handler handler) {
  routes_.push_back({method, std::regex(pattern), literal_prefix(pattern), std::move(handler)});
}

const Handler* Router::find(Request* req, Outcome* outcome) const {
  const std::string& method = req->method == "HEAD" ? std::string("GET") : req->method;
  *outcome = Outcome::kNoPath;
  for (const Route& r : routes_) {
    // A path without the route's literal prefix cannot match it: the
    // regex (microseconds each, and a tile request passes every route
    // added before the tile door's) is not run.
    if (req->path.compare(0, r.prefix.size(), r.prefix) != 0) continue;
    std::smatch m;
    if (!std::regex_match(req->path, m, r.pattern)) continue;
    if (r.method != method) {
      *outcome = Outcome::kWrongMethod;
      continue;
    }
    req->matches.clear();
    for (const auto& group : m) req->matches.push_back(group.str());
    *outcome = Outcome::kFound;
    return &r.handler;
  }
  return nullptr;
}

}  // namespace kiln::http
