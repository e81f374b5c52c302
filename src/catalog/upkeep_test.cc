// Catalog upkeep: remove_layer, rollback, prune, their dry runs, and their
// refusal while an ingest of the layer is in progress.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "catalog/catalog.h"

namespace kiln::catalog {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Kind = UpkeepChange::Kind;

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

pid_t dead_pid() {
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  int status = 0;
  waitpid(pid, &status, 0);
  return pid;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Every path under `root` with what it is: a file's bytes, a symlink's
// target, "<dir>" for a directory. Equal snapshots: nothing changed.
std::map<std::string, std::string> snapshot(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    const std::string rel = fs::relative(it->path(), root).string();
    if (it->is_symlink()) {
      out[rel] = "-> " + fs::read_symlink(it->path()).string();
    } else if (it->is_directory()) {
      out[rel] = "<dir>";
    } else {
      out[rel] = read_text(it->path());
    }
  }
  return out;
}

class UpkeepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "kiln_upkeep_test_XXXXXX").string();
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
  // The tag of the version a reader of current/0/0/0.png sees.
  std::string current_tile(const std::string& env, const std::string& layer) const {
    return read_text(layer_path(env, layer) / "current/0/0/0.png");
  }

  // Publishes one version whose tile 0/0/0.png holds `tag`.
  int publish(const std::string& env, const std::string& layer, const std::string& tag) {
    auto w = cat().begin(env, layer);
    EXPECT_TRUE(w.is_ok()) << w.status().to_string();
    if (!w.is_ok()) return 0;
    EXPECT_TRUE((*w)->write_tile(0, 0, 0, "png", tag).is_ok());
    auto v = (*w)->commit(json{{"layer", layer}});
    EXPECT_TRUE(v.is_ok()) << v.status().to_string();
    return v.is_ok() ? *v : 0;
  }
  void publish_n(const std::string& env, const std::string& layer, int n) {
    for (int i = 1; i <= n; ++i) {
      std::string tag = "t";
      tag += std::to_string(i);
      ASSERT_EQ(publish(env, layer, tag), i);
    }
  }

  // A staging directory with an owner file, as a writer leaves it.
  void make_staging(const std::string& env, const std::string& layer, const std::string& id,
                    long pid, const std::string& host, bool shared) {
    const fs::path staging = layer_path(env, layer) / ".staging";
    fs::create_directories(staging / id / "0/0");
    write_text(staging / id / "0/0/0.png", "partial");
    write_text(staging / ("." + id + ".owner"),
               json{{"pid", pid}, {"host", host}, {"shared", shared}}.dump());
  }

  std::vector<int> versions_on_disk(const std::string& env, const std::string& layer) const {
    std::vector<int> out;
    const fs::path dir = layer_path(env, layer) / "versions";
    if (!fs::exists(dir)) return out;
    for (const auto& e : fs::directory_iterator(dir)) {
      out.push_back(std::stoi(e.path().filename().string().substr(1)));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  fs::path root_;
  std::optional<Catalog> catalog_;
};

TEST_F(UpkeepTest, RemoveLayerDryRunChangesNothingThenRemovesItAll) {
  publish_n("default", "ortho", 2);
  publish_n("default", "other", 1);
  const auto before = snapshot(root_);

  auto dry = cat().remove_layer("default", "ortho", /*dry_run=*/true);
  ASSERT_TRUE(dry.is_ok()) << dry.status().to_string();
  EXPECT_EQ(snapshot(root_), before);
  EXPECT_TRUE(dry->dry_run);
  EXPECT_EQ(dry->environment, "default");
  ASSERT_EQ(dry->changes.size(), 1u);
  const UpkeepChange& c = dry->changes[0];
  EXPECT_EQ(c.kind, Kind::kRemoveLayer);
  EXPECT_EQ(c.layer, "ortho");
  EXPECT_EQ(c.versions, (std::vector<int>{1, 2}));
  EXPECT_EQ(c.from_version, 2);
  EXPECT_EQ(c.path, layer_path("default", "ortho").string());
  EXPECT_EQ(describe(c, true, false), "would remove layer 'ortho' with versions 1-2 (current 2)");

  auto done = cat().remove_layer("default", "ortho", /*dry_run=*/false);
  ASSERT_TRUE(done.is_ok()) << done.status().to_string();
  EXPECT_FALSE(done->dry_run);
  ASSERT_EQ(done->changes.size(), 1u);
  EXPECT_EQ(describe(done->changes[0], false, true),
            "removed layer 'ortho' with versions 1-2 (current 2): " +
                layer_path("default", "ortho").string());
  // Gone whole, with no hidden remains beside it; the other layer untouched.
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(root_ / "default")) {
    left.push_back(e.path().filename().string());
  }
  EXPECT_EQ(left, std::vector<std::string>{"other"});
  EXPECT_EQ(current_tile("default", "other"), "t1");
  auto listed = cat().list(std::string("default"));
  ASSERT_TRUE(listed.is_ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].layer, "other");

  // Its name can be used again, from version 1.
  EXPECT_EQ(publish("default", "ortho", "again"), 1);
}

TEST_F(UpkeepTest, RemoveLayerNamesWhatIsMissingOrUnsafe) {
  publish_n("production", "ortho", 1);
  for (bool dry : {true, false}) {
    auto r = cat().remove_layer("production", "nope", dry);
    EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
    EXPECT_EQ(r.status().message(), "layer 'nope' not found in environment 'production'");
    // Another environment's layer is simply not there.
    auto other = cat().remove_layer("staging", "ortho", dry);
    EXPECT_EQ(other.status().code(), StatusCode::kNotFound);
    EXPECT_EQ(other.status().message(), "layer 'ortho' not found in environment 'staging'");
    auto bad = cat().remove_layer("production", "../production", dry);
    EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(contains(bad.status().message(), "'../production'")) << bad.status().message();
  }
  EXPECT_FALSE(fs::exists(root_ / "staging"));
  EXPECT_EQ(current_tile("production", "ortho"), "t1");
}

TEST_F(UpkeepTest, EveryOperationIsRefusedWhileAnIngestIsInProgress) {
  publish_n("default", "ortho", 2);
  auto writer = cat().begin("default", "ortho");  // an ingest of this process
  ASSERT_TRUE(writer.is_ok());
  ASSERT_TRUE((*writer)->write_tile(0, 0, 0, "png", "new").is_ok());
  const std::string id = fs::path((*writer)->staging_dir()).filename().string();
  const auto before = snapshot(root_);

  for (bool dry : {true, false}) {
    auto rm = cat().remove_layer("default", "ortho", dry);
    EXPECT_EQ(rm.status().code(), StatusCode::kUnavailable);
    EXPECT_EQ(rm.status().message(),
              "cannot remove layer 'ortho' in environment 'default': an ingest is in progress: "
              "staging '.staging/" +
                  id + "' (process " + std::to_string(getpid()) +
                  " on this host is writing it); try again when it has ended");
    auto rb = cat().rollback("default", "ortho", 1, dry);
    EXPECT_EQ(rb.status().code(), StatusCode::kUnavailable);
    EXPECT_TRUE(contains(rb.status().message(), "cannot roll back layer 'ortho'"))
        << rb.status().message();
    PruneOptions one;
    one.keep = 0;
    one.layer = "ortho";
    one.dry_run = dry;
    auto p1 = cat().prune("default", one);
    EXPECT_EQ(p1.status().code(), StatusCode::kUnavailable);
    EXPECT_TRUE(contains(p1.status().message(), id)) << p1.status().message();
    // Over the whole environment the busy layer is skipped, with the reason.
    PruneOptions all;
    all.keep = 0;
    all.dry_run = dry;
    auto pa = cat().prune("default", all);
    ASSERT_TRUE(pa.is_ok()) << pa.status().to_string();
    EXPECT_TRUE(pa->changes.empty());
    ASSERT_EQ(pa->skipped.size(), 1u);
    EXPECT_EQ(pa->skipped[0].layer, "ortho");
    EXPECT_TRUE(contains(pa->skipped[0].reason, id));
  }
  EXPECT_EQ(snapshot(root_), before);

  // The ingest publishes undisturbed; then the layer can be rolled back.
  auto v = (*writer)->commit(json::object());
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(*v, 3);
  auto rb = cat().rollback("default", "ortho", 1, false);
  ASSERT_TRUE(rb.is_ok()) << rb.status().to_string();
  EXPECT_EQ(current_tile("default", "ortho"), "t1");
}

TEST_F(UpkeepTest, StagingOfACrashedWriterDoesNotBlockButOthersDo) {
  publish_n("default", "ortho", 1);
  make_staging("default", "ortho", "crashed", dead_pid(), host_name(), false);
  // Removing the layer takes the crashed writer's leftovers with it.
  auto rm = cat().remove_layer("default", "ortho", false);
  ASSERT_TRUE(rm.is_ok()) << rm.status().to_string();
  EXPECT_FALSE(fs::exists(layer_path("default", "ortho")));

  struct Case {
    std::string id;
    long pid;
    std::string host;
    bool shared;
    std::string why;
  };
  const std::vector<Case> blocking = {
      {"step-1", dead_pid(), host_name(), true, "shared by the tasks of a cluster step"},
      {"elsewhere", 4242, host_name() + "-other", false,
       "on host '" + host_name() + "-other' writes it"},
  };
  for (const Case& c : blocking) {
    publish_n("default", c.id, 1);
    make_staging("default", c.id, c.id, c.pid, c.host, c.shared);
    auto r = cat().remove_layer("default", c.id, false);
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << c.id;
    EXPECT_TRUE(contains(r.status().message(), c.why)) << r.status().message();
    EXPECT_TRUE(fs::exists(layer_path("default", c.id) / "current/0/0/0.png"));
  }
  // A staging directory without an owner file: whose it is cannot be told.
  publish_n("default", "unowned", 1);
  fs::create_directories(layer_path("default", "unowned") / ".staging/mystery");
  auto r = cat().remove_layer("default", "unowned", false);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(contains(r.status().message(), "no readable owner file")) << r.status().message();
}

TEST_F(UpkeepTest, RollbackSwapsCurrentAndLaterCommitsTakeNewNumbers) {
  publish_n("default", "ortho", 3);
  const auto before = snapshot(root_);
  auto dry = cat().rollback("default", "ortho", 1, /*dry_run=*/true);
  ASSERT_TRUE(dry.is_ok()) << dry.status().to_string();
  EXPECT_EQ(snapshot(root_), before);
  ASSERT_EQ(dry->changes.size(), 1u);
  EXPECT_EQ(dry->changes[0].kind, Kind::kMoveCurrent);
  EXPECT_EQ(dry->changes[0].version, 1);
  EXPECT_EQ(dry->changes[0].from_version, 3);
  EXPECT_EQ(describe(dry->changes[0], true, false),
            "would point layer 'ortho' at version 1 (was 3)");

  auto done = cat().rollback("default", "ortho", 1, false);
  ASSERT_TRUE(done.is_ok()) << done.status().to_string();
  EXPECT_EQ(describe(done->changes[0], false, false), "pointed layer 'ortho' at version 1 (was 3)");
  EXPECT_EQ(current_target("default", "ortho"), "versions/v000001");
  EXPECT_EQ(current_tile("default", "ortho"), "t1");
  auto meta = cat().metadata("default", "ortho");
  ASSERT_TRUE(meta.is_ok());
  EXPECT_EQ((*meta)["version"], 1);
  EXPECT_EQ(versions_on_disk("default", "ortho"), (std::vector<int>{1, 2, 3}));
  // No temporary link is left beside `current`.
  for (const auto& e : fs::directory_iterator(layer_path("default", "ortho"))) {
    EXPECT_FALSE(contains(e.path().filename().string(), ".tmp")) << e.path();
  }
  auto listed = cat().list(std::string("default"));
  ASSERT_TRUE(listed.is_ok());
  EXPECT_EQ((*listed)[0].current_version, 1);

  // Rolling "back" to the current version changes nothing; forward works too.
  auto same = cat().rollback("default", "ortho", 1, false);
  ASSERT_TRUE(same.is_ok());
  EXPECT_TRUE(same->changes.empty());
  ASSERT_TRUE(cat().rollback("default", "ortho", 2, false).is_ok());
  EXPECT_EQ(current_tile("default", "ortho"), "t2");

  // The next publish takes 1 + the highest number, not current + 1.
  EXPECT_EQ(publish("default", "ortho", "t4"), 4);
  EXPECT_EQ(current_tile("default", "ortho"), "t4");
}

TEST_F(UpkeepTest, RollbackToAMissingVersionListsTheVersionsThereAre) {
  publish_n("default", "ortho", 3);
  fs::remove_all(layer_path("default", "ortho") / "versions/v000002");
  for (int to : {2, 7, 0, -1}) {
    auto r = cat().rollback("default", "ortho", to, false);
    EXPECT_EQ(r.status().code(), StatusCode::kNotFound) << to;
    EXPECT_EQ(r.status().message(), "version " + std::to_string(to) +
                                        " of layer 'ortho' not found in environment 'default' "
                                        "(versions: 1, 3)");
  }
  EXPECT_EQ(current_target("default", "ortho"), "versions/v000003");
  auto none = cat().rollback("default", "nope", 1, false);
  EXPECT_EQ(none.status().message(), "layer 'nope' not found in environment 'default'");

  // A layer with no version at all says so.
  auto w = cat().begin("default", "empty");
  ASSERT_TRUE(w.is_ok());
  (*w)->abort();
  auto empty = cat().rollback("default", "empty", 1, false);
  EXPECT_EQ(empty.status().message(),
            "version 1 of layer 'empty' not found in environment 'default' (versions: none)");
}

TEST_F(UpkeepTest, PruneKeepsTheNewestVersionsAndTheCurrentOne) {
  publish_n("default", "ortho", 5);
  ASSERT_TRUE(cat().rollback("default", "ortho", 1, false).is_ok());
  PruneOptions o;
  o.keep = 2;
  o.dry_run = true;
  const auto before = snapshot(root_);
  auto dry = cat().prune("default", o);
  ASSERT_TRUE(dry.is_ok()) << dry.status().to_string();
  EXPECT_EQ(snapshot(root_), before);
  std::vector<std::string> said;
  for (const auto& c : dry->changes) said.push_back(describe(c, true, false));
  EXPECT_EQ(said, (std::vector<std::string>{"would remove version 2 of layer 'ortho'",
                                            "would remove version 3 of layer 'ortho'"}));
  EXPECT_TRUE(dry->skipped.empty());

  o.dry_run = false;
  auto done = cat().prune("default", o);
  ASSERT_TRUE(done.is_ok()) << done.status().to_string();
  ASSERT_EQ(done->changes.size(), 2u);
  EXPECT_EQ(done->changes[0].path, (layer_path("default", "ortho") / "versions/v000002").string());
  EXPECT_EQ(versions_on_disk("default", "ortho"), (std::vector<int>{1, 4, 5}));
  EXPECT_EQ(current_tile("default", "ortho"), "t1");
  // Nothing hidden is left in versions/.
  EXPECT_EQ(std::distance(fs::directory_iterator(layer_path("default", "ortho") / "versions"),
                          fs::directory_iterator()),
            3);

  // keep 0: only the current version stays. Again: nothing more to do.
  o.keep = 0;
  ASSERT_TRUE(cat().prune("default", o).is_ok());
  EXPECT_EQ(versions_on_disk("default", "ortho"), (std::vector<int>{1}));
  auto again = cat().prune("default", o);
  ASSERT_TRUE(again.is_ok());
  EXPECT_TRUE(again->changes.empty());
  EXPECT_EQ(publish("default", "ortho", "t6"), 6);

  o.keep = -1;
  auto bad = cat().prune("default", o);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "keep: must be 0 or more, not -1");
}

TEST_F(UpkeepTest, PrunedNewestNumbersAreRecordedAndNeverGivenAgain) {
  publish_n("default", "ortho", 3);
  ASSERT_TRUE(cat().rollback("default", "ortho", 1, false).is_ok());
  PruneOptions o;
  o.keep = 0;
  ASSERT_TRUE(cat().prune("default", o).is_ok());
  const fs::path record = layer_path("default", "ortho") / ".highest_version";
  EXPECT_EQ(read_text(record), "3\n");
  // Hidden: listings and `ls` of the catalog do not show it as a layer.
  auto listed = cat().list(std::string("default"));
  ASSERT_TRUE(listed.is_ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].version_count, 1);

  // A record that holds no number: the commit fails, naming it, and
  // the layer stays as it was.
  write_text(record, "three");
  auto w = cat().begin("default", "ortho");
  ASSERT_TRUE(w.is_ok());
  auto v = (*w)->commit(json::object());
  EXPECT_EQ(v.status().code(), StatusCode::kIOError);
  EXPECT_TRUE(contains(v.status().message(), record.string())) << v.status().message();
  EXPECT_EQ(current_tile("default", "ortho"), "t1");
  write_text(record, "3\n");
  v = (*w)->commit(json::object());
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(*v, 4);
}

TEST_F(UpkeepTest, PruneRemovesLayersFailedIngestsLeftAndStaleStaging) {
  publish_n("default", "good", 1);
  make_staging("default", "good", "crashed", dead_pid(), host_name(), false);
  // A failed first ingest: aborted, it leaves the layer with no version.
  auto w = cat().begin("default", "failed");
  ASSERT_TRUE(w.is_ok());
  (*w)->abort();
  // A crashed first ingest: its staging is all there is.
  make_staging("default", "crashed", "c1", dead_pid(), host_name(), false);
  // A first ingest still running: no current either, but busy.
  auto running = cat().begin("default", "running");
  ASSERT_TRUE(running.is_ok());
  // A layer kiln serve knows to be busy.
  publish_n("default", "queued", 2);
  make_staging("production", "elsewhere", "c2", dead_pid(), host_name(), false);

  PruneOptions o;
  o.keep = 1;
  o.busy["queued"] = "step s-0000000000001 is PENDING";
  for (bool dry : {true, false}) {
    o.dry_run = dry;
    const auto before = snapshot(root_);
    auto r = cat().prune("default", o);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    if (dry) {
      EXPECT_EQ(snapshot(root_), before);
    }
    std::vector<std::string> said;
    for (const auto& c : r->changes) said.push_back(describe(c, dry, false));
    const std::string verb = dry ? "would remove " : "removed ";
    EXPECT_EQ(said, (std::vector<std::string>{
                        verb + "layer 'crashed', which has no version",
                        verb + "layer 'failed', which has no version",
                        verb + "staging 'crashed' of layer 'good', whose writer is gone",
                    }));
    ASSERT_EQ(r->skipped.size(), 2u);
    EXPECT_EQ(r->skipped[0].layer, "queued");
    EXPECT_EQ(r->skipped[0].reason, "step s-0000000000001 is PENDING");
    EXPECT_EQ(r->skipped[1].layer, "running");
    EXPECT_TRUE(contains(r->skipped[1].reason, "on this host is writing it"));
  }
  EXPECT_FALSE(fs::exists(layer_path("default", "failed")));
  EXPECT_FALSE(fs::exists(layer_path("default", "crashed")));
  EXPECT_FALSE(fs::exists(layer_path("default", "good") / ".staging/crashed"));
  EXPECT_FALSE(fs::exists(layer_path("default", "good") / ".staging/.crashed.owner"));
  EXPECT_EQ(current_tile("default", "good"), "t1");
  EXPECT_EQ(versions_on_disk("default", "queued"), (std::vector<int>{1, 2}));
  EXPECT_TRUE(fs::is_directory((*running)->staging_dir()));
  // Another environment is not pruned.
  EXPECT_TRUE(fs::exists(layer_path("production", "elsewhere") / ".staging/c2"));

  // Named, a busy layer is an error; an unknown one is not found.
  o.layer = "queued";
  auto busy = cat().prune("default", o);
  EXPECT_EQ(busy.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(busy.status().message(),
            "cannot prune layer 'queued' in environment 'default': step s-0000000000001 is "
            "PENDING; try again when it has ended");
  o.layer = "nope";
  EXPECT_EQ(cat().prune("default", o).status().code(), StatusCode::kNotFound);
  // An environment with no layers has nothing to prune.
  o.layer.reset();
  auto none = cat().prune("qa", o);
  ASSERT_TRUE(none.is_ok());
  EXPECT_TRUE(none->changes.empty());
  EXPECT_FALSE(fs::exists(root_ / "qa"));
}

}  // namespace
}  // namespace kiln::catalog
