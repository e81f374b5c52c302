// Ingest definitions. Most cases are files under tests/definitions/:
//   good/NAME.json       must load; canonical/NAME.json is the expected
//                        to_json() of its definitions (an array, one per layer)
//   bad/NAME.json        must fail; bad/errors.tsv gives, per file, a
//                        substring the error message must contain
// and examples/*.json must load. The unit tests below cover what files
// cannot express (NaN/inf values, missing files, the helper tables).
#include "ingest/definition.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ingest/raster_foundry.h"

namespace kiln::ingest {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path source_dir() { return fs::path(KILN_SOURCE_DIR); }
fs::path definitions_dir() { return source_dir() / "tests" / "definitions"; }

// *.json files in `dir`, sorted, as paths relative to the source dir.
std::vector<std::string> json_files(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".json") {
      out.push_back(fs::relative(entry.path(), source_dir()).string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string test_name(const testing::TestParamInfo<std::string>& info) {
  std::string name = fs::path(info.param).stem().string();
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

json read_json(const fs::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot open " << path;
  return json::parse(in);
}

bool same_double(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

bool same_optional(const std::optional<double>& a, const std::optional<double>& b) {
  return a.has_value() == b.has_value() && (!a || same_double(*a, *b));
}

// Field-by-field equality (NaN equals NaN: it is a value here, "nan").
// Update when a field is added to IngestDefinition.
void expect_same(const IngestDefinition& a, const IngestDefinition& b) {
  EXPECT_EQ(a.layer, b.layer);
  EXPECT_EQ(a.format, b.format);
  EXPECT_EQ(a.id, b.id);
  ASSERT_EQ(a.sources.size(), b.sources.size());
  for (size_t i = 0; i < a.sources.size(); ++i) {
    SCOPED_TRACE("sources[" + std::to_string(i) + "]");
    const SourceDef& x = a.sources[i];
    const SourceDef& y = b.sources[i];
    EXPECT_EQ(x.uri, y.uri);
    ASSERT_EQ(x.bands.size(), y.bands.size());
    for (size_t j = 0; j < x.bands.size(); ++j) {
      EXPECT_EQ(x.bands[j].source_band, y.bands[j].source_band);
      EXPECT_EQ(x.bands[j].target, y.bands[j].target);
    }
    EXPECT_EQ(x.crs, y.crs);
    EXPECT_EQ(x.extent, y.extent);
    EXPECT_TRUE(same_optional(x.nodata, y.nodata));
  }
  const OutputDef& p = a.output;
  const OutputDef& q = b.output;
  EXPECT_EQ(p.catalog, q.catalog);
  EXPECT_EQ(p.environment, q.environment);
  EXPECT_EQ(p.layout, q.layout);
  EXPECT_EQ(p.tile_size, q.tile_size);
  EXPECT_EQ(p.min_zoom, q.min_zoom);
  EXPECT_EQ(p.max_zoom, q.max_zoom);
  EXPECT_EQ(p.pyramid, q.pyramid);
  EXPECT_EQ(p.cell_type, q.cell_type);
  EXPECT_TRUE(same_optional(p.nodata, q.nodata));
  EXPECT_EQ(p.resample, q.resample);
  EXPECT_EQ(p.pyramid_resample, q.pyramid_resample);
  EXPECT_EQ(p.encoding.format, q.encoding.format);
  EXPECT_EQ(p.encoding.png_level, q.encoding.png_level);
  EXPECT_EQ(p.encoding.webp_lossless, q.encoding.webp_lossless);
  EXPECT_EQ(p.encoding.webp_quality, q.encoding.webp_quality);
  EXPECT_EQ(p.encoding.tiff_compression, q.encoding.tiff_compression);
  EXPECT_EQ(p.encoding.tiff_level, q.encoding.tiff_level);
  EXPECT_TRUE(same_optional(p.encoding.nodata, q.encoding.nodata));
  EXPECT_EQ(p.curve, q.curve);
  EXPECT_EQ(p.histogram_buckets, q.histogram_buckets);
  EXPECT_EQ(p.error_threshold, q.error_threshold);
  EXPECT_EQ(p.band_names, q.band_names);
}

// parse(to_json(d)) == d, both from the JSON value and through its text.
void expect_round_trip(const IngestDefinition& def) {
  const json j = to_json(def);
  for (const json& doc : {j, json::parse(j.dump())}) {
    auto again = parse_definition(doc);
    ASSERT_TRUE(again.is_ok()) << again.status().to_string() << "\n" << doc.dump(2);
    ASSERT_EQ(again->size(), 1u);
    expect_same(def, again->front());
  }
}

Result<IngestDefinition> parse_one(const std::string& text) {
  KILN_ASSIGN_OR_RETURN(auto defs, parse_definition(json::parse(text)));
  EXPECT_EQ(defs.size(), 1u);
  return defs.front();
}

// The smallest valid Kiln definition, for tests that change one thing.
json minimal_doc() {
  return json::parse(R"({"layer": "l", "sources": [{"uri": "a.tif"}],
                         "output": {"catalog": "cat"}})");
}

std::string error_of(const json& doc) {
  auto r = parse_definition(doc);
  if (r.is_ok()) return "(parsed without error)";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  return r.status().message();
}

// ---------------------------------------------------------------------------
// Data-driven cases.

class GoodDefinition : public testing::TestWithParam<std::string> {};

TEST_P(GoodDefinition, LoadsAsCanonicalFormAndRoundTrips) {
  const std::string file = GetParam();
  auto defs = load_definition((source_dir() / file).string());
  ASSERT_TRUE(defs.is_ok()) << defs.status().to_string();

  const fs::path canonical = definitions_dir() / "canonical" / fs::path(file).filename();
  ASSERT_TRUE(fs::exists(canonical)) << "missing expected form " << canonical;
  json actual = json::array();
  for (const IngestDefinition& d : *defs) actual.push_back(to_json(d));
  EXPECT_EQ(actual, read_json(canonical)) << "to_json gave:\n" << actual.dump(2);

  for (const IngestDefinition& d : *defs) {
    SCOPED_TRACE("layer " + d.layer);
    expect_round_trip(d);
  }
}

INSTANTIATE_TEST_SUITE_P(Files, GoodDefinition,
                         testing::ValuesIn(json_files(definitions_dir() / "good")), test_name);

// bad/errors.tsv: "<file name>\t<substring of the error message>" per line;
// '#' starts a comment line.
std::map<std::string, std::string> expected_errors() {
  std::map<std::string, std::string> table;
  std::ifstream in(definitions_dir() / "bad" / "errors.tsv");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    if (tab == std::string::npos) {
      ADD_FAILURE() << "errors.tsv: no tab in line: " << line;
      continue;
    }
    EXPECT_TRUE(table.emplace(line.substr(0, tab), line.substr(tab + 1)).second)
        << "errors.tsv lists " << line.substr(0, tab) << " twice";
  }
  return table;
}

class BadDefinition : public testing::TestWithParam<std::string> {};

TEST_P(BadDefinition, FailsNamingTheField) {
  const std::string file = GetParam();
  const auto table = expected_errors();
  auto it = table.find(fs::path(file).filename().string());
  ASSERT_NE(it, table.end()) << file << " has no row in bad/errors.tsv";
  auto defs = load_definition((source_dir() / file).string());
  ASSERT_FALSE(defs.is_ok()) << file << " loaded without error";
  EXPECT_EQ(defs.status().code(), StatusCode::kInvalidArgument);
  const std::string& message = defs.status().message();
  EXPECT_NE(message.find(it->second), std::string::npos)
      << "message: " << message << "\nexpected to contain: " << it->second;
  // Every message names the file it came from.
  EXPECT_EQ(message.rfind("definition '" + (source_dir() / file).string() + "': ", 0), 0u)
      << message;
}

INSTANTIATE_TEST_SUITE_P(Files, BadDefinition,
                         testing::ValuesIn(json_files(definitions_dir() / "bad")), test_name);

TEST(BadDefinitionTable, EveryRowHasAFile) {
  for (const auto& [file, substring] : expected_errors()) {
    EXPECT_TRUE(fs::exists(definitions_dir() / "bad" / file)) << "errors.tsv names " << file;
  }
  EXPECT_GE(expected_errors().size(), 20u);
}

class Example : public testing::TestWithParam<std::string> {};

TEST_P(Example, Loads) {
  auto defs = load_definition((source_dir() / GetParam()).string());
  ASSERT_TRUE(defs.is_ok()) << defs.status().to_string();
  for (const IngestDefinition& d : *defs) expect_round_trip(d);
}

INSTANTIATE_TEST_SUITE_P(Files, Example, testing::ValuesIn(json_files(source_dir() / "examples")),
                         test_name);

TEST(Examples, TheRequiredOnesExist) {
  for (const char* name :
       {"landsat-rgb.json", "mosaic-uint16-tif.json", "floating.json", "raster-foundry.json"}) {
    EXPECT_TRUE(fs::exists(source_dir() / "examples" / name)) << name;
  }
}

TEST(Examples, LandsatRgbIsTheDemoSceneAsPng) {
  auto defs = load_definition((source_dir() / "examples" / "landsat-rgb.json").string());
  ASSERT_TRUE(defs.is_ok()) << defs.status().to_string();
  const IngestDefinition& d = defs->front();
  ASSERT_EQ(d.sources.size(), 1u);
  EXPECT_EQ(d.sources[0].uri, "data/L7_ETMs.tif");
  EXPECT_TRUE(fs::exists(source_dir() / d.sources[0].uri)) << "run scripts/fetch-data.sh";
  ASSERT_EQ(d.sources[0].bands.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(d.sources[0].bands[i].source_band, 3 - i);
    EXPECT_EQ(d.sources[0].bands[i].target, i);
  }
  EXPECT_EQ(d.output.encoding.format, TileFormat::kPng);
  EXPECT_EQ(d.output.layout, Layout::kZoomed);
  EXPECT_EQ(declared_band_count(d), 3);
}

TEST(Examples, RasterFoundryExampleConvertsToALocalZoomedLayer) {
  auto defs = load_definition((source_dir() / "examples" / "raster-foundry.json").string());
  ASSERT_TRUE(defs.is_ok()) << defs.status().to_string();
  for (const IngestDefinition& d : *defs) {
    EXPECT_EQ(d.format, "raster-foundry");
    EXPECT_EQ(d.output.catalog, "catalog");
    EXPECT_EQ(d.output.layout, Layout::kZoomed);
    EXPECT_EQ(d.output.band_names, (std::vector<std::string>{"red", "green", "blue"}));
    for (const SourceDef& s : d.sources) {
      EXPECT_TRUE(fs::exists(source_dir() / s.uri)) << s.uri;
    }
  }
}

// ---------------------------------------------------------------------------
// Kiln format.

TEST(KilnFormat, MinimalDefinitionTakesTheDocumentedDefaults) {
  auto r = parse_definition(minimal_doc());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const IngestDefinition& d = r->front();
  EXPECT_EQ(d.format, "kiln");
  EXPECT_EQ(d.id, "");
  EXPECT_TRUE(d.sources[0].bands.empty());
  EXPECT_FALSE(d.sources[0].crs);
  EXPECT_FALSE(d.sources[0].nodata);
  const OutputDef& o = d.output;
  EXPECT_EQ(o.environment, "default");
  EXPECT_EQ(o.layout, Layout::kZoomed);
  EXPECT_EQ(o.tile_size, 256);
  EXPECT_FALSE(o.min_zoom);
  EXPECT_FALSE(o.max_zoom);
  EXPECT_TRUE(o.pyramid);
  EXPECT_FALSE(o.cell_type);
  EXPECT_FALSE(o.nodata);
  EXPECT_EQ(o.resample, WarpResample::kBilinear);
  EXPECT_EQ(o.pyramid_resample, PyramidResample::kAverage);
  EXPECT_EQ(o.encoding.format, TileFormat::kPng);
  EXPECT_TRUE(o.auto_format);  // make_plan picks png or tif
  EXPECT_EQ(o.curve, Curve::kZOrder);
  EXPECT_EQ(o.histogram_buckets, 256);
  EXPECT_EQ(o.error_threshold, 0.125);
  EXPECT_TRUE(o.band_names.empty());
  EXPECT_EQ(declared_band_count(d), 0);
}

TEST(KilnFormat, MisspeltFieldIsNamedWithASuggestion) {
  json doc = minimal_doc();
  doc["output"]["tile_sise"] = 512;
  EXPECT_EQ(error_of(doc), "output.tile_sise: unknown field (did you mean tile_size?)");
  doc = minimal_doc();
  doc["output"]["histogramBuckets"] = 512;
  EXPECT_EQ(error_of(doc),
            "output.histogramBuckets: unknown field (did you mean histogram_buckets?)");
  doc = minimal_doc();
  doc["output"]["colour"] = "red";
  EXPECT_EQ(error_of(doc), "output.colour: unknown field");
}

TEST(KilnFormat, BandsMapInOrderUnlessTargetsAreGiven) {
  auto d = parse_one(R"({"layer": "l", "output": {"catalog": "c", "encoding": {"format": "tif"}},
    "sources": [{"uri": "a.tif", "bands": [4, 2]},
                {"uri": "b.tif", "bands": [1], "target_bands": [2]}]})");
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  ASSERT_EQ(d->sources[0].bands.size(), 2u);
  EXPECT_EQ(d->sources[0].bands[0].source_band, 4);
  EXPECT_EQ(d->sources[0].bands[0].target, 0);
  EXPECT_EQ(d->sources[0].bands[1].source_band, 2);
  EXPECT_EQ(d->sources[0].bands[1].target, 1);
  EXPECT_EQ(d->sources[1].bands[0].source_band, 1);
  EXPECT_EQ(d->sources[1].bands[0].target, 2);
  EXPECT_EQ(declared_band_count(*d), 3);
}

TEST(KilnFormat, NanNodataReadsAndWritesAsTheStringNan) {
  auto d = parse_one(R"({"layer": "l", "sources": [{"uri": "a.tif", "nodata": "nan"}],
    "output": {"catalog": "c", "nodata": "NaN", "cell_type": "float32",
               "encoding": {"format": "tif"}}})");
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  ASSERT_TRUE(d->sources[0].nodata && d->output.nodata);
  EXPECT_TRUE(std::isnan(*d->sources[0].nodata));
  EXPECT_TRUE(std::isnan(*d->output.nodata));
  const json j = to_json(*d);
  EXPECT_EQ(j["sources"][0]["nodata"], "nan");
  EXPECT_EQ(j["output"]["nodata"], "nan");
  expect_round_trip(*d);
}

TEST(KilnFormat, NullMeansNotSet) {
  auto d = parse_one(R"({"layer": "l", "sources": [{"uri": "a.tif", "nodata": null,
    "crs": null}], "output": {"catalog": "c", "nodata": null, "zoom": {"min": null,
    "max": "auto"}, "band_names": null}})");
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_FALSE(d->sources[0].nodata);
  EXPECT_FALSE(d->sources[0].crs);
  EXPECT_FALSE(d->output.nodata);
  EXPECT_FALSE(d->output.min_zoom);
  EXPECT_FALSE(d->output.max_zoom);
}

TEST(KilnFormat, GdalNamesPassThroughUnchanged) {
  for (const char* uri : {"/vsicurl/https://example.com/a.tif", "/vsis3/bucket/key.tif",
                          "NETCDF:\"f.nc\":sst", "relative/dir/a.tif"}) {
    json doc = minimal_doc();
    doc["sources"][0]["uri"] = uri;
    auto d = parse_definition(doc);
    ASSERT_TRUE(d.is_ok()) << d.status().to_string();
    EXPECT_EQ(d->front().sources[0].uri, uri);
  }
}

TEST(KilnFormat, LayoutAndCurveNames) {
  EXPECT_STREQ(layout_name(Layout::kZoomed), "zoomed");
  EXPECT_STREQ(layout_name(Layout::kFloating), "floating");
  EXPECT_STREQ(curve_name(Curve::kZOrder), "zorder");
  EXPECT_STREQ(curve_name(Curve::kHilbert), "hilbert");
}

// ---------------------------------------------------------------------------
// validate() on definitions built in code (as the CLI builds them from flags).

IngestDefinition valid_definition() {
  IngestDefinition d;
  d.layer = "l";
  d.sources.push_back(SourceDef{"a.tif", {{3, 0}, {2, 1}, {1, 2}}, {}, {}, {}});
  d.output.catalog = "cat";
  return d;
}

TEST(Validate, AcceptsAValidDefinition) { EXPECT_TRUE(validate(valid_definition()).is_ok()); }

TEST(Validate, RefusesNonFiniteErrorThreshold) {
  IngestDefinition d = valid_definition();
  d.output.error_threshold = std::nan("");
  EXPECT_NE(validate(d).message().find("output.error_threshold: must be a finite number >= 0"),
            std::string::npos)
      << validate(d).message();
  d.output.error_threshold = INFINITY;
  EXPECT_NE(validate(d).message().find("got inf"), std::string::npos) << validate(d).message();
}

TEST(Validate, RefusesInfiniteNodata) {
  IngestDefinition d = valid_definition();
  d.sources[0].nodata = -INFINITY;
  EXPECT_EQ(validate(d).message(), "sources[0].nodata: must be a finite number or \"nan\"");
  d = valid_definition();
  d.output.nodata = INFINITY;
  EXPECT_EQ(validate(d).message(), "output.nodata: must be a finite number or \"nan\"");
}

TEST(Validate, ChecksSourceBandsAndTargets) {
  IngestDefinition d = valid_definition();
  d.sources[0].bands[1].source_band = 0;
  EXPECT_EQ(validate(d).message().rfind("sources[0].bands[1]: must be >= 1", 0), 0u)
      << validate(d).message();
  d = valid_definition();
  d.sources[0].bands[2].target = 0;
  EXPECT_EQ(validate(d).message().rfind(
                "sources[0].target_bands[2]: output band 0 is already fed by bands[0]", 0),
            0u)
      << validate(d).message();
}

TEST(Validate, AMosaicMayFeedTheSameBandFromSeveralSources) {
  IngestDefinition d = valid_definition();
  d.sources.push_back(SourceDef{"b.tif", {{1, 0}, {2, 1}, {3, 2}}, {}, {}, {}});
  EXPECT_TRUE(validate(d).is_ok()) << validate(d).message();
}

TEST(Validate, PngAndWebpRefuseWhatTheyCannotHold) {
  IngestDefinition d = valid_definition();
  d.output.cell_type = CellType::kFloat32;
  EXPECT_EQ(validate(d).message().rfind("output.encoding.format: png tiles hold", 0), 0u)
      << validate(d).message();
  d.output.encoding.format = TileFormat::kTiff;
  EXPECT_TRUE(validate(d).is_ok());
  d.output.encoding.format = TileFormat::kWebp;
  d.output.cell_type = CellType::kUInt16;
  EXPECT_EQ(validate(d).message().rfind("output.encoding.format: webp tiles hold", 0), 0u)
      << validate(d).message();
  d.output.cell_type = CellType::kUInt8;
  EXPECT_TRUE(validate(d).is_ok()) << validate(d).message();
}

TEST(Validate, DeclaredBandCountIsZeroWhenASourceReadsAllBands) {
  IngestDefinition d = valid_definition();
  EXPECT_EQ(declared_band_count(d), 3);
  d.sources.push_back(SourceDef{"b.tif", {}, {}, {}, {}});
  EXPECT_EQ(declared_band_count(d), 0);
  d.sources.push_back(SourceDef{"c.tif", {{1, 7}}, {}, {}, {}});
  EXPECT_EQ(declared_band_count(d), 0);
  // With every band explicit a gap is refused; with "all bands" it cannot be known.
  EXPECT_TRUE(validate(d).is_ok()) << validate(d).message();
  d.sources.erase(d.sources.begin() + 1);
  EXPECT_EQ(declared_band_count(d), 8);
  EXPECT_EQ(validate(d).message().rfind("sources: no source feeds output band 3", 0), 0u)
      << validate(d).message();
}

// ---------------------------------------------------------------------------
// Files.

TEST(LoadDefinition, MissingFileSaysSo) {
  auto r = load_definition("/nonexistent/def.json");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(),
            "cannot read definition '/nonexistent/def.json': No such file or directory");
}

TEST(LoadDefinition, DirectorySaysSo) {
  const std::string dir = (source_dir() / "src").string();
  auto r = load_definition(dir);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), "cannot read definition '" + dir + "': Is a directory");
}

TEST(LoadDefinition, SyntaxErrorGivesLineAndColumn) {
  const fs::path path = fs::path(testing::TempDir()) / "kiln-syntax-error.json";
  {
    std::ofstream out(path);
    out << "{\n  \"layer\": \"l\",\n  \"sources\": [\n    {\"uri\": \"a.tif\"}\n  ]\n  \"output\"";
  }
  auto r = load_definition(path.string());
  fs::remove(path);
  ASSERT_FALSE(r.is_ok());
  // Parsing stops at the end of the unexpected token: the '"' that closes
  // "output" on line 6 (a comma is missing before it).
  EXPECT_NE(r.status().message().find("': invalid JSON at line 6, column 10: "), std::string::npos)
      << r.status().message();
}

// ---------------------------------------------------------------------------
// Raster Foundry helpers.

TEST(RasterFoundry, GeoTrellisCellTypes) {
  struct Case {
    const char* name;
    CellType type;
    std::optional<double> nodata;
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Case cases[] = {
      {"bool", CellType::kUInt8, std::nullopt},
      {"boolraw", CellType::kUInt8, std::nullopt},
      {"uint8", CellType::kUInt8, 0.0},
      {"uint8raw", CellType::kUInt8, std::nullopt},
      {"uint8ud255", CellType::kUInt8, 255.0},
      {"uint16", CellType::kUInt16, 0.0},
      {"uint16raw", CellType::kUInt16, std::nullopt},
      {"uint16ud0", CellType::kUInt16, 0.0},
      {"int16", CellType::kInt16, -32768.0},
      {"int16ud-1", CellType::kInt16, -1.0},
      {"int32", CellType::kInt32, -2147483648.0},
      {"int32raw", CellType::kInt32, std::nullopt},
      {"float32", CellType::kFloat32, nan},
      {"float32raw", CellType::kFloat32, std::nullopt},
      {"float32ud-999.5", CellType::kFloat32, -999.5},
      {"float64ud-3.4028234663852886E38", CellType::kFloat64, -3.4028234663852886E38},
      {"Float64", CellType::kFloat64, nan},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = parse_geotrellis_cell_type(c.name);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ(r->type, c.type);
    EXPECT_TRUE(same_optional(r->nodata, c.nodata));
  }
  for (const char* bad :
       {"int8", "int8raw", "int8ud5", "uint32", "uint8ud256", "uint8ud1.5", "float32udx", "uint8ud",
        "boolud1", "uint16rawx", "uint8ud 5", "uint8ud0x10", "float32udnan", ""}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(parse_geotrellis_cell_type(bad).is_ok());
  }
  EXPECT_NE(parse_geotrellis_cell_type("int8").status().message().find("GDAL 3.6"),
            std::string::npos);
}

TEST(RasterFoundry, SourceUris) {
  const std::pair<const char*, const char*> cases[] = {
      {"file:///opt/rf/a.tif", "/opt/rf/a.tif"},
      {"file://localhost/opt/a%20b.tif", "/opt/a b.tif"},
      {"file:/tmp/java-style.tif", "/tmp/java-style.tif"},
      {"s3://bucket/dir/key.tif", "/vsis3/bucket/dir/key.tif"},
      {"s3a://bucket/a%2Bb.tif", "/vsis3/bucket/a+b.tif"},
      {"http://landsat-pds.s3.amazonaws.com/L8/B4.TIF",
       "/vsicurl/http://landsat-pds.s3.amazonaws.com/L8/B4.TIF"},
      {"https://example.com/a.tif?x=%20", "/vsicurl/https://example.com/a.tif?x=%20"},
      {"data/a.tif", "data/a.tif"},
      {"/vsigs/bucket/a.tif", "/vsigs/bucket/a.tif"},
  };
  for (const auto& [uri, name] : cases) {
    auto r = gdal_name_for_source_uri(uri);
    ASSERT_TRUE(r.is_ok()) << uri << ": " << r.status().to_string();
    EXPECT_EQ(*r, name) << uri;
  }
  for (const char* bad : {"gs://bucket/a.tif", "s3://bucket", "s3://bucket/", "file://host/a.tif",
                          "hdfs://nn/a.tif"}) {
    EXPECT_FALSE(gdal_name_for_source_uri(bad).is_ok()) << bad;
  }
}

TEST(RasterFoundry, OutputUris) {
  EXPECT_EQ(*catalog_for_output_uri("file:///tmp/landsat-rgb"), "/tmp/landsat-rgb");
  EXPECT_EQ(*catalog_for_output_uri("catalog"), "catalog");
  auto s3 = catalog_for_output_uri("s3://rasterfoundry-staging-catalogs-us-east-1/test");
  ASSERT_FALSE(s3.is_ok());
  EXPECT_EQ(s3.status().message(),
            "only local catalogs (file:// or a path) are supported; got "
            "s3://rasterfoundry-staging-catalogs-us-east-1/test");
}

TEST(RasterFoundry, RecognisedByItsLayersMember) {
  EXPECT_TRUE(is_raster_foundry(json::parse(R"({"layers": []})")));
  EXPECT_FALSE(is_raster_foundry(minimal_doc()));
  EXPECT_FALSE(is_raster_foundry(json::parse("[1]")));
}

}  // namespace
}  // namespace kiln::ingest
