#include "http/router.h"

namespace kiln::http {

void Router::add(const std::string& method, const std::string& pattern, Handler handler) {
  routes_.push_back({method, std::regex(pattern), std::move(handler)});
}

const Handler* Router::find(Request* req, Outcome* outcome) const {
  const std::string& method = req->method == "HEAD" ? std::string("GET") : req->method;
  *outcome = Outcome::kNoPath;
  for (const Route& r : routes_) {
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
