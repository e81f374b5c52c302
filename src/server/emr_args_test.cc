#include "server/emr_args.h"

#include <functional>

#include <gtest/gtest.h>

namespace kiln::server {
namespace {

using Args = std::vector<std::string>;

constexpr char kScriptRunner[] =
    "s3://us-east-1.elasticmapreduce/libs/script-runner/script-runner.jar";
constexpr char kRfClass[] = "com.azavea.rf.batch.ingest.spark.Ingest";
constexpr char kRfJar[] =
    "s3://rasterfoundry-global-artifacts-us-east-1/batch/rf-batch-761c316.jar";

EmrStepConfig step(const std::string& jar, Args args) {
  EmrStepConfig s;
  s.name = "ingest-1";
  s.jar_step.jar = jar;
  s.jar_step.args = std::move(args);
  return s;
}

// Exactly what Raster Foundry's Airflow task sent to EMR.
Args raster_foundry_args(const std::string& definition) {
  return {"/usr/bin/spark-submit",
          "--master",
          "yarn",
          "--deploy-mode",
          "cluster",
          "--conf",
          "spark.yarn.submit.waitAppCompletion=false",
          "--class",
          kRfClass,
          kRfJar,
          "-t",
          "--overwrite",
          "-s",
          "8fa5c3d4-1a2b-4c5d-9e8f-0123456789ab",
          "-j",
          definition};
}

// The refusal message, or "" when the step was accepted.
std::string refusal(const EmrStepConfig& s) {
  auto r = to_submit_request(s);
  if (r.is_ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  return r.status().message();
}

TEST(EmrArgs, KilnIngestWithADefinitionPath) {
  auto r = to_submit_request(
      step("command-runner.jar", {"kiln", "ingest", "--definition", "/data/defs/scene.json"}));
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->definition_uri, "/data/defs/scene.json");
  EXPECT_EQ(r->name, "ingest-1");
  EXPECT_EQ(r->action_on_failure, "CONTINUE");
  EXPECT_TRUE(r->definition.is_null());
  // What DescribeStep will echo: the HadoopJarStep in its response shape.
  EXPECT_EQ(r->emr_request["Jar"], "command-runner.jar");
  EXPECT_EQ(r->emr_request["Args"],
            nlohmann::json({"kiln", "ingest", "--definition", "/data/defs/scene.json"}));
  EXPECT_TRUE(r->emr_request["Properties"].is_object());
  EXPECT_TRUE(r->emr_request["Properties"].empty());
  EXPECT_FALSE(r->emr_request.contains("MainClass"));
}

TEST(EmrArgs, KilnIngestDefinitionSpellings) {
  for (const Args& args : {Args{"kiln", "ingest", "-d", "file:///d/x.json"},
                           Args{"kiln", "ingest", "--definition=file:///d/x.json"},
                           Args{"kiln", "ingest", "--definition", "file://localhost/d/x.json"},
                           Args{"kiln", "ingest", "--definition", "/d/x.json"}}) {
    auto r = to_submit_request(step("command-runner.jar", args));
    ASSERT_TRUE(r.is_ok()) << args.back() << ": " << r.status().message();
    EXPECT_EQ(r->definition_uri, "/d/x.json");
  }
}

TEST(EmrArgs, KilnIngestRefusals) {
  struct Case {
    Args args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"kiln"}, "only command accepted is \"ingest\""},
      {{"kiln", "serve"}, "not 'serve'"},
      {{"kiln", "ingest"}, "needs --definition"},
      {{"kiln", "ingest", "--definition"}, "needs a value"},
      {{"kiln", "ingest", "--definition", "/a.json", "-d", "/b.json"}, "given twice"},
      {{"kiln", "ingest", "--definition", "defs/a.json"}, "is relative"},
      {{"kiln", "ingest", "--definition", "s3://bucket/a.json"}, "s3:// is not supported yet"},
      {{"kiln", "ingest", "--definition", "/a.json", "--max-zoom", "12"},
       "Args[4] '--max-zoom': the EMR endpoint takes only --definition"},
      {{"kiln", "ingest", "--definition", "/a.json", "--catalog", "/elsewhere"},
       "environment's catalog"},
      {{"kiln", "ingest", "--definition", "/a.json", "--env=production"}, "environment's catalog"},
      {{"kiln", "ingest", "/data/scene.tif", "--layer", "x"}, "Args[2] '/data/scene.tif'"},
      {{"kiln", "ingest", "--definition", "/a.json;", "rm", "-rf", "/"}, "Args[4] 'rm'"},
  };
  for (const auto& c : cases) {
    const std::string m = refusal(step("command-runner.jar", c.args));
    EXPECT_NE(m.find(c.says), std::string::npos) << "got: " << m;
  }
}

TEST(EmrArgs, RasterFoundryStepAsItsApiSentIt) {
  auto r = to_submit_request(step(kScriptRunner, raster_foundry_args("/defs/rf-ingest.json")));
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->definition_uri, "/defs/rf-ingest.json");
  EXPECT_EQ(r->emr_request["Jar"], kScriptRunner);
  EXPECT_EQ(r->emr_request["Args"].size(), 16u);
  EXPECT_EQ(r->emr_request["Args"][0], "/usr/bin/spark-submit");
}

TEST(EmrArgs, RasterFoundryDefinitionAsFileUri) {
  auto r = to_submit_request(
      step(kScriptRunner, raster_foundry_args("file:///srv/rf/ingest%20defs/scene%231.json")));
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->definition_uri, "/srv/rf/ingest defs/scene#1.json");
}

TEST(EmrArgs, ScriptRunnerOfAnyRegionOrNone) {
  for (const char* jar : {"s3://eu-west-1.elasticmapreduce/libs/script-runner/script-runner.jar",
                          "s3://cn-north-1.elasticmapreduce/libs/script-runner/script-runner.jar",
                          "s3://elasticmapreduce/libs/script-runner/script-runner.jar"}) {
    EXPECT_EQ(refusal(step(jar, raster_foundry_args("/d.json"))), "") << jar;
  }
  for (const char* jar :
       {"s3://my-bucket/libs/script-runner/script-runner.jar",
        "s3://US-EAST-1.elasticmapreduce/libs/script-runner/script-runner.jar",
        "s3://.elasticmapreduce/libs/script-runner/script-runner.jar",
        "s3://evil.com/x.elasticmapreduce/libs/script-runner/script-runner.jar",
        "https://us-east-1.elasticmapreduce/libs/script-runner/script-runner.jar"}) {
    const std::string m = refusal(step(jar, raster_foundry_args("/d.json")));
    EXPECT_NE(m.find("is not accepted"), std::string::npos) << jar << ": " << m;
  }
}

TEST(EmrArgs, RasterFoundryOptionsInAnyOrder) {
  // The RF ingest's own options after the jar, shuffled, long spellings.
  Args a = {"/usr/bin/spark-submit",
            "--class",
            kRfClass,
            "--deploy-mode=cluster",
            "--master",
            "yarn",
            kRfJar,
            "-j",
            "/d/def.json",
            "--sceneId=abc",
            "--overwrite",
            "-t"};
  // spark-submit options may come after --class too.
  auto r = to_submit_request(step(kScriptRunner, a));
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->definition_uri, "/d/def.json");

  Args b = {"spark-submit", "--class", kRfClass, kRfJar, "--jobDefinition",
            "/d/def.json",  "-s",      "abc",    "-w",   "1024"};
  EXPECT_EQ(refusal(step(kScriptRunner, b)), "");
}

TEST(EmrArgs, RasterFoundryThroughCommandRunner) {
  // `aws emr add-steps --steps Type=Spark,...` on a release-label cluster
  // writes command-runner.jar with "spark-submit" first.
  Args a = {"spark-submit", "--deploy-mode", "cluster", "--class",    kRfClass, kRfJar,
            "-s",           "abc",           "-j",      "/d/def.json"};
  auto r = to_submit_request(step("command-runner.jar", a));
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->definition_uri, "/d/def.json");
}

TEST(EmrArgs, RasterFoundryRefusals) {
  auto with = [](std::function<void(Args&)> edit) {
    Args a = raster_foundry_args("/defs/x.json");
    edit(a);
    return refusal(step(kScriptRunner, a));
  };
  // Another Spark application: strict on the class name.
  EXPECT_NE(with([](Args& a) {
              a[8] = "com.azavea.rf.batch.export.spark.Export";
            }).find("the only Spark application Kiln runs"),
            std::string::npos);
  EXPECT_NE(with([](Args& a) {
              a[8] = "com.azavea.rf.batch.ingest.spark.IngestX";
            }).find("not 'com.azavea.rf.batch.ingest.spark.IngestX'"),
            std::string::npos);
  // No --class at all.
  EXPECT_NE(with([](Args& a) { a.erase(a.begin() + 7, a.begin() + 9); }).find("needs --class"),
            std::string::npos);
  // An s3:// definition, which Raster Foundry used: clear about what works.
  const std::string s3 = with([](Args& a) { a[15] = "s3://rf-ingests/defs/1.json"; });
  EXPECT_NE(s3.find("s3:// is not supported yet"), std::string::npos) << s3;
  EXPECT_NE(s3.find("file:///absolute/path"), std::string::npos) << s3;
  // Missing -s / -j.
  EXPECT_NE(with([](Args& a) { a.erase(a.begin() + 12, a.begin() + 14); }).find("needs -s"),
            std::string::npos);
  EXPECT_NE(with([](Args& a) { a.erase(a.begin() + 14, a.end()); }).find("needs -j"),
            std::string::npos);
  EXPECT_NE(with([](Args& a) { a.pop_back(); }).find("needs a value"), std::string::npos);
  // Options Kiln has no meaning for.
  EXPECT_NE(with([](Args& a) {
              a.insert(a.end(), {"-b", "my-status-bucket"});
            }).find("no ingest status files to S3"),
            std::string::npos);
  EXPECT_NE(with([](Args& a) { a.push_back("--extra"); }).find("'--extra': not one of"),
            std::string::npos);
  EXPECT_NE(with([](Args& a) {
              a.insert(a.begin() + 1, {"--jars", "s3://x/y.jar"});
            }).find("spark-submit option not accepted"),
            std::string::npos);
  EXPECT_NE(with([](Args& a) {
              a.insert(a.end(), {"-w", "lots"});
            }).find("whole number"),
            std::string::npos);
  EXPECT_NE(with([](Args& a) {
              a.insert(a.end(), {"-j", "/other.json"});
            }).find("given twice"),
            std::string::npos);
  // The jar and everything after it missing.
  EXPECT_NE(with([](Args& a) { a.resize(9); }).find("application jar"), std::string::npos);
}

TEST(EmrArgs, OtherJarsAndProgramsAreRefusedWithTheAcceptedForms) {
  const std::string jar = refusal(step("s3://bucket/my-app.jar", {"arg"}));
  EXPECT_NE(jar.find("HadoopJarStep.Jar 's3://bucket/my-app.jar' is not accepted"),
            std::string::npos);
  EXPECT_NE(jar.find(kAcceptedEmrSteps), std::string::npos);

  const std::string bash = refusal(step("command-runner.jar", {"bash", "-c", "kiln ingest"}));
  EXPECT_NE(bash.find("Args[0] 'bash'"), std::string::npos) << bash;
  EXPECT_NE(bash.find(kAcceptedEmrSteps), std::string::npos);

  // script-runner runs scripts; only spark-submit is accepted through it.
  EXPECT_NE(refusal(step(kScriptRunner, {"s3://bucket/script.sh"})).find("runs only spark-submit"),
            std::string::npos);
  EXPECT_NE(refusal(step(kScriptRunner, {"kiln", "ingest", "-d", "/a.json"}))
                .find("runs only spark-submit"),
            std::string::npos);
  EXPECT_NE(refusal(step("command-runner.jar", {})).find("needs arguments"), std::string::npos);
  EXPECT_NE(refusal(step("command-runner.jar", {"/usr/local/bin/kiln", "ingest"}))
                .find("Args[0] '/usr/local/bin/kiln'"),
            std::string::npos);
}

TEST(EmrArgs, MainClassAndPropertiesAreRefused) {
  EmrStepConfig s = step("command-runner.jar", {"kiln", "ingest", "-d", "/a.json"});
  s.jar_step.main_class = "org.example.Main";
  EXPECT_NE(refusal(s).find("HadoopJarStep.MainClass 'org.example.Main'"), std::string::npos);
  s.jar_step.main_class.clear();
  s.jar_step.properties = {{"spark.executor.memory", "4g"}};
  EXPECT_NE(refusal(s).find("no Java properties ('spark.executor.memory' given)"),
            std::string::npos);
}

TEST(EmrArgs, ActionOnFailure) {
  EmrStepConfig s = step("command-runner.jar", {"kiln", "ingest", "-d", "/a.json"});
  for (const char* ok : {"CONTINUE", "CANCEL_AND_WAIT"}) {
    s.action_on_failure = ok;
    auto r = to_submit_request(s);
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(r->action_on_failure, ok);
  }
  for (const char* shared : {"TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW"}) {
    s.action_on_failure = shared;
    const std::string m = refusal(s);
    EXPECT_NE(m.find("shared by every environment"), std::string::npos) << m;
  }
  s.action_on_failure = "RETRY";
  EXPECT_NE(refusal(s).find("'RETRY' is not one of"), std::string::npos);
}

TEST(EmrArgs, LocalDefinitionPaths) {
  struct Case {
    const char* in;
    const char* path;
  };
  for (const Case& c :
       std::vector<Case>{{"/a/b.json", "/a/b.json"},
                         {"file:///a/b.json", "/a/b.json"},
                         {"file://localhost/a/b.json", "/a/b.json"},
                         {"file:/a/b.json", "/a/b.json"},
                         {"file:///a/%C3%A9t%C3%A9.json", "/a/\xC3\xA9t\xC3\xA9.json"},
                         {"/a/100%.json", "/a/100%.json"}}) {
    auto r = local_definition_path(c.in);
    ASSERT_TRUE(r.is_ok()) << c.in << ": " << r.status().message();
    EXPECT_EQ(*r, c.path) << c.in;
  }
  struct Bad {
    const char* in;
    const char* says;
  };
  for (const Bad& b :
       std::vector<Bad>{{"", "is empty"},
                        {"a/b.json", "is relative"},
                        {"./b.json", "is relative"},
                        {"file://fileserver/a/b.json", "names the host 'fileserver'"},
                        {"file://localhost", "has no path"},
                        {"file:a/b.json", "not an absolute file URI"},
                        {"file:///a/b%2.json", "malformed %-escape"},
                        {"file:///a/b%zz.json", "malformed %-escape"},
                        {"file:///a/b%00.json", "malformed %-escape"},
                        {"s3://bucket/a.json", "s3:// is not supported yet"},
                        {"https://host/a.json", "https:// is not supported yet"},
                        {"hdfs:///a.json", "hdfs:// is not supported yet"}}) {
    auto r = local_definition_path(b.in);
    ASSERT_FALSE(r.is_ok()) << b.in;
    EXPECT_NE(r.status().message().find(b.says), std::string::npos)
        << b.in << ": " << r.status().message();
  }
  EXPECT_FALSE(local_definition_path(std::string("/a\0b.json", 9)).is_ok());
}

}  // namespace
}  // namespace kiln::server
