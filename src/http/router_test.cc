#include "http/router.h"

#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace kiln::http {
namespace {

// What std::regex says about a pattern and path: the route's groups, or
// nothing when it does not match.
std::vector<std::string> by_regex(const std::string& pattern, const std::string& path,
                                  bool* matched) {
  std::smatch m;
  *matched = std::regex_match(path, m, std::regex(pattern));
  std::vector<std::string> out;
  for (const auto& g : m) out.push_back(g.str());
  return out;
}

std::vector<std::string> by_router(const std::string& pattern, const std::string& path,
                                   Router::Outcome* outcome) {
  Router r;
  r.add("GET", pattern, [](const Request&, Response&) {});
  Request req;
  req.method = "GET";
  req.path = path;
  r.find(&req, outcome);
  return req.matches;
}

TEST(Router, AnswersAsTheRegexWouldForEveryPatternShapeKilnUses) {
  const std::vector<std::string> patterns = {
      "/healthz",
      "/v1/layers/([^/]+)",
      R"(/v1/layers/([^/]+)/tilejson\.json)",
      R"(/v1/layers/([^/]+)/tiles/([^/]+)/([^/]+)/([^/]+))",
      R"(/v1/steps/([^/]+)/cancel)",
      "/",
      // Not split: handed to std::regex, which must still answer.
      R"(/v1/x/(\d+))",
      "/v1/(a|b)/c",
      R"(/v1/([^/]+)\.json)",
      "/v1/layersx?",
  };
  const std::vector<std::string> paths = {"/healthz",
                                          "/healthz/",
                                          "/healthzz",
                                          "/v1/layers/l7",
                                          "/v1/layers/l7@3",
                                          "/v1/layers/",
                                          "/v1/layers//tiles",
                                          "/v1/layers/l7/tilejson.json",
                                          "/v1/layers/l7/tilejsonXjson",
                                          "/v1/layers/l7/tiles/1/2/3.png",
                                          "/v1/layers/l7/tiles/1/2/3.png/",
                                          "/v1/layers/l7/tiles/1//3.png",
                                          "/v1/layers/l7/tiles/1/2",
                                          "/v1/steps/s-1/cancel",
                                          "/v1/steps//cancel",
                                          "/",
                                          "",
                                          "/v1/x/12",
                                          "/v1/x/ab",
                                          "/v1/a/c",
                                          "/v1/b/c",
                                          "/v1/c/c",
                                          "/v1/a.b.json",
                                          "/v1/layers",
                                          "/v1/layer",
                                          "/v1/layersxx",
                                          "/v1/layers/a b/tiles/0/0/0.png"};
  for (const std::string& pattern : patterns) {
    for (const std::string& path : paths) {
      bool matched = false;
      const auto want = by_regex(pattern, path, &matched);
      Router::Outcome outcome;
      const auto got = by_router(pattern, path, &outcome);
      EXPECT_EQ(outcome == Router::Outcome::kFound, matched) << pattern << " on " << path;
      if (matched) {
        EXPECT_EQ(got, want) << pattern << " on " << path;
      }
    }
  }
}

TEST(Router, WrongMethodIsToldApartFromNoPath) {
  Router r;
  r.add("POST", R"(/v1/steps/([^/]+)/cancel)", [](const Request&, Response&) {});
  Request req;
  req.method = "GET";
  req.path = "/v1/steps/s-1/cancel";
  Router::Outcome outcome;
  EXPECT_EQ(r.find(&req, &outcome), nullptr);
  EXPECT_EQ(outcome, Router::Outcome::kWrongMethod);
  req.path = "/v1/steps/s-1/kill";
  EXPECT_EQ(r.find(&req, &outcome), nullptr);
  EXPECT_EQ(outcome, Router::Outcome::kNoPath);
}

TEST(Router, FirstMatchingRouteWins) {
  Router r;
  int which = 0;
  r.add("GET", "/v1/layers/([^/]+)", [&](const Request&, Response&) { which = 1; });
  r.add("GET", "/v1/layers/([^/]+)/tiles/([^/]+)/([^/]+)/([^/]+)",
        [&](const Request&, Response&) { which = 2; });
  r.add("GET", "/v1/layers/(.+)", [&](const Request&, Response&) { which = 3; });
  Request req;
  req.method = "GET";
  Router::Outcome outcome;
  Response res;
  for (const auto& [path, want] : std::vector<std::pair<std::string, int>>{
           {"/v1/layers/a", 1}, {"/v1/layers/a/tiles/1/2/3.png", 2}, {"/v1/layers/a/b", 3}}) {
    req.path = path;
    const Handler* h = r.find(&req, &outcome);
    ASSERT_NE(h, nullptr) << path;
    (*h)(req, res);
    EXPECT_EQ(which, want) << path;
  }
}

}  // namespace
}  // namespace kiln::http
