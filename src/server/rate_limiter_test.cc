#include "server/rate_limiter.h"

#include <gtest/gtest.h>

namespace kiln::server {
namespace {

using namespace std::chrono_literals;

TEST(RateLimiter, BurstThenSteadyRatePerKey) {
  RateLimiter rl(10, 5);  // 10/s, bursts of 5
  const auto t0 = RateLimiter::Clock::now();
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(rl.allow("a", t0)) << i;
  EXPECT_FALSE(rl.allow("a", t0));
  // Another key has its own bucket.
  EXPECT_TRUE(rl.allow("b", t0));
  // 100 ms later one token is back, not two.
  EXPECT_TRUE(rl.allow("a", t0 + 100ms));
  EXPECT_FALSE(rl.allow("a", t0 + 100ms));
  // A long pause refills only up to the burst.
  const auto t1 = t0 + 10s;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(rl.allow("a", t1)) << i;
  EXPECT_FALSE(rl.allow("a", t1));
}

}  // namespace
}  // namespace kiln::server
