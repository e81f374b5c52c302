#include "catalog/catalog.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace kiln::catalog {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string host_name() {
  char buf[256] = {};
  gethostname(buf, sizeof(buf) - 1);
  return buf;
}

// A pid that certainly belonged to a process that is gone now.
pid_t dead_pid() {
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  int status = 0;
  waitpid(pid, &status, 0);
  return pid;
}

// Tile bytes with a NUL and high bytes, so a text-mode or C-string write shows.
std::string tile_bytes(const std::string& tag) { return std::string("\x89PNG\0", 5) + tag; }

// `prefix` followed by `n` ("t0", "w3"). Appended piece by piece: `"t" +
// std::to_string(n)` makes GCC 12 at -O3 report a false -Wrestrict overlap
// (GCC bug 105651), which fails a -Werror Release build.
std::string numbered(const char* prefix, int n) {
  std::string s = prefix;
  s += std::to_string(n);
  return s;
}

// "2024-05-01T12:00:00Z". (No std::regex: GCC 12 warns inside it at -O1.)
bool is_iso8601_utc(const std::string& s) {
  const std::string shape = "dddd-dd-ddTdd:dd:ddZ";
  if (s.size() != shape.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool ok = shape[i] == 'd' ? (s[i] >= '0' && s[i] <= '9') : s[i] == shape[i];
    if (!ok) return false;
  }
  return true;
}

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "kiln_catalog_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    auto cat = Catalog::open(root_.string(), /*create=*/false);
    ASSERT_TRUE(cat.is_ok()) << cat.status().to_string();
    catalog_.emplace(std::move(cat).value());
  }
  void TearDown() override { fs::remove_all(root_); }

  const Catalog& cat() const { return *catalog_; }
  fs::path layer_path(const std::string& env, const std::string& layer) const {
    return root_ / env / layer;
  }
  std::string current_target(const std::string& env, const std::string& layer) const {
    return fs::read_symlink(layer_path(env, layer) / "current").string();
  }

  // Publishes one version whose tile 0/0/0.png holds tile_bytes(tag).
  int publish(const std::string& env, const std::string& layer, const std::string& tag) {
    auto w = cat().begin(env, layer);
    EXPECT_TRUE(w.is_ok()) << w.status().to_string();
    if (!w.is_ok()) return 0;
    EXPECT_TRUE((*w)->write_tile(0, 0, 0, "png", tile_bytes(tag)).is_ok());
    auto v = (*w)->commit(json{{"layer", layer}, {"tag", tag}});
    EXPECT_TRUE(v.is_ok()) << v.status().to_string();
    return v.is_ok() ? *v : 0;
  }

  fs::path root_;
  std::optional<Catalog> catalog_;
};

TEST(ValidateNameTest, AcceptsSafeNames) {
  for (const std::string& name :
       std::vector<std::string>{"a", "0", "Layer_1.v2-x", "landsat-8.B4", std::string(128, 'z')}) {
    EXPECT_TRUE(validate_name("layer", name).is_ok()) << name;
  }
}

TEST(ValidateNameTest, RejectsUnsafeNamesNamingTheCulprit) {
  for (const std::string& name :
       std::vector<std::string>{"", ".", "..", "a/b", "/abs", "-a", ".hidden", "_a", "a b", "a\\b",
                                "caf\xc3\xa9", std::string(129, 'z')}) {
    Status st = validate_name("environment", name);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << name;
    EXPECT_NE(st.message().find("environment name '" + name + "'"), std::string::npos)
        << st.message();
  }
  EXPECT_EQ(validate_name("layer", "../x").message(),
            "layer name '../x' is not allowed: use 1-128 characters of A-Z a-z 0-9 . _ - "
            "starting with a letter or digit");
}

TEST_F(CatalogTest, OpenChecksTheRoot) {
  EXPECT_EQ(Catalog::open("", true).status().code(), StatusCode::kInvalidArgument);

  const fs::path missing = root_ / "missing";
  auto r = Catalog::open(missing.string(), /*create=*/false);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "catalog '" + missing.string() + "' does not exist");
  EXPECT_FALSE(fs::exists(missing));

  auto created = Catalog::open((missing / "deeper").string() + "/", /*create=*/true);
  ASSERT_TRUE(created.is_ok()) << created.status().to_string();
  EXPECT_TRUE(fs::is_directory(missing / "deeper"));
  EXPECT_EQ(created->root(), (missing / "deeper").string());

  write_text(root_ / "plain_file", "x");
  auto not_dir = Catalog::open((root_ / "plain_file").string(), /*create=*/true);
  EXPECT_EQ(not_dir.status().code(), StatusCode::kIOError);
  EXPECT_NE(not_dir.status().message().find("plain_file' is not a directory"), std::string::npos);
}

TEST_F(CatalogTest, OpenMakesARelativeRootAbsolute) {
  const fs::path cwd = fs::current_path();
  fs::current_path(root_);
  auto r = Catalog::open("rel/cat", /*create=*/true);
  fs::current_path(cwd);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->root(), (root_ / "rel/cat").string());
  EXPECT_EQ(r->layer_dir("default", "dem"), (root_ / "rel/cat/default/dem").string());
  EXPECT_EQ(r->version_dir("default", "dem", 3),
            (root_ / "rel/cat/default/dem/versions/v000003").string());
}

TEST_F(CatalogTest, BeginRefusesUnsafeNamesAndCreatesNothing) {
  EXPECT_EQ(cat().begin("../etc", "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(cat().begin("default", "a/b").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(cat().begin("default", "").status().code(), StatusCode::kInvalidArgument);
  auto bad_id = cat().begin("default", "x", "../../y");
  EXPECT_EQ(bad_id.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_id.status().message().find("staging id name '../../y'"), std::string::npos);
  EXPECT_TRUE(fs::is_empty(root_));
}

TEST_F(CatalogTest, CommitPublishesFirstVersionThroughCurrent) {
  auto w = cat().begin("default", "ortho");
  ASSERT_TRUE(w.is_ok()) << w.status().to_string();
  const fs::path staging = (*w)->staging_dir();
  EXPECT_TRUE(staging.is_absolute());
  EXPECT_EQ(staging.parent_path(), layer_path("default", "ortho") / ".staging");
  EXPECT_TRUE(fs::is_directory(staging));
  // Staged tiles are not visible through current.
  ASSERT_TRUE((*w)->write_tile(0, 0, 0, "png", tile_bytes("z0")).is_ok());
  ASSERT_TRUE((*w)->write_tile(1, 1, 0, "png", tile_bytes("z1")).is_ok());
  EXPECT_FALSE(fs::exists(layer_path("default", "ortho") / "current"));

  auto v = (*w)->commit(json{{"layer", "ortho"}, {"tile_size", 256}});
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(*v, 1);
  EXPECT_EQ(current_target("default", "ortho"), "versions/v000001");
  const fs::path current = layer_path("default", "ortho") / "current";
  EXPECT_EQ(read_text(current / "0/0/0.png"), tile_bytes("z0"));
  EXPECT_EQ(read_text(current / "1/1/0.png"), tile_bytes("z1"));

  json meta = json::parse(read_text(current / "metadata.json"));
  EXPECT_EQ(meta["version"], 1);
  EXPECT_EQ(meta["layer"], "ortho");
  EXPECT_EQ(meta["tile_size"], 256);
  EXPECT_TRUE(is_iso8601_utc(meta["created_at"].get<std::string>())) << meta["created_at"];

  // Nothing is left behind in staging, and the version holds no bookkeeping.
  EXPECT_FALSE(fs::exists(staging));
  EXPECT_TRUE(fs::is_empty(layer_path("default", "ortho") / ".staging"));
  std::set<std::string> top;
  for (const auto& e : fs::directory_iterator(current)) top.insert(e.path().filename().string());
  EXPECT_EQ(top, (std::set<std::string>{"0", "1", "metadata.json"}));

  // The writer is finished: destroying it must not touch the version.
  w->reset();
  EXPECT_EQ(read_text(current / "0/0/0.png"), tile_bytes("z0"));
}

TEST_F(CatalogTest, SecondCommitSwapsCurrentAndKeepsFirstVersion) {
  ASSERT_EQ(publish("default", "ortho", "one"), 1);
  ASSERT_EQ(publish("default", "ortho", "two"), 2);
  const fs::path layer = layer_path("default", "ortho");
  EXPECT_EQ(current_target("default", "ortho"), "versions/v000002");
  EXPECT_EQ(read_text(layer / "current/0/0/0.png"), tile_bytes("two"));
  EXPECT_EQ(read_text(layer / "versions/v000001/0/0/0.png"), tile_bytes("one"));
  EXPECT_FALSE(fs::exists(layer / ("current.tmp-" + std::to_string(getpid()))));

  auto v1 = cat().metadata("default", "ortho", 1);
  ASSERT_TRUE(v1.is_ok()) << v1.status().to_string();
  EXPECT_EQ((*v1)["version"], 1);
  EXPECT_EQ((*v1)["tag"], "one");
  auto cur = cat().metadata("default", "ortho");
  ASSERT_TRUE(cur.is_ok()) << cur.status().to_string();
  EXPECT_EQ((*cur)["version"], 2);
  EXPECT_EQ((*cur)["tag"], "two");
}

TEST_F(CatalogTest, VersionNumbersAreNeverReusedAfterPruning) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(publish("default", "ortho", numbered("t", i)), i + 1);
  }
  // Retention removed the oldest versions.
  fs::remove_all(layer_path("default", "ortho") / "versions/v000001");
  fs::remove_all(layer_path("default", "ortho") / "versions/v000002");
  EXPECT_EQ(publish("default", "ortho", "next"), 4);
  EXPECT_EQ(read_text(layer_path("default", "ortho") / "versions/v000003/0/0/0.png"),
            tile_bytes("t2"));
  EXPECT_EQ(cat().metadata("default", "ortho", 1).status().message(),
            "version 1 of layer 'ortho' not found (versions: 3-4)");
}

TEST_F(CatalogTest, WriteTileAfterRemovingItsDirectory) {
  auto w = cat().begin("default", "ortho");
  ASSERT_TRUE(w.is_ok());
  ASSERT_TRUE((*w)->write_tile(1, 0, 0, "png", "a").is_ok());
  ASSERT_TRUE((*w)->remove("1").is_ok());
  // A redone level: its directories must be created again.
  Status st = (*w)->write_tile(1, 0, 1, "png", "b");
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(read_text(fs::path((*w)->staging_dir()) / "1/0/1.png"), "b");
  EXPECT_FALSE(fs::exists(fs::path((*w)->staging_dir()) / "1/0/0.png"));
}

TEST_F(CatalogTest, AbortRemovesStagingAndLeavesCurrent) {
  ASSERT_EQ(publish("default", "ortho", "one"), 1);
  auto w = cat().begin("default", "ortho");
  ASSERT_TRUE(w.is_ok());
  const fs::path staging = (*w)->staging_dir();
  ASSERT_TRUE((*w)->write_tile(3, 2, 1, "png", tile_bytes("half")).is_ok());
  (*w)->abort();
  EXPECT_FALSE(fs::exists(staging));
  EXPECT_TRUE(fs::is_empty(layer_path("default", "ortho") / ".staging"));
  (*w)->abort();  // idempotent
  EXPECT_EQ((*w)->write_tile(0, 0, 0, "png", "x").code(), StatusCode::kCancelled);
  EXPECT_FALSE((*w)->commit(json::object()).is_ok());
  EXPECT_FALSE(fs::exists(staging));
  EXPECT_EQ(current_target("default", "ortho"), "versions/v000001");
  EXPECT_EQ(read_text(layer_path("default", "ortho") / "current/0/0/0.png"), tile_bytes("one"));
  EXPECT_FALSE(fs::exists(layer_path("default", "ortho") / "versions/v000002"));
}

TEST_F(CatalogTest, DestroyingAnUncommittedWriterRemovesStaging) {
  ASSERT_EQ(publish("default", "ortho", "one"), 1);
  std::string staging;
  {
    auto w = cat().begin("default", "ortho");
    ASSERT_TRUE(w.is_ok());
    staging = (*w)->staging_dir();
    ASSERT_TRUE((*w)->write_tile(0, 0, 0, "png", tile_bytes("lost")).is_ok());
    ASSERT_TRUE(fs::exists(staging + "/0/0/0.png"));
  }
  EXPECT_FALSE(fs::exists(staging));
  EXPECT_TRUE(fs::is_empty(layer_path("default", "ortho") / ".staging"));
  EXPECT_EQ(read_text(layer_path("default", "ortho") / "current/0/0/0.png"), tile_bytes("one"));
  // The next version is 2: an aborted ingest consumes no version number.
  EXPECT_EQ(publish("default", "ortho", "two"), 2);
}

TEST_F(CatalogTest, FailedCommitKeepsPreviousVersionAndCanBeRetried) {
  ASSERT_EQ(publish("default", "ortho", "one"), 1);
  const fs::path layer = layer_path("default", "ortho");
  auto w = cat().begin("default", "ortho");
  ASSERT_TRUE(w.is_ok());
  const fs::path staging = (*w)->staging_dir();
  ASSERT_TRUE((*w)->write_tile(0, 0, 0, "png", tile_bytes("two")).is_ok());
  // A non-empty directory where commit puts its new symlink makes the swap fail
  // after the version directory was already renamed into place.
  const fs::path blocker = layer / ("current.tmp-" + std::to_string(getpid()));
  fs::create_directories(blocker / "full");

  auto failed = (*w)->commit(json::object());
  EXPECT_EQ(failed.status().code(), StatusCode::kIOError);
  EXPECT_NE(failed.status().message().find(blocker.string()), std::string::npos)
      << failed.status().message();
  EXPECT_EQ(current_target("default", "ortho"), "versions/v000001");
  EXPECT_EQ(read_text(layer / "current/0/0/0.png"), tile_bytes("one"));
  EXPECT_FALSE(fs::exists(layer / "versions/v000002"));
  EXPECT_EQ(read_text(staging / "0/0/0.png"), tile_bytes("two"));
  EXPECT_FALSE(fs::exists(staging / "metadata.json"));

  fs::remove_all(blocker);
  auto retried = (*w)->commit(json::object());
  ASSERT_TRUE(retried.is_ok()) << retried.status().to_string();
  EXPECT_EQ(*retried, 2);
  EXPECT_EQ(read_text(layer / "current/0/0/0.png"), tile_bytes("two"));
}

TEST_F(CatalogTest, BeginRemovesStagingOfDeadWritersOnly) {
  const fs::path staging_root = layer_path("default", "ortho") / ".staging";
  fs::create_directories(staging_root);
  const pid_t dead = dead_pid();
  auto make = [&](const std::string& id, long pid, const std::string& host, bool shared) {
    fs::create_directories(staging_root / id / "0/0");
    write_text(staging_root / id / "0/0/0.png", "partial");
    write_text(staging_root / ("." + id + ".owner"),
               json{{"pid", pid}, {"host", host}, {"shared", shared}}.dump());
  };
  make("crashed", dead, host_name(), false);
  make("alive", getpid(), host_name(), false);
  make("other-host", dead, host_name() + "-elsewhere", false);
  make("shared-step", dead, host_name(), true);
  fs::create_directories(staging_root / "no-owner");
  make("garbled", dead, host_name(), false);
  write_text(staging_root / ".garbled.owner", R"({"pid": "not a number", "host": 3})");

  auto w = cat().begin("default", "ortho");
  ASSERT_TRUE(w.is_ok()) << w.status().to_string();
  EXPECT_FALSE(fs::exists(staging_root / "crashed"));
  EXPECT_FALSE(fs::exists(staging_root / ".crashed.owner"));
  EXPECT_TRUE(fs::exists(staging_root / "alive/0/0/0.png"));
  EXPECT_TRUE(fs::exists(staging_root / "other-host/0/0/0.png"));
  EXPECT_TRUE(fs::exists(staging_root / "shared-step/0/0/0.png"));
  EXPECT_TRUE(fs::exists(staging_root / "no-owner"));
  EXPECT_TRUE(fs::exists(staging_root / "garbled/0/0/0.png"));
  EXPECT_TRUE(fs::is_directory((*w)->staging_dir()));

  // The new writer's own owner file names this live process.
  const fs::path own_id = fs::path((*w)->staging_dir()).filename();
  std::string owner_file = ".";  // not "." + ...: see numbered()
  owner_file += own_id.string();
  owner_file += ".owner";
  json owner = json::parse(read_text(staging_root / owner_file));
  EXPECT_EQ(owner["pid"], getpid());
  EXPECT_EQ(owner["host"], host_name());
}

TEST_F(CatalogTest, SharedStagingIdIsJoinedAndOutlivesEachWriter) {
  std::string first_dir;
  {
    auto w1 = cat().begin("default", "ortho", "step-42");
    ASSERT_TRUE(w1.is_ok()) << w1.status().to_string();
    first_dir = (*w1)->staging_dir();
    EXPECT_EQ(fs::path(first_dir).filename(), "step-42");
    ASSERT_TRUE((*w1)->write_tile(1, 0, 0, "png", tile_bytes("a")).is_ok());
    ASSERT_TRUE((*w1)->write_file("_partials/p0.json", "{\"n\":1}").is_ok());
  }  // a partition process ends: its tiles must stay for the others
  ASSERT_TRUE(fs::exists(first_dir + "/1/0/0.png"));

  auto w2 = cat().begin("default", "ortho", "step-42");
  ASSERT_TRUE(w2.is_ok()) << w2.status().to_string();
  EXPECT_EQ((*w2)->staging_dir(), first_dir);
  ASSERT_TRUE((*w2)->write_tile(1, 1, 0, "png", tile_bytes("b")).is_ok());
  auto partial = (*w2)->read_file("_partials/p0.json");
  ASSERT_TRUE(partial.is_ok()) << partial.status().to_string();
  EXPECT_EQ(*partial, "{\"n\":1}");
  ASSERT_TRUE((*w2)->remove("_partials").is_ok());
  auto v = (*w2)->commit(json::object());
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  const fs::path current = layer_path("default", "ortho") / "current";
  EXPECT_EQ(read_text(current / "1/0/0.png"), tile_bytes("a"));
  EXPECT_EQ(read_text(current / "1/1/0.png"), tile_bytes("b"));
  EXPECT_FALSE(fs::exists(current / "_partials"));
  EXPECT_TRUE(fs::is_empty(layer_path("default", "ortho") / ".staging"));

  // Explicit abort of a shared staging removes it for everyone.
  auto w3 = cat().begin("default", "ortho", "step-43");
  ASSERT_TRUE(w3.is_ok());
  const std::string dir3 = (*w3)->staging_dir();
  (*w3)->abort();
  EXPECT_FALSE(fs::exists(dir3));
}

TEST_F(CatalogTest, RelativePathsMustStayInsideStaging) {
  auto w = cat().begin("default", "ortho");
  ASSERT_TRUE(w.is_ok());
  for (const std::string& bad : std::vector<std::string>{
           "../escape", "/tmp/escape", "a/../../escape", "..", ".", "", "a//b", "a/./b", "a/"}) {
    Status st = (*w)->write_file(bad, "x");
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << "'" << bad << "'";
    EXPECT_NE(st.message().find("'" + bad + "'"), std::string::npos) << st.message();
    EXPECT_EQ((*w)->read_file(bad).status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ((*w)->remove(bad).code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(fs::exists(layer_path("default", "ortho") / ".staging/escape"));
  EXPECT_FALSE(fs::exists("/tmp/escape"));
  // Refused removes left the staging directory in place.
  EXPECT_TRUE(fs::is_directory((*w)->staging_dir()));

  ASSERT_TRUE((*w)->write_file("_partials/p1/stats.json", "abc").is_ok());
  EXPECT_EQ(read_text(fs::path((*w)->staging_dir()) / "_partials/p1/stats.json"), "abc");
  ASSERT_TRUE((*w)->remove("_partials").is_ok());
  EXPECT_FALSE(fs::exists(fs::path((*w)->staging_dir()) / "_partials"));
  auto gone = (*w)->read_file("_partials/p1/stats.json");
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  EXPECT_NE(gone.status().message().find("_partials/p1/stats.json"), std::string::npos);
}

TEST_F(CatalogTest, WriteTileRefusesBadKeysAndExtensions) {
  auto w = cat().begin("default", "ortho");
  ASSERT_TRUE(w.is_ok());
  EXPECT_EQ((*w)->write_tile(-1, 0, 0, "png", "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*w)->write_tile(0, -1, 0, "png", "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*w)->write_tile(0, 0, 0, "../png", "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*w)->write_tile(0, 0, 0, "", "x").code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(fs::is_empty((*w)->staging_dir()));
}

TEST_F(CatalogTest, WriteErrorsNameThePath) {
  auto w = cat().begin("default", "ortho");
  ASSERT_TRUE(w.is_ok());
  // A directory where the tile file should go.
  fs::create_directories(fs::path((*w)->staging_dir()) / "2/1/3.png");
  Status st = (*w)->write_tile(2, 1, 3, "png", "x");
  EXPECT_EQ(st.code(), StatusCode::kIOError);
  EXPECT_NE(st.message().find((*w)->staging_dir() + "/2/1/3.png"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("Is a directory"), std::string::npos) << st.message();
}

TEST_F(CatalogTest, ConcurrentWriteTileFromManyThreads) {
  auto w = cat().begin("default", "ortho");
  ASSERT_TRUE(w.is_ok());
  constexpr int kThreads = 8;
  constexpr int kTilesPerThread = 150;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kTilesPerThread; ++i) {
        // Threads share columns, so they race to create the same directories.
        const int64_t x = i % 5;
        const int64_t y = t * kTilesPerThread + i;
        std::string bytes = tile_bytes(std::to_string(x) + "/" + std::to_string(y));
        if (!(*w)->write_tile(8, x, y, "webp", bytes).is_ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto v = (*w)->commit(json::object());
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  const fs::path current = layer_path("default", "ortho") / "current";
  int count = 0;
  for (const auto& e : fs::recursive_directory_iterator(current / "8")) {
    if (e.is_regular_file()) ++count;
  }
  EXPECT_EQ(count, kThreads * kTilesPerThread);
  for (int y : {0, 151, kThreads * kTilesPerThread - 1}) {
    const int64_t x = (y % kTilesPerThread) % 5;
    EXPECT_EQ(read_text(current / "8" / std::to_string(x) / (std::to_string(y) + ".webp")),
              tile_bytes(std::to_string(x) + "/" + std::to_string(y)));
  }
}

TEST_F(CatalogTest, ConcurrentCommitsGetDistinctVersions) {
  constexpr int kWriters = 4;
  std::vector<int> versions(kWriters, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      auto w = cat().begin("default", "ortho");
      if (!w.is_ok()) return;
      if (!(*w)->write_tile(0, 0, 0, "png", tile_bytes(numbered("w", t))).is_ok()) return;
      auto v = (*w)->commit(json{{"writer", t}});
      if (v.is_ok()) versions[t] = *v;
    });
  }
  for (auto& th : threads) th.join();
  std::vector<int> sorted = versions;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<int>{1, 2, 3, 4}));
  // Each version holds exactly what its writer staged.
  for (int t = 0; t < kWriters; ++t) {
    if (versions[t] == 0) continue;
    const fs::path vdir = cat().version_dir("default", "ortho", versions[t]);
    EXPECT_EQ(read_text(vdir / "0/0/0.png"), tile_bytes(numbered("w", t)));
    EXPECT_EQ(json::parse(read_text(vdir / "metadata.json"))["writer"], t);
  }
  EXPECT_EQ(current_target("default", "ortho"), "versions/v000004");
}

TEST_F(CatalogTest, ReaderOfOldVersionSurvivesCommit) {
  ASSERT_EQ(publish("default", "ortho", "old"), 1);
  const fs::path current = layer_path("default", "ortho") / "current";
  // A reader that resolved `current` (a tile server mid-request) and one with
  // an open tile file.
  int dir_fd = open(current.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dir_fd, 0);
  std::ifstream open_tile(current / "0/0/0.png", std::ios::binary);
  ASSERT_TRUE(open_tile.good());

  ASSERT_EQ(publish("default", "ortho", "new"), 2);
  EXPECT_EQ(read_text(current / "0/0/0.png"), tile_bytes("new"));

  std::stringstream via_open;
  via_open << open_tile.rdbuf();
  EXPECT_EQ(via_open.str(), tile_bytes("old"));
  int tile_fd = openat(dir_fd, "0/0/0.png", O_RDONLY);
  ASSERT_GE(tile_fd, 0);
  char buf[64];
  ssize_t n = read(tile_fd, buf, sizeof(buf));
  close(tile_fd);
  close(dir_fd);
  EXPECT_EQ(std::string(buf, n > 0 ? n : 0), tile_bytes("old"));
  EXPECT_EQ(read_text(layer_path("default", "ortho") / "versions/v000001/0/0/0.png"),
            tile_bytes("old"));
}

TEST_F(CatalogTest, ListIsSortedAndFiltersByEnvironment) {
  ASSERT_EQ(publish("staging", "roads", "a"), 1);
  ASSERT_EQ(publish("production", "ortho", "a"), 1);
  ASSERT_EQ(publish("production", "ortho", "b"), 2);
  ASSERT_EQ(publish("production", "dem", "a"), 1);
  // An ingest in progress: the layer exists but has nothing published.
  auto pending = cat().begin("production", "new-layer");
  ASSERT_TRUE(pending.is_ok());
  // Not layers: dot entries and names the catalog never creates.
  fs::create_directories(root_ / ".trash" / "x");
  fs::create_directories(root_ / "production" / "lost+found");

  auto all = cat().list(std::nullopt);
  ASSERT_TRUE(all.is_ok()) << all.status().to_string();
  std::vector<std::string> names;
  for (const auto& s : *all) names.push_back(s.environment + "/" + s.layer);
  EXPECT_EQ(names, (std::vector<std::string>{"production/dem", "production/new-layer",
                                             "production/ortho", "staging/roads"}));
  EXPECT_EQ((*all)[2].current_version, 2);
  EXPECT_EQ((*all)[2].version_count, 2);
  EXPECT_EQ((*all)[0].current_version, 1);
  EXPECT_EQ((*all)[1].current_version, 0);
  EXPECT_EQ((*all)[1].version_count, 0);

  auto staging = cat().list(std::string("staging"));
  ASSERT_TRUE(staging.is_ok());
  ASSERT_EQ(staging->size(), 1u);
  EXPECT_EQ((*staging)[0].layer, "roads");
  EXPECT_EQ((*staging)[0].current_version, 1);

  auto none = cat().list(std::string("qa"));
  ASSERT_TRUE(none.is_ok());
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(cat().list(std::string("../production")).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(CatalogTest, ListOfRemovedRootIsNotFound) {
  auto c = Catalog::open((root_ / "sub").string(), /*create=*/true);
  ASSERT_TRUE(c.is_ok());
  fs::remove_all(root_ / "sub");
  auto r = c->list(std::nullopt);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "catalog '" + (root_ / "sub").string() + "' does not exist");
}

TEST_F(CatalogTest, MetadataNamesWhatIsMissing) {
  for (int i = 0; i < 3; ++i) ASSERT_EQ(publish("default", "x", "t"), i + 1);

  auto no_layer = cat().metadata("default", "nope");
  EXPECT_EQ(no_layer.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(no_layer.status().message(),
            "layer 'nope' not found in environment 'default' of catalog '" + root_.string() + "'");
  auto no_env = cat().metadata("qa", "x");
  EXPECT_EQ(no_env.status().message(),
            "layer 'x' not found in environment 'qa' of catalog '" + root_.string() + "'");

  auto no_version = cat().metadata("default", "x", 7);
  EXPECT_EQ(no_version.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(no_version.status().message(), "version 7 of layer 'x' not found (versions: 1-3)");
  EXPECT_EQ(cat().metadata("default", "x", 0).status().code(), StatusCode::kNotFound);

  auto v2 = cat().metadata("default", "x", 2);
  ASSERT_TRUE(v2.is_ok()) << v2.status().to_string();
  EXPECT_EQ((*v2)["version"], 2);
  EXPECT_EQ(cat().metadata("default", "../x").status().code(), StatusCode::kInvalidArgument);

  auto unpublished = cat().begin("default", "fresh");
  ASSERT_TRUE(unpublished.is_ok());
  auto none = cat().metadata("default", "fresh");
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("has no published version"), std::string::npos);
}

TEST_F(CatalogTest, CorruptMetadataIsAnIOErrorNamingTheFile) {
  ASSERT_EQ(publish("default", "x", "t"), 1);
  const fs::path file = layer_path("default", "x") / "versions/v000001/metadata.json";
  write_text(file, "{\"version\": 1,");
  auto r = cat().metadata("default", "x");
  EXPECT_EQ(r.status().code(), StatusCode::kIOError);
  EXPECT_NE(r.status().message().find(file.string()), std::string::npos) << r.status().message();
}

TEST_F(CatalogTest, CommitRefusesNonObjectMetadata) {
  auto w = cat().begin("default", "x");
  ASSERT_TRUE(w.is_ok());
  auto r = (*w)->commit(json::array({1, 2}));
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(layer_path("default", "x") / "current"));
  EXPECT_TRUE(fs::is_directory((*w)->staging_dir()));
}

}  // namespace
}  // namespace kiln::catalog
