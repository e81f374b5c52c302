#include "server/sigv4_replay_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

namespace kiln::server {
namespace {

using namespace std::chrono;

const sys_seconds kSigned = sys_days(year_month_day{year{2024}, month{3}, day{1}}) + hours(12);

// A distinct valid signature (64 lower-case hex digits) per number.
std::string signature(unsigned n) {
  char buf[65];
  std::snprintf(buf, sizeof buf, "%064x", n);
  return buf;
}

SigV4Accepted accepted(const std::string& key_id, unsigned n, sys_seconds signed_at = kSigned) {
  return {{key_id, "secret", "production"}, signature(n), signed_at};
}

TEST(SigV4ReplayCache, ASignatureIsClaimedOnceThenRefusedAsAReplay) {
  SigV4ReplayCache cache(minutes(15));
  EXPECT_EQ(cache.claim(accepted("AKIA1", 1), kSigned), std::nullopt);
  const auto replay = cache.claim(accepted("AKIA1", 1), kSigned + seconds(30));
  ASSERT_TRUE(replay.has_value());
  EXPECT_EQ(replay->type, "InvalidSignatureException");
  EXPECT_EQ(replay->http_status, 400);
  EXPECT_NE(replay->message.find("signature was already used"), std::string::npos)
      << replay->message;
  EXPECT_NE(replay->message.find("sign it again"), std::string::npos) << replay->message;
  // Another signature of the same key is another request.
  EXPECT_EQ(cache.claim(accepted("AKIA1", 2), kSigned), std::nullopt);
  EXPECT_EQ(cache.size("AKIA1"), 2u);
}

TEST(SigV4ReplayCache, ASignatureIsRememberedForAsLongAsItVerifies) {
  // The verifier accepts it until signed_at + 15 min (inclusive): the cache
  // must refuse the replay up to then, and may forget it after.
  SigV4ReplayCache cache(minutes(15));
  ASSERT_EQ(cache.claim(accepted("AKIA1", 1), kSigned - minutes(14)), std::nullopt);
  EXPECT_TRUE(cache.claim(accepted("AKIA1", 1), kSigned + minutes(15)).has_value());
  EXPECT_EQ(cache.size("AKIA1"), 1u);
  // One second later the verifier calls it expired; the cache let it go.
  EXPECT_EQ(cache.claim(accepted("AKIA1", 2), kSigned + minutes(15) + seconds(1)), std::nullopt);
  EXPECT_EQ(cache.size("AKIA1"), 1u);
  // A signature dated ahead (a client clock up to 15 min fast) is kept
  // until 15 min after its own date.
  ASSERT_EQ(cache.claim(accepted("AKIA1", 3, kSigned + minutes(15)), kSigned), std::nullopt);
  EXPECT_TRUE(
      cache.claim(accepted("AKIA1", 3, kSigned + minutes(15)), kSigned + minutes(29)).has_value());
}

TEST(SigV4ReplayCache, AReleasedSignatureMayBeSentAgain) {
  SigV4ReplayCache cache(minutes(15));
  ASSERT_EQ(cache.claim(accepted("AKIA1", 1), kSigned), std::nullopt);
  cache.release(accepted("AKIA1", 1));
  EXPECT_EQ(cache.size("AKIA1"), 0u);
  EXPECT_EQ(cache.claim(accepted("AKIA1", 1), kSigned), std::nullopt);
  EXPECT_TRUE(cache.claim(accepted("AKIA1", 1), kSigned).has_value());
  cache.release(accepted("AKIA2", 7));  // never claimed: nothing happens
}

TEST(SigV4ReplayCache, AFullKeyIsThrottledOtherKeysAreNotAndNothingLiveIsForgotten) {
  SigV4ReplayCache cache(minutes(15), /*max_per_key=*/3);
  for (unsigned n = 1; n <= 3; ++n)
    ASSERT_EQ(cache.claim(accepted("AKIA1", n, kSigned + seconds(n)), kSigned + seconds(n)),
              std::nullopt);
  const auto full = cache.claim(accepted("AKIA1", 4), kSigned + seconds(4));
  ASSERT_TRUE(full.has_value());
  EXPECT_EQ(full->type, "ThrottlingException");
  EXPECT_EQ(full->http_status, 400);
  // The flood refuses only its own key.
  EXPECT_EQ(cache.claim(accepted("AKIA2", 4), kSigned + seconds(4)), std::nullopt);
  // Every remembered signature is still refused: none was dropped for room.
  for (unsigned n = 1; n <= 3; ++n) {
    const auto again =
        cache.claim(accepted("AKIA1", n, kSigned + seconds(n)), kSigned + seconds(5));
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->type, "InvalidSignatureException");
  }
  // Once the oldest expires there is room again.
  EXPECT_EQ(
      cache.claim(accepted("AKIA1", 4, kSigned + minutes(15)), kSigned + minutes(15) + seconds(2)),
      std::nullopt);
  EXPECT_EQ(cache.size("AKIA1"), 3u);
}

TEST(SigV4ReplayCache, OfIdenticalRequestsAtOnceExactlyOneClaims) {
  SigV4ReplayCache cache(minutes(15));
  constexpr int kThreads = 8, kRounds = 200;
  std::atomic<int> claimed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (unsigned n = 0; n < kRounds; ++n)
        if (!cache.claim(accepted("AKIA1", n), kSigned)) ++claimed;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(claimed.load(), kRounds);
  EXPECT_EQ(cache.size("AKIA1"), static_cast<size_t>(kRounds));
}

}  // namespace
}  // namespace kiln::server
