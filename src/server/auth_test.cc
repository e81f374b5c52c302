#include "server/auth.h"

#include <gtest/gtest.h>

namespace kiln::server {
namespace {

TEST(Auth, Sha256MatchesTheKnownDigest) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Auth, TokensOpenOnlyTheirEnvironment) {
  ServerConfig c;
  c.environments.push_back({"production", {sha256_hex("p-token")}, "/c", 1, 10});
  c.environments.push_back({"staging", {sha256_hex("s-token")}, "/c", 1, 0});
  TokenTable t(c);
  EXPECT_EQ(t.environment_for("p-token"), "production");
  EXPECT_EQ(t.environment_for("s-token"), "staging");
  EXPECT_FALSE(t.environment_for("P-token").has_value());
  EXPECT_FALSE(t.environment_for("").has_value());
  // The stored hash itself is not a token.
  EXPECT_FALSE(t.environment_for(sha256_hex("p-token")).has_value());
}

TEST(Auth, MetricsTokenIsCheckedOnlyWhenConfigured) {
  ServerConfig c;
  c.environments.push_back({"production", {sha256_hex("p-token")}, "/c", 1, 10});
  EXPECT_FALSE(TokenTable(c).metrics_need_token());
  c.metrics_token_sha256 = {sha256_hex("old-reader"), sha256_hex("reader")};
  TokenTable t(c);
  EXPECT_TRUE(t.metrics_need_token());
  EXPECT_TRUE(t.may_read_metrics("reader"));
  EXPECT_TRUE(t.may_read_metrics("old-reader"));
  for (const char* wrong : {"", "p-token", "reader ", "Reader", "readerx"}) {
    EXPECT_FALSE(t.may_read_metrics(wrong)) << wrong;
  }
  EXPECT_FALSE(t.may_read_metrics(sha256_hex("reader")));
}

TEST(Auth, BearerHeaderParsing) {
  EXPECT_EQ(bearer_token("Bearer abc"), "abc");
  EXPECT_EQ(bearer_token("Bearer   abc  "), "abc");
  EXPECT_EQ(bearer_token("Basic abc"), "");
  EXPECT_EQ(bearer_token("Bearer "), "");
  EXPECT_EQ(bearer_token(""), "");
}

TEST(Auth, NewTokensAreLongAndDistinct) {
  const std::string a = new_token(), b = new_token();
  EXPECT_EQ(a.size(), 64u);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace kiln::server
