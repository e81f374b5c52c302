// Per-environment request quotas: each environment's bucket is its own, at
// its configured rate and burst, and a refusal names the environment.
#include "server/quotas.h"

#include <gtest/gtest.h>

namespace kiln::server {
namespace {

using namespace std::chrono_literals;

TEST(EnvironmentQuotas, EachEnvironmentHasItsOwnRateAndBurst) {
  ServerConfig c;
  c.environments.push_back({"production", {}, "/c", 1, 10});
  c.environments.push_back({"staging", {}, "/c", 1, 0});
  c.environments[1].requests_per_second = 2;
  c.environments[1].request_burst = 3;
  EnvironmentQuotas q(c);
  const auto t0 = RateLimiter::Clock::now();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(q.take_request(c.environments[1], t0).is_ok()) << i;
  Status over = q.take_request(c.environments[1], t0);
  EXPECT_EQ(over.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(over.message().find("environment 'staging' is over its request rate (2 requests/s, "
                                "bursts of 3"),
            std::string::npos)
      << over.message();
  // Production's default bucket is untouched by staging's flood.
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(q.take_request(c.environments[0], t0).is_ok()) << i;
  // Half a second refills one of staging's requests.
  EXPECT_TRUE(q.take_request(c.environments[1], t0 + 500ms).is_ok());
  EXPECT_FALSE(q.take_request(c.environments[1], t0 + 500ms).is_ok());
}

}  // namespace
}  // namespace kiln::server
