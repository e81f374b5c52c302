// List markers: they round-trip for the environment that got them and are
// refused to any other, altered, forged or from another server process.
#include "server/list_marker.h"

#include <gtest/gtest.h>

namespace kiln::server {
namespace {

TEST(ListMarkers, RoundTripForTheirEnvironmentOnly) {
  const ListMarkers m;
  const std::string marker = m.seal("staging", "s-ABCDEFGHIJKLM");
  EXPECT_EQ(marker.rfind("k1.", 0), 0u);
  auto back = m.open("staging", marker);
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  EXPECT_EQ(*back, "s-ABCDEFGHIJKLM");
  auto other = m.open("production", marker);
  ASSERT_FALSE(other.is_ok());
  EXPECT_EQ(other.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(other.status().message().rfind("invalid marker", 0), 0u);
  EXPECT_EQ(m.seal("staging", ""), "");  // no next page
}

TEST(ListMarkers, AlteredForgedOrForeignMarkersAreRefused) {
  const ListMarkers m;
  const std::string marker = m.seal("staging", "s-ABCDEFGHIJKLM");
  // Every single-character change is caught.
  for (size_t i = 0; i < marker.size(); ++i) {
    std::string t = marker;
    t[i] = t[i] == 'a' ? 'b' : 'a';
    EXPECT_FALSE(m.open("staging", t).is_ok()) << t;
  }
  // Another cursor under the same MAC.
  const std::string mac = marker.substr(marker.rfind('.') + 1);
  EXPECT_FALSE(m.open("staging", "k1.732d4141." + mac).is_ok());
  // The same marker text from another process's key.
  const ListMarkers other;
  EXPECT_FALSE(other.open("staging", marker).is_ok());
  // A fixed key gives the same marker (and so does the same process).
  EXPECT_EQ(ListMarkers("key").seal("e", "c"), ListMarkers("key").seal("e", "c"));
  for (const char* junk : {"", "k1.", "k1..", "k1.zz.00", "p1.1f", "garbage", "k1.00.",
                           "k1.7.0123456789abcdef0123456789abcdef"}) {
    EXPECT_FALSE(m.open("staging", junk).is_ok()) << junk;
  }
  EXPECT_FALSE(m.open("staging", "k1." + std::string(100000, 'a') + "." + mac).is_ok());
}

TEST(ListMarkers, EnvironmentAndCursorCannotTradeBytes) {
  const ListMarkers m("key");
  // ("ab", "c") and ("a", "bc") sign different data.
  const std::string marker = m.seal("ab", "c");
  const std::string mac = marker.substr(marker.rfind('.') + 1);
  EXPECT_FALSE(m.open("a", "k1." + std::string("6263") + "." + mac).is_ok());
}

}  // namespace
}  // namespace kiln::server
