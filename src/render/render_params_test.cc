#include "render/render_params.h"

#include <gtest/gtest.h>

#include <string>

namespace kiln::render {
namespace {

// The message of a refused query; fails the test if it was accepted.
std::string refusal(std::string_view query) {
  Result<RenderParams> p = parse_render_query(query);
  EXPECT_FALSE(p.is_ok()) << query;
  if (p.is_ok()) return "";
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument) << query;
  return p.status().message();
}

TEST(RenderParams, ParsesEveryParameter) {
  Result<RenderParams> p =
      parse_render_query("bidx=3,2,1&rescale=0,3000;10,2000.5;-5,1e4&format=webp");
  ASSERT_TRUE(p.is_ok()) << p.status().message();
  EXPECT_EQ(p->bidx, (std::vector<int>{3, 2, 1}));
  ASSERT_EQ(p->rescale.size(), 3u);
  EXPECT_EQ(p->rescale[1].min, 10);
  EXPECT_EQ(p->rescale[1].max, 2000.5);
  EXPECT_EQ(p->rescale[2].min, -5);
  EXPECT_EQ(p->rescale[2].max, 10000);
  EXPECT_EQ(p->format, ImageFormat::kWebp);
  EXPECT_FALSE(p->hillshade);

  p = parse_render_query("colormap=rdylgn&rescale=-1,1");
  ASSERT_TRUE(p.is_ok()) << p.status().message();
  EXPECT_EQ(p->colormap, "RdYlGn");
  EXPECT_EQ(p->format, ImageFormat::kPng);

  p = parse_render_query("hillshade&azimuth=90&altitude=30&z_factor=2.5&colormap=greys");
  ASSERT_TRUE(p.is_ok()) << p.status().message();
  ASSERT_TRUE(p->hillshade);
  EXPECT_EQ(p->hillshade->azimuth, 90);
  EXPECT_EQ(p->hillshade->altitude, 30);
  EXPECT_EQ(p->hillshade->z_factor, 2.5);

  p = parse_render_query("hillshade=true");
  ASSERT_TRUE(p.is_ok());
  EXPECT_EQ(p->hillshade->azimuth, 315);
  EXPECT_EQ(p->hillshade->altitude, 45);
  EXPECT_EQ(p->hillshade->z_factor, 1);
  p = parse_render_query("hillshade=false");
  ASSERT_TRUE(p.is_ok());
  EXPECT_FALSE(p->hillshade);
}

TEST(RenderParams, PercentDecodesAndSkipsEmptyPairs) {
  Result<RenderParams> p = parse_render_query("&&rescale=0%2C100%3B5,6;7,8&bidx=1%2C2,3&");
  ASSERT_TRUE(p.is_ok()) << p.status().message();
  ASSERT_EQ(p->rescale.size(), 3u);
  EXPECT_EQ(p->rescale[0].max, 100);
  EXPECT_EQ(p->bidx.size(), 3u);
}

TEST(RenderParams, EachErrorNamesTheParameter) {
  EXPECT_NE(refusal("bidx=").find("bidx:"), std::string::npos);
  EXPECT_NE(refusal("bidx=0").find("bidx:"), std::string::npos);
  EXPECT_NE(refusal("bidx=1,2").find("bidx: give 1"), std::string::npos);
  EXPECT_NE(refusal("bidx=1,2,3,4").find("bidx:"), std::string::npos);
  EXPECT_NE(refusal("bidx=-1").find("bidx:"), std::string::npos);
  EXPECT_NE(refusal("bidx=65536").find("bidx:"), std::string::npos);
  EXPECT_NE(refusal("bidx=99999999999999999999").find("bidx:"), std::string::npos);
  EXPECT_NE(refusal("bidx=1.5").find("bidx:"), std::string::npos);
  EXPECT_NE(refusal("bidx= 1").find("bidx:"), std::string::npos);
  EXPECT_NE(refusal("rescale=1").find("rescale:"), std::string::npos);
  EXPECT_NE(refusal("rescale=1,").find("rescale:"), std::string::npos);
  EXPECT_NE(refusal("rescale=a,b").find("rescale:"), std::string::npos);
  EXPECT_NE(refusal("rescale=nan,1").find("rescale:"), std::string::npos);
  EXPECT_NE(refusal("rescale=0,inf").find("rescale:"), std::string::npos);
  EXPECT_NE(refusal("rescale=0,1e400").find("rescale:"), std::string::npos);
  EXPECT_NE(refusal("rescale=0,1e301").find("out of range"), std::string::npos);
  EXPECT_NE(refusal("rescale=5,5").find("min must be less than max"), std::string::npos);
  EXPECT_NE(refusal("rescale=6,5").find("rescale:"), std::string::npos);
  EXPECT_NE(refusal("rescale=0,1;0,1;0,1;0,1").find("at most 3"), std::string::npos);
  EXPECT_NE(refusal("rescale=0,1,2").find("rescale:"), std::string::npos);
  EXPECT_NE(refusal("bidx=1,2,3&rescale=0,1;0,2").find("rescale: give one"), std::string::npos);
  EXPECT_NE(refusal("colormap=jet").find("colormap: no colour map 'jet'; known: viridis"),
            std::string::npos);
  EXPECT_NE(refusal("colormap=viridis&bidx=1,2,3").find("colormap: applies to a single band"),
            std::string::npos);
  EXPECT_NE(refusal("format=jpeg").find("format: 'jpeg' is not png or webp"), std::string::npos);
  EXPECT_NE(refusal("format=PNG").find("format:"), std::string::npos);
  EXPECT_NE(refusal("hillshade=maybe").find("hillshade:"), std::string::npos);
  EXPECT_NE(refusal("hillshade&bidx=1,2,3").find("hillshade: needs one"), std::string::npos);
  EXPECT_NE(refusal("hillshade&rescale=0,1").find("rescale: not used with hillshade"),
            std::string::npos);
  EXPECT_NE(refusal("azimuth=10").find("azimuth: applies only with hillshade"), std::string::npos);
  EXPECT_NE(refusal("hillshade&azimuth=361").find("azimuth:"), std::string::npos);
  EXPECT_NE(refusal("hillshade&azimuth=-1").find("azimuth:"), std::string::npos);
  EXPECT_NE(refusal("hillshade&altitude=91").find("altitude:"), std::string::npos);
  EXPECT_NE(refusal("hillshade&altitude=x").find("altitude:"), std::string::npos);
  EXPECT_NE(refusal("hillshade&z_factor=0").find("z_factor:"), std::string::npos);
  EXPECT_NE(refusal("hillshade&z_factor=-2").find("z_factor:"), std::string::npos);
  EXPECT_NE(refusal("hillshade&z_factor=1e7").find("z_factor:"), std::string::npos);
  EXPECT_NE(refusal("colourmap=viridis").find("'colourmap': unknown parameter"), std::string::npos);
  EXPECT_NE(refusal("bidx=1&bidx=2").find("bidx: given more than once"), std::string::npos);
  EXPECT_NE(refusal("rescale=0%2").find("query: bad %-escape"), std::string::npos);
  EXPECT_NE(refusal("rescale=0%zz1").find("query: bad %-escape"), std::string::npos);
  EXPECT_NE(refusal("colormap=a%00b").find("query: NUL"), std::string::npos);
}

TEST(RenderParams, BoundsTenantInput) {
  EXPECT_NE(refusal(std::string(kMaxQueryBytes + 1, 'a')).find("query:"), std::string::npos);
  std::string many;
  for (size_t i = 0; i <= kMaxParams; ++i) many += "x" + std::to_string(i) + "=1&";
  EXPECT_NE(refusal(many).find("more than"), std::string::npos);
  QueryPairs long_value = {{"colormap", std::string(kMaxValueBytes + 1, 'v')}};
  Result<RenderParams> p = parse_render_params(long_value);
  ASSERT_FALSE(p.is_ok());
  EXPECT_NE(p.status().message().find("colormap: value of"), std::string::npos);
  // Quoted tenant text is cut short and carries no control bytes.
  std::string msg = refusal("colormap=%1b%5b31m" + std::string(200, 'z'));
  EXPECT_EQ(msg.find('\x1b'), std::string::npos);
  EXPECT_LT(msg.size(), 200u);
}

TEST(RenderParams, NoStringCrashesTheParser) {
  // Every byte at every position of a few templates: the parser returns a
  // value or an error, never crashes (ASan/UBSan builds check the rest).
  const std::string templates[] = {"bidx=1,2,3&rescale=0,1;2,3", "hillshade&azimuth=1e2",
                                   "colormap=viridis&format=png"};
  int accepted = 0;
  for (const std::string& t : templates) {
    for (size_t pos = 0; pos < t.size(); ++pos) {
      for (int c = 0; c < 256; ++c) {
        std::string q = t;
        q[pos] = static_cast<char>(c);
        accepted += parse_render_query(q).is_ok();
      }
    }
  }
  EXPECT_GT(accepted, 0);
}

TEST(RenderParams, CallerParametersCanBeAllowed) {
  QueryPairs pairs = {{"sig", "abc"}, {"colormap", "magma"}};
  EXPECT_FALSE(parse_render_params(pairs).is_ok());
  Result<RenderParams> p = parse_render_params(pairs, {"sig"});
  ASSERT_TRUE(p.is_ok());
  EXPECT_EQ(p->colormap, "magma");
}

TEST(RenderParams, CheckAgainstLayer) {
  RenderParams p = *parse_render_query("");
  ASSERT_TRUE(check_against_layer(&p, 6).is_ok());
  EXPECT_EQ(p.bidx, (std::vector<int>{1, 2, 3}));
  p = *parse_render_query("colormap=viridis");
  ASSERT_TRUE(check_against_layer(&p, 6).is_ok());
  EXPECT_EQ(p.bidx, (std::vector<int>{1}));
  p = *parse_render_query("");
  ASSERT_TRUE(check_against_layer(&p, 2).is_ok());
  EXPECT_EQ(p.bidx, (std::vector<int>{1}));
  p = *parse_render_query("bidx=4");
  Status s = check_against_layer(&p, 3);
  EXPECT_EQ(s.message(), "bidx: band 4 does not exist; the layer has 3 bands");
  p = *parse_render_query("rescale=0,1;0,2");
  s = check_against_layer(&p, 1);
  EXPECT_NE(s.message().find("rescale: give one min,max pair or one per band shown (1)"),
            std::string::npos);
}

}  // namespace
}  // namespace kiln::render
