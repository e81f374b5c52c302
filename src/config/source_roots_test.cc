// Source roots in kiln.toml: what a root may be, its canonical form, and
// that a mistake names the key. (The check of sources against roots is
// tested where submit applies it: src/cluster/step_service_test.cc.)
#include "config/source_roots.h"

#include <gtest/gtest.h>

#include "config/server_config.h"

namespace kiln::config {
namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(SourceRoots, CanonicalFormsEndInASlashAndNormaliseRemotePrefixes) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/srv/imagery/production/", "/srv/imagery/production/"},
      {"/srv/imagery/production", "/srv/imagery/production/"},
      {"/srv/imagery/./production/../production//", "/srv/imagery/production/"},
      {"imagery", "/etc/kiln/imagery/"},
      {"../data/", "/etc/data/"},
      {"/vsis3/rf-production-imagery/", "/vsis3/rf-production-imagery/"},
      {"/vsis3/rf-production-imagery", "/vsis3/rf-production-imagery/"},
      {"/vsigs/bucket/prefix/", "/vsigs/bucket/prefix/"},
      {"https://imagery.example.com/scenes/", "https://imagery.example.com/scenes/"},
      {"HTTPS://Imagery.Example.com:443/scenes", "https://imagery.example.com/scenes/"},
      {"http://imagery.example.com:80/", "http://imagery.example.com/"},
      {"http://imagery.example.com:8080", "http://imagery.example.com:8080/"},
      {"/vsicurl/https://imagery.example.com/%7Escenes/", "https://imagery.example.com/~scenes/"},
  };
  for (const auto& [root, want] : cases) {
    auto r = canonical_root(root, "/etc/kiln", "environment[0].source_roots[0]");
    ASSERT_TRUE(r.is_ok()) << root << ": " << r.status().to_string();
    EXPECT_EQ(*r, want) << root;
  }
}

TEST(SourceRoots, SpecialSyntaxesAreNotRoots) {
  for (const std::string root :
       {"", "MEM:::DATAPOINTER=0", "vrt:///srv/x.vrt", "<VRTDataset/>", "/vsimem/",
        "/vsizip//srv/a.zip/", "/vsis3/", "/vsis3/bucket/../other/", "s3://bucket/",
        "file:///srv/imagery/", "https://user@imagery.example.com/",
        "https://imagery.example.com/?x=1", "https://imagery.example.com/a/../b/",
        "https://imagery.example.com:0/", "ftp://host/", "NETCDF:/srv/x.nc"}) {
    auto r = canonical_root(root, "/etc/kiln", "environment[1].source_roots[2]");
    ASSERT_FALSE(r.is_ok()) << "accepted: '" << root << "' as " << *r;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(contains(r.status().message(), "environment[1].source_roots[2]"))
        << r.status().message();
  }
}

std::string config_with_roots(const std::string& roots_line) {
  return "[[environment]]\nname = \"production\"\ntoken_sha256 = [\"" + std::string(64, 'a') +
         "\"]\ncatalog = \"cat\"\n" + roots_line + "\n";
}

TEST(SourceRoots, ConfigKeepsTheCanonicalRootsAndNamesTheKeyOfABadOne) {
  auto c = parse_config(config_with_roots("source_roots = [\"/srv/imagery/production\", "
                                          "\"/vsis3/rf-production-imagery/\", "
                                          "\"https://imagery.example.com/scenes/\"]"),
                        "/etc/kiln");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->environments[0].source_roots,
            (std::vector<std::string>{"/srv/imagery/production/", "/vsis3/rf-production-imagery/",
                                      "https://imagery.example.com/scenes/"}));

  // Missing or empty: allowed, and it means nothing may be read.
  for (const char* line : {"", "source_roots = []"}) {
    auto e = parse_config(config_with_roots(line), "/etc/kiln");
    ASSERT_TRUE(e.is_ok()) << line << ": " << e.status().to_string();
    EXPECT_TRUE(e->environments[0].source_roots.empty());
  }
  for (const char* line : {"source_roots = \"/srv/\"", "source_roots = [1]",
                           "source_roots = [\"/srv/\", \"MEM:::\"]"}) {
    auto e = parse_config(config_with_roots(line), "/etc/kiln");
    ASSERT_FALSE(e.is_ok()) << line;
    EXPECT_TRUE(contains(e.status().message(), "environment[0].source_roots"))
        << e.status().message();
  }
}

TEST(SourceRoots, NoRootsMeansNothingIsReadAndTheMessageSaysSo) {
  auto r = check_source({}, "staging", "sources[0].uri", "/srv/imagery/a.tif");
  ASSERT_FALSE(r.is_ok());
  EXPECT_TRUE(contains(r.status().message(), "'staging' has no source roots"))
      << r.status().message();
  EXPECT_TRUE(contains(r.status().message(), "source_roots")) << r.status().message();
}

}  // namespace
}  // namespace kiln::config
