// The console's memory of slots and demand: a sample every kSampleMs, each
// environment shown the cluster's slots and only its own queue, the oldest
// dropped past kKeepSamples.
#include "server/cluster_history.h"

#include <gtest/gtest.h>

namespace kiln::server {
namespace {

TEST(ClusterHistory, SamplesEveryIntervalAndShowsEachEnvironmentItsOwnQueue) {
  ServerConfig c;
  c.environments.push_back({"production", {}, "/c", 1, 10});
  c.environments.push_back({"staging", {}, "/c", 1, 0});
  int64_t busy = 0;
  int reads = 0;
  ClusterHistory h(c, [&](const EnvironmentConfig& env) -> Result<ClusterInfo> {
    ++reads;
    ClusterInfo info;
    info.slots_total = 8;
    info.slots_busy = busy;
    info.queued_tasks = env.name == "production" ? 5 : 2;
    return info;
  });
  h.tick(1000);
  busy = 3;
  h.tick(1000 + ClusterHistory::kSampleMs - 1);  // too soon: no sample
  h.tick(1000 + ClusterHistory::kSampleMs);
  EXPECT_EQ(reads, 4);  // two samples of two environments
  const auto p = h.to_json(c.environments[0]);
  EXPECT_EQ(p["interval_seconds"], ClusterHistory::kSampleMs / 1000);
  EXPECT_EQ(p["samples"], nlohmann::json::parse("[[1000, 8, 0, 5], [11000, 8, 3, 5]]"));
  EXPECT_EQ(h.to_json(c.environments[1])["samples"],
            nlohmann::json::parse("[[1000, 8, 0, 2], [11000, 8, 3, 2]]"));
}

TEST(ClusterHistory, KeepsTheLastSamplesAndSkipsAFailedRead) {
  ServerConfig c;
  c.environments.push_back({"production", {}, "/c", 1, 10});
  bool fail = false;
  ClusterHistory h(c, [&](const EnvironmentConfig&) -> Result<ClusterInfo> {
    if (fail) return io_error("store unavailable");
    return ClusterInfo{};
  });
  for (size_t i = 0; i < ClusterHistory::kKeepSamples + 5; ++i) {
    h.tick(static_cast<int64_t>(i) * ClusterHistory::kSampleMs);
  }
  auto samples = h.to_json(c.environments[0])["samples"];
  ASSERT_EQ(samples.size(), ClusterHistory::kKeepSamples);
  EXPECT_EQ(samples[0][0], 5 * ClusterHistory::kSampleMs);
  fail = true;
  h.tick(static_cast<int64_t>(ClusterHistory::kKeepSamples + 5) * ClusterHistory::kSampleMs);
  EXPECT_EQ(h.to_json(c.environments[0])["samples"].size(), ClusterHistory::kKeepSamples);
}

}  // namespace
}  // namespace kiln::server
