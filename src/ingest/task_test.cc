// Cluster tasks on the real scene data/L7_ETMs.tif: every partition task and
// the commit task, run one after the other as a worker would, publish the
// same tiles as the local engine, and re-runs change nothing.
#include "ingest/task.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "catalog/catalog.h"
#include "ingest/engine.h"
#include "ingest/plan.h"
#include "raster/test_data.h"

namespace kiln::ingest {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kStep[] = "s-TASKTEST00001";

// Layer "t" from L7_ETMs.tif bands 3,2,1, at z14 so that the scene spans
// several partitions and the reduce builds the levels below them.
IngestDefinition l7_definition(const std::string& catalog) {
  IngestDefinition def;
  def.layer = "t";
  SourceDef src;
  src.uri = test_data_path("L7_ETMs.tif");
  src.bands = {BandMap{3, 0}, BandMap{2, 1}, BandMap{1, 2}};
  def.sources.push_back(src);
  def.output.catalog = catalog;
  def.output.max_zoom = 14;
  return def;
}

TaskSpec spec_for(const IngestDefinition& def, TaskKind kind, int64_t index) {
  TaskSpec s;
  s.step_id = kStep;
  s.task_id = 100 + index;
  s.attempt = 1;
  s.kind = kind;
  s.index = index;
  s.definition = def;
  s.plan_threads = 1;
  return s;
}

// Every file under `dir` by relative path, with its bytes.
std::map<std::string, std::string> read_tree(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    files[fs::relative(e.path(), dir).string()] = bytes.str();
  }
  return files;
}

class TaskTest : public testing::Test {
 protected:
  void SetUp() override {
    // test_data_path says what to do when the scene is missing.
    ASSERT_TRUE(std::filesystem::is_regular_file(test_data_path("L7_ETMs.tif")));
    dir_ =
        fs::temp_directory_path() / ("kiln_task_test_" + std::to_string(::getpid()) + "_" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The number of partitions the tasks' plan has.
  int64_t partition_count(const IngestDefinition& def) {
    auto plan = make_plan(def, PlanOptions{1});
    EXPECT_TRUE(plan.is_ok()) << plan.status().to_string();
    return plan.is_ok() ? static_cast<int64_t>(plan->partitions.size()) : 0;
  }

  void run_partitions(const IngestDefinition& def) {
    const int64_t n = partition_count(def);
    for (int64_t i = 0; i < n; ++i) {
      Progress progress;
      auto r = run_partition_task(spec_for(def, TaskKind::kPartition, i), &progress, cancel_);
      ASSERT_TRUE(r.is_ok()) << "partition " << i << ": " << r.status().to_string();
      EXPECT_EQ(r->index, i);
    }
  }

  Result<CommitResult> commit(const IngestDefinition& def) {
    Progress progress;
    return run_commit_task(spec_for(def, TaskKind::kCommit, -1), &progress, cancel_);
  }

  fs::path staging(const std::string& catalog) const {
    return fs::path(catalog) / "default" / "t" / ".staging" / kStep;
  }

  fs::path dir_;
  CancelToken cancel_;
};

TEST_F(TaskTest, TasksPublishWhatTheLocalEngineDoes) {
  const std::string local_root = (dir_ / "local").string();
  const std::string tasks_root = (dir_ / "tasks").string();

  IngestOptions opts;
  opts.threads = 1;
  auto local = run_ingest(l7_definition(local_root), opts);
  ASSERT_TRUE(local.is_ok()) << local.status().to_string();

  const IngestDefinition def = l7_definition(tasks_root);
  ASSERT_GE(partition_count(def), 2) << "the test needs several partitions";
  run_partitions(def);
  for (int64_t i = 0; i < partition_count(def); ++i) {
    EXPECT_TRUE(fs::exists(staging(tasks_root) / partition_result_path(i))) << i;
  }
  auto committed = commit(def);
  ASSERT_TRUE(committed.is_ok()) << committed.status().to_string();
  EXPECT_EQ(committed->version, 1);
  EXPECT_EQ(committed->layer, "t");
  EXPECT_FALSE(committed->already_committed);
  EXPECT_EQ(committed->tiles, local->tiles);
  EXPECT_EQ(committed->bytes, local->bytes);
  EXPECT_FALSE(fs::exists(staging(tasks_root)));

  // Tiles byte for byte; layer.xml differs only in the catalog path it names.
  auto local_files = read_tree(fs::path(local_root) / "default" / "t" / "current");
  auto task_files = read_tree(fs::path(tasks_root) / "default" / "t" / "current");
  ASSERT_EQ(local_files.count("layer.xml"), 1u);
  ASSERT_EQ(task_files.count("layer.xml"), 1u);
  for (auto* files : {&local_files, &task_files}) {
    files->erase("layer.xml");
    files->erase("metadata.json");
  }
  EXPECT_EQ(local_files.size(), static_cast<size_t>(local->tiles));
  ASSERT_EQ(task_files.size(), local_files.size());
  for (const auto& [path, bytes] : local_files) {
    auto it = task_files.find(path);
    ASSERT_NE(it, task_files.end()) << path << " is missing from the tasks' version";
    EXPECT_TRUE(it->second == bytes) << path << " differs";
  }
  for (const auto& [path, bytes] : task_files) {
    EXPECT_EQ(path.rfind("_results", 0), std::string::npos) << path;
    EXPECT_EQ(path.rfind("_partials", 0), std::string::npos) << path;
  }
  // Levels below the partitions came from the reduce: zoom 0 holds a tile.
  EXPECT_EQ(task_files.count("0/0/0.png"), 1u);

  // Metadata: the same but for the step id, the publish's own fields and the
  // catalog root.
  auto catalog = catalog::Catalog::open(tasks_root, false);
  ASSERT_TRUE(catalog.is_ok());
  auto task_meta = catalog->metadata("default", "t");
  ASSERT_TRUE(task_meta.is_ok()) << task_meta.status().to_string();
  EXPECT_EQ((*task_meta)["step_id"], kStep);
  json a = local->metadata;
  json b = *task_meta;
  for (json* m : {&a, &b}) {
    m->erase("step_id");
    m->erase("created_at");
    m->erase("version");
    // The definition it records names the catalog, which differs here.
    if (m->contains("definition")) (*m)["definition"]["output"].erase("catalog");
  }
  EXPECT_EQ(a, b);
}

TEST_F(TaskTest, RerunsAreIdempotent) {
  const std::string root = (dir_ / "cat").string();
  const IngestDefinition def = l7_definition(root);
  run_partitions(def);
  // A partition run twice (a lapsed lease) rewrites the same files.
  auto before = read_tree(staging(root));
  run_partitions(def);
  EXPECT_EQ(read_tree(staging(root)), before);

  auto first = commit(def);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  EXPECT_FALSE(first->already_committed);

  // The commit task again (its completion was lost): same version, reported.
  auto second = commit(def);
  ASSERT_TRUE(second.is_ok()) << second.status().to_string();
  EXPECT_TRUE(second->already_committed);
  EXPECT_EQ(second->version, first->version);
  EXPECT_EQ(second->tiles, first->tiles);
  EXPECT_EQ(second->bytes, first->bytes);

  // A partition task that outlived the commit makes the staging directory
  // again; the next commit attempt still reports the version and cleans up.
  Progress progress;
  ASSERT_TRUE(
      run_partition_task(spec_for(def, TaskKind::kPartition, 0), &progress, cancel_).is_ok());
  ASSERT_TRUE(fs::exists(staging(root)));
  auto third = commit(def);
  ASSERT_TRUE(third.is_ok()) << third.status().to_string();
  EXPECT_TRUE(third->already_committed);
  EXPECT_EQ(third->version, first->version);
  EXPECT_FALSE(fs::exists(staging(root)));

  auto catalog = catalog::Catalog::open(root, false);
  ASSERT_TRUE(catalog.is_ok());
  auto layers = catalog->list("default");
  ASSERT_TRUE(layers.is_ok());
  ASSERT_EQ(layers->size(), 1u);
  EXPECT_EQ((*layers)[0].version_count, 1);
  EXPECT_EQ((*layers)[0].current_version, first->version);
}

TEST_F(TaskTest, CommitNamesAMissingPartitionResult) {
  const std::string root = (dir_ / "cat").string();
  const IngestDefinition def = l7_definition(root);
  ASSERT_GE(partition_count(def), 2);
  run_partitions(def);
  fs::remove(staging(root) / partition_result_path(1));

  auto r = commit(def);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("partition 1 of"), std::string::npos) << r.status().message();
  EXPECT_TRUE(fs::exists(staging(root))) << "a failed commit keeps the staged tiles";

  // Once that partition ran again, the commit goes through.
  Progress progress;
  ASSERT_TRUE(
      run_partition_task(spec_for(def, TaskKind::kPartition, 1), &progress, cancel_).is_ok());
  auto again = commit(def);
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_EQ(again->version, 1);
}

TEST_F(TaskTest, CommitWithoutStagingOrVersionIsNotFound) {
  auto r = commit(l7_definition((dir_ / "cat").string()));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find(kStep), std::string::npos) << r.status().message();
}

TEST_F(TaskTest, PartitionOutsideThePlanIsRefused) {
  const IngestDefinition def = l7_definition((dir_ / "cat").string());
  Progress progress;
  auto r = run_partition_task(spec_for(def, TaskKind::kPartition, 9999), &progress, cancel_);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("partition 9999"), std::string::npos);
}

TEST_F(TaskTest, CancelledPartitionStops) {
  const IngestDefinition def = l7_definition((dir_ / "cat").string());
  CancelToken cancel;
  cancel.cancel();
  Progress progress;
  auto r = run_partition_task(spec_for(def, TaskKind::kPartition, 0), &progress, cancel);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled);
  EXPECT_FALSE(fs::exists(staging((dir_ / "cat").string()) / partition_result_path(0)));
}

TEST(TaskFailure, OnlyInputErrorsOfLocalSourcesArePermanent) {
  const IngestDefinition local = l7_definition("/tmp/catalog");
  EXPECT_TRUE(task_failure_is_permanent(StatusCode::kInputError, local));
  for (StatusCode c : {StatusCode::kInvalidArgument, StatusCode::kNotFound, StatusCode::kEmpty,
                       StatusCode::kIOError, StatusCode::kCancelled, StatusCode::kInternal,
                       StatusCode::kUnavailable, StatusCode::kResourceExhausted}) {
    EXPECT_FALSE(task_failure_is_permanent(c, local)) << status_code_name(c);
  }
  // A read over the network may fail once and work the next time.
  IngestDefinition remote = local;
  remote.sources.push_back(local.sources[0]);
  remote.sources[1].uri = "/vsicurl/http://127.0.0.1:9/scene.tif";
  EXPECT_FALSE(task_failure_is_permanent(StatusCode::kInputError, remote));
}

TEST(TaskSpecJson, RoundTrips) {
  TaskSpec s = spec_for(l7_definition("/tmp/catalog"), TaskKind::kPartition, 4);
  s.plan_threads = 3;
  json j = task_spec_to_json(s);
  auto back = parse_task_spec(j);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->step_id, s.step_id);
  EXPECT_EQ(back->task_id, s.task_id);
  EXPECT_EQ(back->attempt, 1);
  EXPECT_EQ(back->kind, TaskKind::kPartition);
  EXPECT_EQ(back->index, 4);
  EXPECT_EQ(back->plan_threads, 3);
  EXPECT_EQ(to_json(back->definition), to_json(s.definition));

  json commit = j;
  commit["kind"] = "commit";
  commit["index"] = -1;
  auto c = parse_task_spec(commit);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->kind, TaskKind::kCommit);
  EXPECT_EQ(c->index, -1);
}

TEST(TaskSpecJson, ErrorsNameTheField) {
  json good = task_spec_to_json(spec_for(l7_definition("/tmp/catalog"), TaskKind::kPartition, 0));
  auto message = [](const json& j) {
    auto r = parse_task_spec(j);
    EXPECT_FALSE(r.is_ok());
    return r.is_ok() ? std::string() : r.status().message();
  };
  json j = good;
  j.erase("step_id");
  EXPECT_EQ(message(j), "step_id: is required");
  j = good;
  j["step_id"] = "../escape";
  EXPECT_NE(message(j).find("step_id"), std::string::npos);
  j = good;
  j["kind"] = "reduce";
  EXPECT_NE(message(j).find("kind:"), std::string::npos);
  j = good;
  j["index"] = -3;
  EXPECT_NE(message(j).find("index:"), std::string::npos);
  j = good;
  j["plan"]["threads"] = 0;
  EXPECT_NE(message(j).find("plan.threads"), std::string::npos);
  j = good;
  j["definition"]["output"]["tile_size"] = "big";
  EXPECT_EQ(message(j).rfind("definition: output.tile_size", 0), 0u) << message(j);
}

}  // namespace
}  // namespace kiln::ingest
