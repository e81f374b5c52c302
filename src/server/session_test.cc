// Browser sessions: a cookie opens the environment it was sealed for until
// it expires, and nothing else; altered, forged or foreign-keyed cookies
// open nothing. Cookie headers are read as browsers send them.
#include "server/session.h"

#include <gtest/gtest.h>

namespace kiln::server {
namespace {

const std::string kKey(32, 'k');

TEST(Sessions, OpenTheirEnvironmentUntilTheyExpire) {
  const Sessions s(kKey);
  const std::string c = s.seal("production", 1000);
  EXPECT_EQ(s.open(c, 999), "production");
  EXPECT_FALSE(s.open(c, 1000).has_value());
  EXPECT_FALSE(s.open(c, 5000).has_value());
}

TEST(Sessions, AlteredOrForeignCookiesOpenNothing) {
  const Sessions s(kKey);
  const std::string c = s.seal("production", 1000);
  std::string swapped = c;
  swapped.replace(swapped.find("production"), 10, "staging");
  EXPECT_FALSE(s.open(swapped, 0).has_value());
  std::string later = c;
  later.replace(later.find("1000"), 4, "9000");
  EXPECT_FALSE(s.open(later, 0).has_value());
  std::string flipped = c;
  flipped.back() = flipped.back() == '0' ? '1' : '0';
  EXPECT_FALSE(s.open(flipped, 0).has_value());
  EXPECT_FALSE(Sessions(std::string(32, 'o')).open(c, 0).has_value());
  for (const char* bad : {"", "s1", "s1~", "s1~1000~production", "s1~~production~00",
                          "s1~-5~production~00", "s2~1000~production~00", "s1~1000~~00"}) {
    EXPECT_FALSE(s.open(bad, 0).has_value()) << bad;
  }
  EXPECT_FALSE(s.open(std::string(4096, 'a'), 0).has_value());
}

TEST(CookieValue, FindsTheNamedCookie) {
  EXPECT_EQ(cookie_value("kiln_session=abc", "kiln_session"), "abc");
  EXPECT_EQ(cookie_value("a=1; kiln_session=abc; b=2", "kiln_session"), "abc");
  EXPECT_EQ(cookie_value("a=1;kiln_session=\"abc\"", "kiln_session"), "abc");
  EXPECT_EQ(cookie_value("xkiln_session=abc", "kiln_session"), "");
  EXPECT_EQ(cookie_value("kiln_session=first; kiln_session=second", "kiln_session"), "first");
  EXPECT_EQ(cookie_value("", "kiln_session"), "");
}

TEST(SetCookie, IsHttpOnlyStrictAndSiteWide) {
  EXPECT_EQ(session_set_cookie("v", 60),
            "kiln_session=v; Max-Age=60; Path=/; HttpOnly; SameSite=Strict");
  EXPECT_EQ(session_set_cookie("", 0),
            "kiln_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict");
}

}  // namespace
}  // namespace kiln::server
