// The native doors' authentication: a bearer token or the console's session
// cookie opens the environment it names, and a state change authenticated
// by the cookie needs the console's header (the CSRF defence,
// docs/console.md).
#include "server/authenticate.h"

#include <gtest/gtest.h>

#include <string>

namespace kiln::server {
namespace {

class AuthenticateTest : public ::testing::Test {
 protected:
  AuthenticateTest() : config_(make_config()), tokens_(config_), quotas_(config_) {}

  static ServerConfig make_config() {
    ServerConfig c;
    c.environments.push_back({"production", {sha256_hex("p-token")}, "/c", 1, 10});
    c.environments.push_back({"staging", {sha256_hex("s-token")}, "/c", 1, 0});
    return c;
  }

  // The environment `req` authenticates to ("" when refused), and the
  // refusal's status in *status.
  std::string who(http::Request req, int* status = nullptr) {
    http::Response res;
    const EnvironmentConfig* env =
        authenticate_request(req, res, Authenticator{tokens_, config_, quotas_, sessions_, clock_});
    if (status) *status = env ? 0 : res.status;
    return env ? env->name : "";
  }

  http::Request with_cookie(const std::string& method, const std::string& env) {
    http::Request req;
    req.method = method;
    const std::string cookie = sessions_.seal(env, clock_.now_ms() / 1000 + kSessionSeconds);
    req.headers.emplace("Cookie", std::string("a=b; ") + kSessionCookie + "=" + cookie);
    return req;
  }

  ServerConfig config_;
  TokenTable tokens_;
  EnvironmentQuotas quotas_;
  Sessions sessions_{"0123456789abcdef0123456789abcdef"};
  ManualClock clock_;
};

TEST_F(AuthenticateTest, BearerTokenOpensItsEnvironmentForAnyMethod) {
  for (const char* method : {"GET", "POST", "DELETE", "PUT"}) {
    http::Request req;
    req.method = method;
    req.headers.emplace("Authorization", "Bearer s-token");
    EXPECT_EQ(who(req), "staging") << method;
  }
  http::Request bad;
  bad.method = "GET";
  bad.headers.emplace("Authorization", "Bearer nope");
  int status = 0;
  EXPECT_EQ(who(bad, &status), "");
  EXPECT_EQ(status, 401);
}

TEST_F(AuthenticateTest, SessionCookieOpensItsEnvironmentForReads) {
  EXPECT_EQ(who(with_cookie("GET", "production")), "production");
  EXPECT_EQ(who(with_cookie("HEAD", "staging")), "staging");
}

TEST_F(AuthenticateTest, CookieStateChangesNeedTheConsoleHeader) {
  for (const char* method : {"POST", "DELETE", "PUT", "PATCH"}) {
    int status = 0;
    EXPECT_EQ(who(with_cookie(method, "production"), &status), "") << method;
    EXPECT_EQ(status, 403) << method;
    http::Request wrong = with_cookie(method, "production");
    wrong.headers.emplace(kConsoleHeader, "yes");
    EXPECT_EQ(who(wrong, &status), "") << method;
    EXPECT_EQ(status, 403) << method;
    http::Request req = with_cookie(method, "production");
    req.headers.emplace(kConsoleHeader, kConsoleHeaderValue);
    EXPECT_EQ(who(req), "production") << method;
  }
}

TEST_F(AuthenticateTest, NoExpiredOrForeignCookieIsRefused) {
  int status = 0;
  http::Request none;
  none.method = "GET";
  EXPECT_EQ(who(none, &status), "");
  EXPECT_EQ(status, 401);
  http::Request req = with_cookie("GET", "production");
  clock_.advance((kSessionSeconds + 1) * 1000);
  EXPECT_EQ(who(req, &status), "");
  EXPECT_EQ(status, 401);
  // Sealed under another server's key.
  Sessions other("another key, another server.....");
  http::Request foreign;
  foreign.method = "GET";
  foreign.headers.emplace("Cookie", std::string(kSessionCookie) + "=" +
                                        other.seal("production", clock_.now_ms() / 1000 + 60));
  EXPECT_EQ(who(foreign, &status), "");
  EXPECT_EQ(status, 401);
  // An environment no longer configured.
  EXPECT_EQ(who(with_cookie("GET", "gone"), &status), "");
  EXPECT_EQ(status, 401);
}

}  // namespace
}  // namespace kiln::server
