// kiln.toml parsing: the documented example loads, and mistakes name the key.
#include "config/server_config.h"

#include <cstdlib>

#include <gtest/gtest.h>

namespace kiln::config {
namespace {

const std::string kHash(64, 'a');

std::string env_block(const std::string& name, const std::string& hash = kHash) {
  return "[[environment]]\nname = \"" + name + "\"\ntoken_sha256 = [\"" + hash +
         "\"]\ncatalog = \"cat\"\n";
}

TEST(Config, ExampleFileLoadsWithItsDocumentedValues) {
  auto c = load_config(std::string(KILN_SOURCE_DIR) + "/examples/kiln.toml");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->host, "127.0.0.1");
  EXPECT_EQ(c->port, 8470);
  ASSERT_EQ(c->environments.size(), 2u);
  EXPECT_EQ(c->environments[0].name, "production");
  EXPECT_GT(c->environments[0].priority, c->environments[1].priority);
  // Relative paths resolve against the file's directory.
  EXPECT_EQ(c->state_dir, std::string(KILN_SOURCE_DIR) + "/examples/kiln-state");
  EXPECT_EQ(c->environments[1].catalog, std::string(KILN_SOURCE_DIR) + "/examples/catalog");
  EXPECT_TRUE(c->emr_enabled);
  ASSERT_EQ(c->environments[0].aws_keys.size(), 1u);
  EXPECT_EQ(c->environments[0].aws_keys[0].access_key_id, "AKIAKILNPRODUCTION01");
  EXPECT_EQ(c->worker_nice, 10);
  EXPECT_EQ(c->render_processes, 2);
  EXPECT_EQ(c->render_timeout_seconds, 10);
  // The elastic part: a warm on-demand core and a spot group that target
  // tracking grows.
  ASSERT_EQ(c->autoscaler.groups.size(), 3u);
  EXPECT_EQ(c->autoscaler.groups[0].name, "core");
  EXPECT_TRUE(c->autoscaler.groups[0].core);
  EXPECT_EQ(c->autoscaler.groups[0].min_nodes, 1);
  EXPECT_EQ(c->autoscaler.groups[1].market, elastic::Market::kSpot);
  ASSERT_EQ(c->autoscaler.targets.size(), 1u);
  EXPECT_EQ(c->autoscaler.targets[0].group, "spot");
  EXPECT_EQ(c->autoscaler.period_ms, 10000);
  EXPECT_EQ(c->spot_notice_ms, 120000);
  EXPECT_EQ(c->spot_interruption_rate_per_node_hour, 0);
  EXPECT_TRUE(c->operator_token_sha256.empty());
  // Source roots: relative ones resolve like catalog; remote ones as given.
  ASSERT_EQ(c->environments[0].source_roots.size(), 4u);
  EXPECT_EQ(c->environments[0].source_roots[0], std::string(KILN_SOURCE_DIR) + "/data/");
  EXPECT_EQ(c->environments[0].source_roots[2], "/vsis3/rf-production-imagery/");
  EXPECT_EQ(c->environments[0].source_roots[3], "https://imagery.example.com/scenes/");
  // Quotas: the defaults for production, tighter ones for staging.
  EXPECT_TRUE(c->metrics_token_sha256.empty());
  EXPECT_EQ(c->environments[0].requests_per_second, kDefaultRequestsPerSecond);
  EXPECT_EQ(c->environments[0].request_burst, kDefaultRequestBurst);
  EXPECT_EQ(c->environments[0].max_pending_steps, kDefaultMaxPendingSteps);
  EXPECT_EQ(c->environments[1].requests_per_second, 200);
  EXPECT_EQ(c->environments[1].request_burst, 400);
  EXPECT_EQ(c->environments[1].max_pending_steps, 100);
}

TEST(Config, SlurmExampleLoads) {
  auto c = load_config(std::string(KILN_SOURCE_DIR) + "/examples/kiln-slurm.toml");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->executor, "slurm");
  EXPECT_EQ(c->slurm.conf, std::string(KILN_SOURCE_DIR) + "/examples/@SLURM_CONF@");
  EXPECT_EQ(c->slurm.partitions.at("production"), "production,cloud");
  EXPECT_EQ(c->slurm.poll_ms, 1000);
  EXPECT_EQ(c->slurm.resubmit_after_seconds, 5);
  ASSERT_EQ(c->autoscaler.groups.size(), 2u);
  EXPECT_EQ(c->autoscaler.groups[1].node_names, (std::vector<std::string>{"cloud1", "cloud2"}));
}

TEST(Config, SlurmMistakesNameTheKey) {
  const std::string envs = env_block("production");
  auto bad = [&](const std::string& text) {
    auto c = parse_config(text + envs, "/base");
    EXPECT_FALSE(c.is_ok()) << text;
    return c.is_ok() ? std::string() : c.status().message();
  };
  EXPECT_NE(bad("[executor]\nkind = \"slurm\"\n").find("slurm.conf: required"), std::string::npos);
  EXPECT_NE(bad("[executor]\nkind = \"pbs\"\n").find("known: local, slurm"), std::string::npos);
  EXPECT_NE(bad("[slurm]\nconf = \"s.conf\"\npartitions = \"x\"\n").find("slurm.partitions"),
            std::string::npos);
  EXPECT_NE(bad("[slurm]\nconf = \"s.conf\"\npartitions = { production = 3 }\n")
                .find("slurm.partitions.production"),
            std::string::npos);
  EXPECT_NE(bad("[slurm]\nconf = \"s.conf\"\npoll = 3\n").find("poll"), std::string::npos);
  auto ok =
      parse_config("[executor]\nkind = \"slurm\"\n[slurm]\nconf = \"s.conf\"\n" + envs, "/base");
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(ok->slurm.conf, "/base/s.conf");
  EXPECT_TRUE(ok->slurm.partitions.empty());
}

TEST(Config, AwsSecretsComeFromTheEnvironmentWhenAsked) {
  const std::string text =
      env_block("a") +
      "aws_access_keys = [{ id = \"AKIA1\", secret_env = \"KILN_TEST_SECRET\" }]\n";
  ::unsetenv("KILN_TEST_SECRET");
  auto missing = parse_config(text, "/base");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().message().find("KILN_TEST_SECRET is not set"), std::string::npos);
  ::setenv("KILN_TEST_SECRET", "s3cret", 1);
  auto c = parse_config(text, "/base");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->environments[0].aws_keys[0].secret_access_key, "s3cret");
  ::unsetenv("KILN_TEST_SECRET");
}

TEST(Config, DefaultsApplyWhenSectionsAreMissing) {
  auto c = parse_config(env_block("staging"), "/base");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->lease_seconds, 15);
  EXPECT_EQ(c->workers, 1);
  EXPECT_EQ(c->worker_nice, 10);
  EXPECT_EQ(c->state_dir, "/base/kiln-state");
  // Without [[group]]: the [executor] pool is the one core group.
  ASSERT_EQ(c->autoscaler.groups.size(), 1u);
  EXPECT_TRUE(c->autoscaler.groups[0].core);
  EXPECT_EQ(c->autoscaler.groups[0].min_nodes, 1);
  EXPECT_EQ(c->autoscaler.groups[0].max_nodes, 1);
  EXPECT_EQ(c->autoscaler.groups[0].slots_per_node, 2);
  EXPECT_EQ(c->environments[0].concurrency, 1);
}

TEST(Config, MistakesNameTheKey) {
  struct Case {
    std::string text, expect;
  };
  const Case cases[] = {
      {"[server]\nlisten = \"nohost\"\n" + env_block("a"), "server.listen"},
      {"[server]\nlisten = \"127.0.0.1:99999\"\n" + env_block("a"), "server.listen"},
      {"[server]\nlisen = \"127.0.0.1:1\"\n" + env_block("a"), "server.lisen: unknown setting"},
      {"[scheduler]\nlease_seconds = 4\nheartbeat_seconds = 3\n" + env_block("a"),
       "heartbeat_seconds"},
      {"[executor]\nkind = \"yarn\"\n" + env_block("a"), "executor.kind"},
      {"[executor]\nnice = 20\n" + env_block("a"), "executor.nice: must be 0-19, got 20"},
      {"[server]\nrender_processes = 65\n" + env_block("a"),
       "server.render_processes: must be 0-64, got 65"},
      {"[spot]\nnotice_seconds = -1\n" + env_block("a"), "spot.notice_seconds"},
      {"[spot]\ninterruption_rate_per_node_hour = \"x\"\n" + env_block("a"),
       "spot.interruption_rate_per_node_hour"},
      {"[operator]\ntoken_sha256 = [\"secret\"]\n" + env_block("a"), "operator.token_sha256"},
      {"", "at least one [[environment]]"},
      {env_block("a") + "concurrency = 0\n", "environment[0].concurrency: must be 1-256"},
      {env_block("a", "not-a-hash"), "environment[0].token_sha256"},
      {env_block("a") + env_block("a", std::string(64, 'b')), "configured twice"},
      {env_block("a") + env_block("b"), "shared with another environment"},
      {env_block("a/b"), "environment[0].name"},
      {"[server\n", "line 1"},
      {env_block("a") + "aws_access_keys = [{ id = \"K\" }]\n", "give secret_env"},
      {env_block("a") + "aws_access_keys = [{ id = \"K\", secret = \"x\" }]\n" +
           env_block("b", std::string(64, 'b')) +
           "aws_access_keys = [{ id = \"K\", secret = \"y\" }]\n",
       "configured more than once"},
      {"[emr]\nburst = 0\n" + env_block("a"), "emr.burst"},
      {"[server]\nmetrics_token_sha256 = [\"x\"]\n" + env_block("a"),
       "server.metrics_token_sha256"},
      {env_block("a") + "requests_per_second = 0\n", "environment[0].requests_per_second"},
      {env_block("a") + "requests_per_second = \"many\"\n", "environment[0].requests_per_second"},
      {env_block("a") + "request_burst = 0.5\n", "environment[0].request_burst: must be >= 1"},
      {env_block("a") + "max_pending_steps = 0\n", "environment[0].max_pending_steps"},
      {"[sandbox]\nmode = \"none\"\ntenant_drivers = [\"GTiff\", \"VRT\"]\n" + env_block("a"),
       "sandbox.tenant_drivers: widening the drivers tenant rasters open with needs the sandbox"},
      {"[sandbox]\ntenant_drivers = [\"GTiff,VRT\"]\n" + env_block("a"),
       "sandbox.tenant_drivers: must be a list of GDAL driver names"},
  };
  for (const auto& tc : cases) {
    auto c = parse_config(tc.text, "/base");
    ASSERT_FALSE(c.is_ok()) << tc.text;
    EXPECT_NE(c.status().message().find(tc.expect), std::string::npos)
        << "got: " << c.status().message() << "\nwanted: " << tc.expect;
  }
}

}  // namespace
}  // namespace kiln::config
