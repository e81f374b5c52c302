// CoreStepService: what a door may do with steps, scoped to the caller's
// environment. Validation at submit, isolation between environments,
// concurrency bounds, listings and logs; and one submit planned for real
// (LocalPlanner) on the project's own raster.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "cluster/test_cluster.h"
#include "config/limits.h"
#include "ingest/plan.h"

namespace kiln::cluster {
namespace {

using store::StepState;

// --- validation at submit --------------------------------------------------------

TEST_F(ClusterTest, SubmitRefusesTerminateClusterAndUnknownFailureActions) {
  for (const char* aof : {"TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW", "RETRY", ""}) {
    auto r = try_submit(staging(), "dem", aof);
    ASSERT_FALSE(r.is_ok()) << aof;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << aof;
    EXPECT_TRUE(contains(r.status().message(), "action_on_failure")) << r.status().message();
  }
  auto r = try_submit(staging(), "dem", "TERMINATE_CLUSTER");
  EXPECT_TRUE(contains(r.status().message(), "shared")) << r.status().message();
  EXPECT_TRUE(planner_.seen().empty()) << "a refused step was planned";
  auto page = steps_->list(staging(), {});
  ASSERT_TRUE(page.is_ok());
  EXPECT_TRUE(page->steps.empty());
  EXPECT_TRUE(try_submit(staging(), "dem", "CANCEL_AND_WAIT").is_ok());
}

TEST_F(ClusterTest, SubmitRefusesARelativeSourcePathNamingTheSource) {
  SubmitRequest req;
  req.definition = definition("dem");
  req.definition["sources"].push_back({{"uri", "data/olinda_dem_utm25s.tif"}});
  auto r = steps_->submit(staging(), req);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(r.status().message(), "sources[1].uri")) << r.status().message();
  EXPECT_TRUE(contains(r.status().message(), "relative")) << r.status().message();

  // An absolute path under the environment's roots is accepted.
  SubmitRequest ok;
  ok.definition = definition("dem");
  EXPECT_TRUE(steps_->submit(staging(), ok).is_ok());
}

// --- source roots (docs/security.md) ---------------------------------------------

// Submits `uri` as staging's only source; the refusal's message (empty when
// accepted).
std::string refusal(StepService* steps, const config::EnvironmentConfig& env,
                    const std::string& uri) {
  SubmitRequest req;
  req.definition = {
      {"layer", "probe"}, {"sources", {{{"uri", uri}}}}, {"output", {{"zoom", {{"max", 12}}}}}};
  auto r = steps->submit(env, req);
  if (r.is_ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << uri;
  return r.status().message();
}

TEST_F(ClusterTest, SubmitRefusesSourcesOutsideTheRootsAlikeWhetherTheyExistOrNot) {
  namespace fs = std::filesystem;
  const fs::path outside = dir_ / "outside";
  fs::create_directories(outside);
  std::ofstream(outside / "secret.tif") << "production's";
  config::EnvironmentConfig env = staging();
  env.source_roots = {(dir_ / "root").string() + "/"};
  fs::create_directories(dir_ / "root" / "sub");
  std::ofstream(dir_ / "root" / "scene.tif") << "staging's";
  fs::create_symlink(outside / "secret.tif", dir_ / "root" / "link-out.tif");
  fs::create_symlink(outside, dir_ / "root" / "dir-out");
  fs::create_symlink(dir_ / "root" / "scene.tif", dir_ / "root" / "link-in.tif");

  const std::string root = (dir_ / "root").string();
  const std::string exists = outside.string() + "/secret.tif";
  const std::string missing = outside.string() + "/nothing.tif";
  const std::string a = refusal(steps_.get(), env, exists);
  const std::string b = refusal(steps_.get(), env, missing);
  EXPECT_TRUE(contains(a, "sources[0].uri")) << a;
  EXPECT_TRUE(contains(a, env.source_roots[0])) << "names the roots: " << a;
  EXPECT_TRUE(contains(a, exists)) << "names the source: " << a;
  // One message, whatever lies outside: only the names differ.
  std::string a_generic = a;
  a_generic.replace(a_generic.find(exists), exists.size(), "X");
  std::string b_generic = b;
  b_generic.replace(b_generic.find(missing), missing.size(), "X");
  EXPECT_EQ(a_generic, b_generic);

  // `..` and symlinks that leave the root, however spelled; the same
  // message as a plain outside path.
  for (const std::string& uri :
       {root + "/../outside/secret.tif", root + "/sub/../../outside/secret.tif",
        root + "/link-out.tif", root + "/dir-out/secret.tif", root + "/dir-out/nothing.tif",
        root + "/dir-out/../outside/secret.tif", root + "/dir-out/../outside/nothing.tif",
        std::string("/etc/passwd"), std::string("/proc/self/environ")}) {
    std::string m = refusal(steps_.get(), env, uri);
    ASSERT_FALSE(m.empty()) << uri << " was accepted";
    m.replace(m.find(uri), uri.size(), "X");
    EXPECT_EQ(m, a_generic) << uri;
  }
  EXPECT_TRUE(planner_.seen().empty()) << "a refused source reached the planner";

  // Inside the root: accepted, and from then on named by its real path.
  for (const std::string& uri : {root + "/scene.tif", root + "/sub/../scene.tif",
                                 root + "/link-in.tif", root + "//scene.tif"}) {
    EXPECT_EQ(refusal(steps_.get(), env, uri), "") << uri;
    ASSERT_FALSE(planner_.seen().empty());
    EXPECT_EQ(planner_.seen().back().first.sources[0].uri,
              fs::canonical(dir_ / "root" / "scene.tif").string());
  }
  // Inside the root, a message may say what is wrong.
  EXPECT_TRUE(contains(refusal(steps_.get(), env, root + "/none.tif"), "No such file"));
  EXPECT_TRUE(contains(refusal(steps_.get(), env, root + "/sub"), "not a regular file"));
  ASSERT_EQ(::mkfifo((dir_ / "root" / "fifo.tif").c_str(), 0600), 0);
  EXPECT_TRUE(contains(refusal(steps_.get(), env, root + "/fifo.tif"), "not a regular file"));
  // A sibling directory whose name extends the root's is not under it.
  fs::create_directories(dir_ / "root-other");
  std::ofstream(dir_ / "root-other" / "x.tif") << "x";
  EXPECT_TRUE(contains(refusal(steps_.get(), env, root + "-other/x.tif"), "not under"));
}

TEST_F(ClusterTest, SubmitRefusesGdalConnectionStringsAndSpecialSyntaxes) {
  const std::string scene = KILN_SOURCE_DIR "/data/olinda_dem_utm25s.tif";
  for (const std::string& uri : std::vector<std::string>{
           std::string("MEM:::DATAPOINTER=0x1,PIXELS=1,LINES=1,BANDS=1,DATATYPE=Byte"),
           "vrt://" + scene,
           "<VRTDataset rasterXSize=\"1\" rasterYSize=\"1\"></VRTDataset>",
           "  <VRTDataset/>",
           std::string("/vsimem/x.tif"),
           std::string("/vsistdin/"),
           "/vsisubfile/0_100," + scene,
           "/vsizip/" + scene + "/x.tif",
           "/vsigzip/" + scene,
           "NETCDF:\"" + scene + "\":z",
           "HDF5:" + scene + "://x",
           "GTIFF_DIR:1:" + scene,
           "GTIFF_RAW:" + scene,
           "JPEG_SUBFILE:0,10," + scene,
           "file://" + scene,
           std::string("s3://bucket/a.tif"),
           std::string("/vsicurl?url=http://127.0.0.1/"),
           std::string("/vsicurl_streaming/http://127.0.0.1/a.tif"),
           scene + std::string("\n"),
           std::string("WMS:http://127.0.0.1/"),
           std::string("")}) {
    const std::string m = refusal(steps_.get(), staging(), uri);
    EXPECT_FALSE(m.empty()) << "accepted: " << uri;
    EXPECT_TRUE(contains(m, "sources[0].uri")) << m;
  }
  EXPECT_TRUE(planner_.seen().empty()) << "a refused source reached the planner";
}

TEST_F(ClusterTest, SubmitMatchesRemoteSourcesOnTheirNormalisedForm) {
  config::EnvironmentConfig env = staging();
  env.source_roots = {"/vsis3/rf-production-imagery/", "https://imagery.example.com/scenes/"};
  const std::string want = "/vsicurl/https://imagery.example.com/scenes/a.tif";
  for (const std::string& uri : {std::string("https://imagery.example.com/scenes/a.tif"),
                                 std::string("/vsicurl/https://imagery.example.com/scenes/a.tif"),
                                 std::string("HTTPS://Imagery.Example.COM:443/scenes/a.tif"),
                                 std::string("https://imagery.example.com/scenes/%61.tif")}) {
    EXPECT_EQ(refusal(steps_.get(), env, uri), "") << uri;
    ASSERT_FALSE(planner_.seen().empty());
    EXPECT_EQ(planner_.seen().back().first.sources[0].uri, want) << uri;
  }
  EXPECT_EQ(refusal(steps_.get(), env, "/vsis3/rf-production-imagery/2024/a.tif"), "");
  for (const std::string& uri :
       {std::string("https://imagery.example.com/scenes/../secret.tif"),
        std::string("https://imagery.example.com/scenes/%2e%2e/secret.tif"),
        std::string("https://imagery.example.com/scenes/..%2fsecret.tif"),
        std::string("https://imagery.example.com/scenes/a.tif#x"),
        std::string("https://imagery.example.com@127.0.0.1/scenes/a.tif"),
        std::string("https://imagery.example.com:8443/scenes/a.tif"),
        std::string("http://imagery.example.com/scenes/a.tif"),
        std::string("https://imagery.example.com.evil.test/scenes/a.tif"),
        std::string("https://imagery.example.com/scenes-private/a.tif"),
        std::string("/vsicurl/http://127.0.0.1:8470/internal/v1/register"),
        std::string("/vsis3/rf-production-imagery-2/a.tif"),
        std::string("/vsis3/rf-production-imagery/../other/a.tif"),
        std::string("/vsigs/rf-production-imagery/a.tif")}) {
    EXPECT_FALSE(refusal(steps_.get(), env, uri).empty()) << "accepted: " << uri;
  }
}

TEST_F(ClusterTest, AnEnvironmentWithoutRootsCanIngestNothing) {
  config::EnvironmentConfig env = staging();
  env.source_roots.clear();
  const std::string m = refusal(steps_.get(), env, KILN_SOURCE_DIR "/data/L7_ETMs.tif");
  EXPECT_TRUE(contains(m, "no source roots")) << m;
  EXPECT_TRUE(contains(m, "staging")) << m;
  SubmitRequest req;
  req.definition_uri = KILN_SOURCE_DIR "/tests/definitions/good/minimal.json";
  auto r = steps_->submit(env, req);
  ASSERT_FALSE(r.is_ok());
  EXPECT_TRUE(contains(r.status().message(), "no source roots")) << r.status().message();
  EXPECT_TRUE(planner_.seen().empty());
}

TEST_F(ClusterTest, DefinitionFilesAreReadOnlyUnderTheRootsAndNeverEchoed) {
  namespace fs = std::filesystem;
  config::EnvironmentConfig env = staging();
  env.source_roots = {(dir_ / "root").string() + "/"};
  fs::create_directories(dir_ / "root");
  fs::create_directories(dir_ / "outside");
  // Another environment's definition, mode 600: the server could read it.
  const fs::path theirs = dir_ / "outside" / "production.json";
  std::ofstream(theirs) << definition("production-layer").dump();
  fs::permissions(theirs, fs::perms::owner_read | fs::perms::owner_write);
  for (const std::string& uri : {theirs.string(), "file://" + theirs.string(),
                                 (dir_ / "root" / ".." / "outside" / "production.json").string(),
                                 std::string("/etc/shadow"), std::string("/dev/zero")}) {
    SubmitRequest req;
    req.definition_uri = uri;
    auto r = steps_->submit(env, req);
    ASSERT_FALSE(r.is_ok()) << uri;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(contains(r.status().message(), "not under")) << r.status().message();
    EXPECT_FALSE(contains(r.status().message(), "production-layer")) << r.status().message();
  }
  // Under the roots: a FIFO is refused at once (no writer needed), and a
  // file that is not JSON is refused without quoting it.
  ASSERT_EQ(::mkfifo((dir_ / "root" / "fifo.json").c_str(), 0600), 0);
  std::ofstream(dir_ / "root" / "words.json") << "rosebud: the first secret\n";
  for (const char* name : {"fifo.json", "words.json"}) {
    SubmitRequest req;
    req.definition_uri = (dir_ / "root" / name).string();
    auto r = steps_->submit(env, req);
    ASSERT_FALSE(r.is_ok()) << name;
    EXPECT_TRUE(contains(r.status().message(), name)) << r.status().message();
    for (const char* leak : {"rosebud", "secret", "last read", "'r'"}) {
      EXPECT_FALSE(contains(r.status().message(), leak)) << r.status().message();
    }
  }
  EXPECT_TRUE(planner_.seen().empty());
}

TEST_F(ClusterTest, SubmitRefusesADefinitionUriThatIsNotAnAbsolutePath) {
  for (const char* uri : {"definitions/dem.json", "file://definitions/dem.json",
                          "https://example.com/dem.json", "file://"}) {
    SubmitRequest req;
    req.definition_uri = uri;
    auto r = steps_->submit(staging(), req);
    ASSERT_FALSE(r.is_ok()) << uri;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << uri;
    EXPECT_TRUE(contains(r.status().message(), uri)) << r.status().message();
  }

  // An absolute one, as a path and as a file:// URI.
  const std::filesystem::path file = dir_ / "dem.json";
  std::ofstream(file) << definition("from-file").dump(2);
  for (const std::string& uri : {file.string(), "file://" + file.string()}) {
    SubmitRequest req;
    req.definition_uri = uri;
    auto r = steps_->submit(staging(), req);
    ASSERT_TRUE(r.is_ok()) << uri << ": " << r.status().to_string();
    EXPECT_EQ(r->layer, "from-file");
  }
  // The project's own definition file: its sources are relative, which a
  // server cannot resolve.
  SubmitRequest minimal;
  minimal.definition_uri = KILN_SOURCE_DIR "/tests/definitions/good/minimal.json";
  auto r = steps_->submit(staging(), minimal);
  ASSERT_FALSE(r.is_ok());
  EXPECT_TRUE(contains(r.status().message(), "sources[0].uri")) << r.status().message();
}

TEST_F(ClusterTest, SubmitRefusesADefinitionOfSeveralLayersOrNone) {
  SubmitRequest multi;
  multi.definition_uri = KILN_SOURCE_DIR "/tests/definitions/good/rf-multi-layer.json";
  auto r = steps_->submit(staging(), multi);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(r.status().message(), "exactly one")) << r.status().message();

  SubmitRequest no_layer;
  no_layer.definition = definition("dem");
  no_layer.definition.erase("layer");
  auto n = steps_->submit(staging(), no_layer);
  ASSERT_FALSE(n.is_ok());
  EXPECT_EQ(n.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(n.status().message(), "layer")) << n.status().message();

  SubmitRequest missing;
  missing.definition_uri = (dir_ / "no-such.json").string();
  auto m = steps_->submit(staging(), missing);
  ASSERT_FALSE(m.is_ok());
  EXPECT_TRUE(contains(m.status().message(), "no-such.json")) << m.status().message();
}

TEST_F(ClusterTest, SubmitRefusesANameOverTheLimit) {
  SubmitRequest req;
  req.definition = definition("dem");
  req.name = std::string(config::kMaxStepNameLength + 1, 'n');
  auto r = steps_->submit(staging(), req);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(r.status().message(), "name")) << r.status().message();
  req.name.pop_back();
  auto ok = steps_->submit(staging(), req);
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ(ok->name, req.name);
}

TEST_F(ClusterTest, SubmitRefusesWhatThePlannerCannotRunWithItsReason) {
  planner_.refuse("unreadable");
  auto r = try_submit(staging(), "unreadable");
  ASSERT_FALSE(r.is_ok());
  // Both are the caller's to fix (HTTP 400); the reason is the planner's.
  EXPECT_TRUE(r.status().code() == StatusCode::kInvalidArgument ||
              r.status().code() == StatusCode::kInputError)
      << r.status().to_string();
  EXPECT_TRUE(contains(r.status().message(), "/data/olinda_dem_utm25s.tif"))
      << r.status().message();
  auto page = steps_->list(staging(), {});
  ASSERT_TRUE(page.is_ok());
  EXPECT_TRUE(page->steps.empty()) << "a step that cannot run was stored";
}

TEST_F(ClusterTest, SubmitWritesOnlyUnderTheCallersEnvironment) {
  store::Step s = submit(staging(), "dem");
  EXPECT_EQ(s.environment, "staging");
  EXPECT_EQ(s.name, "dem");
  EXPECT_EQ(s.layer, "dem");
  EXPECT_EQ(s.state, StepState::kPending);
  EXPECT_EQ(s.action_on_failure, "CONTINUE");
  EXPECT_EQ(s.action["ingest"]["output"]["catalog"], staging().catalog);
  EXPECT_EQ(s.action["ingest"]["output"]["environment"], "staging");
  EXPECT_EQ(s.action["plan"]["threads"], plan_threads_for(config_));
  ASSERT_EQ(planner_.seen().size(), 1u);
  EXPECT_EQ(planner_.seen()[0].first.output.catalog, staging().catalog);
  EXPECT_EQ(planner_.seen()[0].first.output.environment, "staging");
  // Every slot the core group may grow to: 2 nodes x 2 slots.
  EXPECT_EQ(planner_.seen()[0].second, 4);
  // The plan's figures become the step's tasks.
  EXPECT_EQ(tasks(s.id).size(), 3u);
  EXPECT_EQ(s.progress.tiles_total, 200);

  // The same definition through production lands in production's catalog.
  store::Step p = submit(production(), "dem");
  EXPECT_EQ(p.action["ingest"]["output"]["catalog"], production().catalog);
  EXPECT_EQ(p.action["ingest"]["output"]["environment"], "production");
}

TEST_F(ClusterTest, SubmitKeepsWhatAnEmrClientSentAndItsStepId) {
  SubmitRequest req;
  req.definition = definition("dem");
  req.name = "nightly";
  req.emr_request = {{"Jar", "command-runner.jar"}};
  auto r = steps_->submit(staging(), req);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->name, "nightly");
  EXPECT_EQ(r->action["emr"]["Jar"], "command-runner.jar");
  // EMR's id shape: s- and 13 of [0-9A-Z].
  ASSERT_EQ(r->id.size(), 15u);
  EXPECT_EQ(r->id.rfind("s-", 0), 0u);
  for (char c : r->id.substr(2)) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'));
  EXPECT_EQ(steps_->log_location(r->id), log_->path(r->id));
}

TEST_F(ClusterTest, SubmitAllStoresEveryStepInOrderOrNone) {
  std::vector<SubmitRequest> reqs;
  for (const char* layer : {"a", "b", "c", "d", "e", "f"}) {
    SubmitRequest req;
    req.definition = definition(layer);
    reqs.push_back(req);
  }
  size_t failed = 0;
  auto all = steps_->submit_all(staging(), reqs, &failed);
  ASSERT_TRUE(all.is_ok()) << all.status().to_string();
  EXPECT_EQ(failed, StepService::kBatchFailed);
  ASSERT_EQ(all->size(), 6u);
  EXPECT_EQ(planner_.seen().size(), 6u);
  // Stored in the order given: the list (newest first) is the reverse.
  auto page = steps_->list(staging(), {});
  ASSERT_TRUE(page.is_ok());
  ASSERT_EQ(page->steps.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ((*all)[i].layer, reqs[i].definition["layer"]);
    EXPECT_EQ(page->steps[5 - i].id, (*all)[i].id);
    EXPECT_EQ(tasks((*all)[i].id).size(), 3u);
  }

  // One request the planner refuses: its index and reason, and nothing
  // of the call is stored.
  planner_.refuse("e");
  auto refused = steps_->submit_all(staging(), reqs, &failed);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(failed, 4u);
  EXPECT_EQ(refused.status().code(), StatusCode::kInputError) << refused.status().to_string();
  page = steps_->list(staging(), {});
  ASSERT_TRUE(page.is_ok());
  EXPECT_EQ(page->steps.size(), 6u) << "a refused call stored steps";
}

// --- concurrency ----------------------------------------------------------------------

TEST_F(ClusterTest, SetConcurrencyKeepsWithinItsBounds) {
  for (int64_t bad : {int64_t{config::kMinConcurrency} - 1, int64_t{config::kMaxConcurrency} + 1,
                      int64_t{-5}, int64_t{1} << 40}) {
    Status st = steps_->set_concurrency(staging(), bad);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(contains(st.message(), "concurrency")) << st.message();
  }
  auto p = steps_->policy(staging());
  ASSERT_TRUE(p.is_ok());
  EXPECT_EQ(p->concurrency, 1) << "a refused value was applied";
  for (int good : {config::kMaxConcurrency, config::kMinConcurrency}) {
    ASSERT_TRUE(steps_->set_concurrency(staging(), good).is_ok()) << good;
    EXPECT_EQ(steps_->policy(staging())->concurrency, good);
  }
  // One environment's change leaves the other's alone.
  ASSERT_TRUE(steps_->set_concurrency(production(), 7).is_ok());
  EXPECT_EQ(steps_->policy(staging())->concurrency, 1);
  EXPECT_EQ(steps_->policy(production())->priority, 10);
}

// --- isolation ------------------------------------------------------------------------

TEST_F(ClusterTest, AnotherEnvironmentsStepAnswersLikeAnIdThatNeverExisted) {
  store::Step theirs = submit(staging(), "secret");
  scheduler_->pass();
  store::Step mine = submit(production(), "mine");
  const std::string never = "s-0000000000000";

  for (const std::string& id : {theirs.id, never}) {
    auto g = steps_->get(production(), id);
    EXPECT_EQ(g.status().code(), StatusCode::kNotFound) << id;
    EXPECT_FALSE(contains(g.status().message(), "staging")) << g.status().message();
    EXPECT_EQ(steps_->cancel(production(), id, "KILL").status().code(), StatusCode::kNotFound);
    EXPECT_EQ(steps_->wait(production(), id, 0).status().code(), StatusCode::kNotFound);
    EXPECT_EQ(steps_->read_log(production(), id, 0, 1024).status().code(), StatusCode::kNotFound);
  }
  // The messages differ only by the id asked for.
  std::string a = steps_->get(production(), theirs.id).status().message();
  std::string b = steps_->get(production(), never).status().message();
  a.replace(a.find(theirs.id), theirs.id.size(), "ID");
  b.replace(b.find(never), never.size(), "ID");
  EXPECT_EQ(a, b);

  // Nothing happened to it.
  store::Step still = get(staging(), theirs.id);
  EXPECT_EQ(still.state, StepState::kRunning);
  EXPECT_TRUE(still.cancel_signal.empty());

  auto listed = steps_->list(production(), {});
  ASSERT_TRUE(listed.is_ok());
  ASSERT_EQ(listed->steps.size(), 1u);
  EXPECT_EQ(listed->steps[0].id, mine.id);
  store::ListQuery asks_for_staging;
  asks_for_staging.environment = "staging";  // the caller's query cannot widen it
  asks_for_staging.ids = {theirs.id};
  listed = steps_->list(production(), asks_for_staging);
  ASSERT_TRUE(listed.is_ok());
  EXPECT_TRUE(listed->steps.empty());

  auto info = steps_->cluster(production());
  ASSERT_TRUE(info.is_ok());
  EXPECT_EQ(info->queued_tasks, 0) << "staging's queue shown to production";
  EXPECT_EQ(info->priority, 10);
}

// --- list and logs ----------------------------------------------------------------------

TEST_F(ClusterTest, ListPagesNewestFirstAndFiltersByState) {
  std::vector<store::Step> submitted;
  for (int i = 0; i < 5; ++i) submitted.push_back(submit(staging(), "l" + std::to_string(i)));
  scheduler_->pass();  // l0 RUNNING

  store::ListQuery q;
  q.limit = 2;
  std::vector<std::string> seen;
  for (int page = 0; page < 5; ++page) {
    auto p = steps_->list(staging(), q);
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    for (const auto& s : p->steps) seen.push_back(s.id);
    if (p->next_marker.empty()) break;
    q.marker = p->next_marker;
  }
  ASSERT_EQ(seen.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(seen[i], submitted[4 - i].id);

  store::ListQuery running;
  running.states = {StepState::kRunning};
  auto r = steps_->list(staging(), running);
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->steps.size(), 1u);
  EXPECT_EQ(r->steps[0].id, submitted[0].id);

  for (int bad : {0, config::kMaxListLimit + 1}) {
    store::ListQuery b;
    b.limit = bad;
    auto l = steps_->list(staging(), b);
    EXPECT_EQ(l.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(contains(l.status().message(), "limit")) << l.status().message();
  }
}

TEST_F(ClusterTest, ReadLogContinuesFromTheOffsetItReturned) {
  store::Step s = submit(staging());
  scheduler_->pass();
  const std::string whole = log_of(s.id);
  ASSERT_TRUE(contains(whole, "submitted"));
  ASSERT_TRUE(contains(whole, "step RUNNING"));

  std::string joined;
  int64_t offset = 0;
  for (int i = 0; i < 1000; ++i) {
    auto chunk = steps_->read_log(staging(), s.id, offset, 16);
    ASSERT_TRUE(chunk.is_ok()) << chunk.status().to_string();
    if (chunk->text.empty()) {
      EXPECT_EQ(chunk->next_offset, offset);
      break;
    }
    EXPECT_LE(chunk->text.size(), 16u);
    joined += chunk->text;
    offset = chunk->next_offset;
  }
  EXPECT_EQ(joined, whole);
  EXPECT_EQ(offset, static_cast<int64_t>(whole.size()));

  auto bad = steps_->read_log(staging(), s.id, -1, 16);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(bad.status().message(), "offset")) << bad.status().message();

  // Lines are stamped with the clock's time (RFC 3339 UTC).
  EXPECT_EQ(whole.rfind("2023-11-14T22:13:20.000Z kiln-serve: ", 0), 0u) << whole;
}

// --- the real planner -----------------------------------------------------------------------

TEST_F(ClusterTest, LocalPlannerPlansTheProjectsRasterAtSubmit) {
  const std::string raster = KILN_SOURCE_DIR "/data/L7_ETMs.tif";
  ASSERT_TRUE(std::filesystem::exists(raster))
      << raster << " is missing: run `make data` (this test needs the real raster)";
  LocalPlanner planner;
  StepServiceOptions so;
  so.max_attempts = kMaxAttempts;
  so.plan_threads = plan_threads_for(config_);
  CoreStepService service(so, store_.get(), &planner, log_.get(), policies_.get(), events_.get(),
                          &lifecycle_, clock_);

  SubmitRequest req;
  req.definition = definition("landsat", raster);
  req.definition["sources"][0]["bands"] = {3, 2, 1};  // RGB of its 6 bands, for png
  auto r = service.submit(staging(), req);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();

  // What the planner decided, computed independently from the same inputs.
  auto defs = ingest::parse_definition(r->action["ingest"]);
  ASSERT_TRUE(defs.is_ok()) << defs.status().to_string();
  ASSERT_EQ(defs->size(), 1u);
  EXPECT_EQ((*defs)[0].output.catalog, staging().catalog);
  auto plan = ingest::make_plan((*defs)[0], ingest::PlanOptions{so.plan_threads});
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  ASSERT_GT(plan->partitions.size(), 0u);
  EXPECT_EQ(tasks(r->id).size(), plan->partitions.size() + 1) << "partitions + the commit task";
  EXPECT_EQ(r->progress.tiles_total, plan->total_tiles());
  EXPECT_GT(r->progress.tiles_total, 0);
  EXPECT_TRUE(contains(log_of(r->id), std::to_string(plan->partitions.size()) +
                                          " partition task(s), " +
                                          std::to_string(plan->total_tiles()) + " tiles"));

  // A source that does not exist is refused at submit, naming it.
  SubmitRequest missing;
  missing.definition = definition("ghost", (dir_ / "no-such.tif").string());
  auto m = service.submit(staging(), missing);
  ASSERT_FALSE(m.is_ok());
  EXPECT_TRUE(m.status().code() == StatusCode::kInvalidArgument ||
              m.status().code() == StatusCode::kInputError)
      << m.status().to_string();
  EXPECT_TRUE(contains(m.status().message(), "no-such.tif")) << m.status().message();
}

}  // namespace
}  // namespace kiln::cluster
