// The Slurm executor's pure parts: array index ranges, which job states are
// live, how sinfo's node states read, and the client's refusals. The parts
// that talk to Slurm are tested against a real cluster in
// tests/e2e/test_slurm_executor.py.
#include <gtest/gtest.h>

#include "slurm/dispatcher.h"
#include "slurm/slurm_client.h"
#include "slurm/slurm_executor.h"

namespace kiln::slurm {
namespace {

TEST(IndexRanges, CompressRunsForSbatchArray) {
  EXPECT_EQ(index_ranges({}), "");
  EXPECT_EQ(index_ranges({4}), "4");
  EXPECT_EQ(index_ranges({0, 1, 2, 3}), "0-3");
  EXPECT_EQ(index_ranges({0, 1, 2, 3, 5, 7, 8}), "0-3,5,7-8");
  EXPECT_EQ(index_ranges({2, 4, 6}), "2,4,6");
}

TEST(JobStates, LiveOnesMayStillRun) {
  for (const char* s : {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "SUSPENDED"})
    EXPECT_TRUE(is_live_state(s)) << s;
  for (const char* s : {"COMPLETED", "FAILED", "CANCELLED", "NODE_FAIL", "TIMEOUT", "PREEMPTED",
                        "OUT_OF_MEMORY", "BOOT_FAIL", ""})
    EXPECT_FALSE(is_live_state(s)) << s;
}

TEST(NodeStates, PowerSavingSuffixesAreRead) {
  EXPECT_TRUE(SlurmExecutor::up("idle"));
  EXPECT_TRUE(SlurmExecutor::up("mixed"));
  EXPECT_TRUE(SlurmExecutor::up("allocated"));
  EXPECT_FALSE(SlurmExecutor::up("idle~"));  // powered down
  EXPECT_FALSE(SlurmExecutor::up("idle#"));  // powering up
  EXPECT_FALSE(SlurmExecutor::up("idle%"));  // powering down
  EXPECT_FALSE(SlurmExecutor::up("down*"));  // not responding
  EXPECT_FALSE(SlurmExecutor::up("drained"));
  EXPECT_TRUE(SlurmExecutor::powered_down("drained~"));
  EXPECT_TRUE(SlurmExecutor::powered_down("idle%"));
  EXPECT_FALSE(SlurmExecutor::powered_down("idle"));
}

TEST(SlurmClient, RefusesToRunWithoutSlurmConf) {
  auto c = SlurmClient::create({"", "", std::chrono::seconds(1)});
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("DNS"), std::string::npos);
}

TEST(SlurmClient, NamesAMissingClient) {
  auto c =
      SlurmClient::create({"/etc/slurm/slurm.conf", "/nonexistent-bin", std::chrono::seconds(1)});
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_NE(c.status().message().find("/nonexistent-bin/sbatch"), std::string::npos)
      << c.status().message();
}

}  // namespace
}  // namespace kiln::slurm
