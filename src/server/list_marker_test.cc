// List markers: they round-trip for the environment that got them and are
// refused to any other, altered, forged or sealed under another key; the
// server's key is kept in its state directory, so they survive a restart.
#include "server/list_marker.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

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

TEST(ListMarkers, TheKeptKeyIsDrawnOncePrivateAndReadBackAfterARestart) {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("kiln_marker_key_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "list-marker.key").string();

  auto first = ListMarkers::load_or_create_key(path);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  EXPECT_EQ(first->size(), 32u);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // "After a restart": the same key, so a marker handed out before opens.
  auto again = ListMarkers::load_or_create_key(path);
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_EQ(*again, *first);
  const std::string marker = ListMarkers(*first).seal("staging", "s-ABCDEFGHIJKLM");
  auto back = ListMarkers(*again).open("staging", marker);
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  EXPECT_EQ(*back, "s-ABCDEFGHIJKLM");

  // A damaged key file is an error naming it, not a new key in silence.
  std::ofstream(path, std::ios::trunc) << "not a key\n";
  auto bad = ListMarkers::load_or_create_key(path);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kIOError);
  EXPECT_NE(bad.status().message().find(path), std::string::npos) << bad.status().message();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kiln::server
