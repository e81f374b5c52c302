// Protocol-shape tests of the EMR endpoint over an in-memory StepService
// (a stand-in for the server core: the job store, planning and workers are
// tested elsewhere; awscli and boto3 drive the real server in tests/e2e).
#include "server/emr.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>

#include <gtest/gtest.h>

namespace kiln::server {
namespace {

using json = nlohmann::json;

// botocore's EMR service model, when python3-botocore is installed.
constexpr char kServiceModel[] =
    "/usr/lib/python3/dist-packages/botocore/data/emr/2009-03-31/service-2.json";

// Steps in memory, scoped by environment the way StepService promises.
class MemorySteps final : public StepService {
 public:
  Result<store::Step> submit(const EnvironmentConfig& env, const SubmitRequest& req) override {
    if (shutting_down) return unavailable("the server is shutting down and takes no new steps");
    // Server::submit loads and plans the definition; here a path naming
    // "unreadable" stands for one that does not load.
    if (req.definition_uri.find("unreadable") != std::string::npos) {
      return invalid_argument("definition '" + req.definition_uri + "': cannot open it");
    }
    store::Step s;
    const std::string n = std::to_string(++seq_);
    s.id = "s-" + std::string(13 - n.size(), '0') + n;
    s.seq = seq_;
    s.environment = env.name;
    s.name = req.name.empty() ? "layer" : req.name;
    s.action_on_failure = req.action_on_failure;
    s.action = {{"ingest", {{"layer", "layer"}}}};
    if (!req.emr_request.is_null()) s.action["emr"] = req.emr_request;
    s.created_ms = now_ms;
    now_ms += 1000;
    steps.push_back(s);
    requests.push_back(req);
    return s;
  }

  Result<std::vector<store::Step>> submit_all(const EnvironmentConfig& env,
                                              const std::vector<SubmitRequest>& reqs,
                                              size_t* failed_index) override {
    *failed_index = kBatchFailed;
    for (size_t i = 0; i < reqs.size(); ++i) {
      if (reqs[i].definition_uri.find("unreadable") != std::string::npos) {
        *failed_index = i;
        return invalid_argument("definition '" + reqs[i].definition_uri + "': cannot open it");
      }
    }
    std::vector<store::Step> out;
    for (const SubmitRequest& req : reqs) {
      KILN_ASSIGN_OR_RETURN(store::Step s, submit(env, req));
      out.push_back(std::move(s));
    }
    return out;
  }

  Result<store::Step> get(const EnvironmentConfig& env, const std::string& id) override {
    store::Step* s = find(env, id);
    if (!s) return not_found("step '" + id + "' not found");
    return *s;
  }

  Result<store::ListPage> list(const EnvironmentConfig& env, store::ListQuery q) override {
    int64_t before = INT64_MAX;
    if (!q.marker.empty()) {
      if (q.marker.rfind("m", 0) != 0) return invalid_argument("marker is not one we returned");
      before = std::stoll(q.marker.substr(1));
    }
    store::ListPage page;
    for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
      if (it->environment != env.name || it->seq >= before) continue;
      if (!q.states.empty() &&
          std::find(q.states.begin(), q.states.end(), it->state) == q.states.end()) {
        continue;
      }
      if (!q.ids.empty() && std::find(q.ids.begin(), q.ids.end(), it->id) == q.ids.end()) {
        continue;
      }
      if (static_cast<int>(page.steps.size()) == q.limit) {
        page.next_marker = "m" + std::to_string(page.steps.back().seq);
        break;
      }
      page.steps.push_back(*it);
    }
    return page;
  }

  Result<store::Step> cancel(const EnvironmentConfig& env, const std::string& id,
                             const std::string& signal) override {
    store::Step* s = find(env, id);
    if (!s) return not_found("step '" + id + "' not found");
    if (s->state == store::StepState::kPending) {
      s->state = store::StepState::kCancelled;
      s->ended_ms = now_ms;
    } else if (s->state == store::StepState::kRunning) {
      s->state = store::StepState::kCancelPending;
      s->cancel_signal = signal;
    }
    return *s;
  }

  Result<ClusterInfo> cluster(const EnvironmentConfig& env) override {
    if (broken) return internal_error("database is locked");
    ClusterInfo c;
    c.workers.resize(2);
    c.slots_total = 4;
    c.concurrency = concurrency.count(env.name) ? concurrency[env.name] : env.concurrency;
    c.started_ms = kStartedMs;
    return c;
  }

  Status set_concurrency(const EnvironmentConfig& env, int64_t level) override {
    if (level < 1 || level > 256) return invalid_argument("concurrency: must be 1-256");
    concurrency[env.name] = level;
    return Status::ok();
  }

  std::string log_location(const std::string& step_id) const override {
    return "/var/lib/kiln/logs/" + step_id + ".log";
  }

  store::Step* find(const EnvironmentConfig& env, const std::string& id) {
    for (auto& s : steps) {
      if (s.id == id && s.environment == env.name) return &s;
    }
    return nullptr;
  }

  static constexpr int64_t kStartedMs = 1699999000500;
  std::vector<store::Step> steps;  // submission order
  std::vector<SubmitRequest> requests;
  std::map<std::string, int> concurrency;
  bool shutting_down = false;
  bool broken = false;
  int64_t now_ms = 1700000000000;  // a whole second: the JSON must still say ".0"

 private:
  int64_t seq_ = 0;
};

struct Answer {
  int status;
  json body;
  std::string type;
  std::string text;
};

class EmrTest : public ::testing::Test {
 protected:
  EmrTest() {
    config_.emr_release_label = "emr-6.15.0";
    production_.name = "production";
    production_.concurrency = 2;
    staging_.name = "staging";
    config_.environments = {production_, staging_};
    api_ = std::make_unique<EmrApi>(steps_, config_, markers_);
  }

  Answer call_raw(const EnvironmentConfig& env, const std::string& target,
                  const std::string& body) {
    EmrResponse r = api_->handle(env, target, body);
    json parsed = json::parse(r.body, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << r.body;
    if (!r.error_type.empty()) {
      EXPECT_EQ(parsed.value("__type", ""), r.error_type) << r.body;
      EXPECT_TRUE(parsed.contains("Message")) << r.body;
    }
    return Answer{r.http_status, parsed, r.error_type, r.body};
  }
  Answer call(const EnvironmentConfig& env, const std::string& op, const json& in) {
    return call_raw(env, std::string(kEmrTargetPrefix) + op, in.dump());
  }
  Answer call(const std::string& op, const json& in) { return call(production_, op, in); }

  static json kiln_step(const std::string& name, const std::string& definition) {
    return {{"Name", name},
            {"ActionOnFailure", "CONTINUE"},
            {"HadoopJarStep",
             {{"Jar", "command-runner.jar"},
              {"Args", {"kiln", "ingest", "--definition", definition}}}}};
  }

  // Adds steps through the endpoint; returns their ids.
  std::vector<std::string> add(const EnvironmentConfig& env, std::vector<json> steps) {
    Answer a =
        call(env, "AddJobFlowSteps", {{"JobFlowId", emr_cluster_id(env.name)}, {"Steps", steps}});
    EXPECT_EQ(a.status, 200) << a.text;
    return a.body.value("StepIds", std::vector<std::string>{});
  }

  std::string prod_id() const { return emr_cluster_id("production"); }

  ServerConfig config_;
  EnvironmentConfig production_, staging_;
  MemorySteps steps_;
  ListMarkers markers_;
  std::unique_ptr<EmrApi> api_;
};

// --- cluster identity -------------------------------------------------------------

TEST(EmrClusterId, StableEmrShapedAndPerEnvironment) {
  const std::regex shape("j-[0-9A-Z]{13}");
  EXPECT_TRUE(std::regex_match(emr_cluster_id("production"), shape));
  EXPECT_EQ(emr_cluster_id("production"), emr_cluster_id("production"));
  // Clients keep this id in their configuration: it must never change.
  EXPECT_EQ(emr_cluster_id("production"), "j-YV9BU26NM3Z03");
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = emr_cluster_id("env-" + std::to_string(i));
    EXPECT_TRUE(std::regex_match(id, shape)) << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
  EXPECT_EQ(emr_cluster_name("staging"), "kiln-staging");
}

// --- protocol ---------------------------------------------------------------------

TEST_F(EmrTest, UnknownOperations) {
  for (const char* target : {"ElasticMapReduce.RunJobFlow", "ElasticMapReduce.",
                             "DynamoDB_20120810.ListTables", "", "ElasticMapReduce.listSteps"}) {
    Answer a = call_raw(production_, target, "{}");
    EXPECT_EQ(a.status, 400) << target;
    EXPECT_EQ(a.type, "UnknownOperationException") << target;
  }
}

TEST_F(EmrTest, MalformedBodiesAreSerializationErrors) {
  const std::string target = std::string(kEmrTargetPrefix) + "ListSteps";
  for (const char* body : {"{\"ClusterId\": ", "[]", "\"x\"", "{\"ClusterId\": \"\xff\"}"}) {
    Answer a = call_raw(production_, target, body);
    EXPECT_EQ(a.status, 400) << body;
    EXPECT_EQ(a.type, "SerializationException") << body;
  }
  // A member of the wrong JSON type, as EMR answers it, naming the member.
  Answer a = call("ListSteps", {{"ClusterId", prod_id()}, {"StepStates", "PENDING"}});
  EXPECT_EQ(a.type, "SerializationException");
  EXPECT_NE(a.body["Message"].get<std::string>().find("StepStates"), std::string::npos);
  a = call("AddJobFlowSteps",
           {{"JobFlowId", prod_id()},
            {"Steps",
             {{{"Name", "x"},
               {"HadoopJarStep", {{"Jar", "command-runner.jar"}, {"Args", {"kiln", 1}}}}}}}});
  EXPECT_EQ(a.type, "SerializationException");
  EXPECT_NE(a.body["Message"].get<std::string>().find("Steps[0].HadoopJarStep.Args[1]"),
            std::string::npos)
      << a.text;
}

TEST_F(EmrTest, MissingAndUnknownFieldsAreValidationErrorsNamingTheField) {
  Answer a = call("DescribeStep", {{"ClusterId", prod_id()}});
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(a.type, "ValidationException");
  EXPECT_NE(a.body["Message"].get<std::string>().find("'StepId'"), std::string::npos) << a.text;

  a = call("ListSteps", {{"ClusterID", prod_id()}});
  EXPECT_EQ(a.type, "ValidationException");
  EXPECT_NE(a.body["Message"].get<std::string>().find("'ClusterID'"), std::string::npos);

  a = call("AddJobFlowSteps",
           {{"JobFlowId", prod_id()},
            {"Steps", {{{"Name", "x"}, {"HadoopJarStep", {{"jar", "command-runner.jar"}}}}}}});
  EXPECT_EQ(a.type, "ValidationException");
  EXPECT_NE(a.body["Message"].get<std::string>().find("'Steps[0].HadoopJarStep.jar'"),
            std::string::npos)
      << a.text;
  EXPECT_TRUE(steps_.steps.empty());
}

TEST_F(EmrTest, EmptyBodyIsAnEmptyInput) {
  Answer a = call_raw(production_, std::string(kEmrTargetPrefix) + "ListClusters", "");
  EXPECT_EQ(a.status, 200) << a.text;
  EXPECT_EQ(a.body["Clusters"].size(), 1u);
}

// --- AddJobFlowSteps --------------------------------------------------------------

TEST_F(EmrTest, AddJobFlowStepsSubmitsEveryStepInOrder) {
  Answer a =
      call("AddJobFlowSteps", {{"JobFlowId", prod_id()},
                               {"Steps",
                                {kiln_step("first", "/defs/a.json"),
                                 {{"Name", "second"},
                                  {"ActionOnFailure", "CANCEL_AND_WAIT"},
                                  {"HadoopJarStep",
                                   {{"Jar", "command-runner.jar"},
                                    {"Args", {"kiln", "ingest", "-d", "file:///defs/b.json"}},
                                    {"Properties", json::array()}}}}}}});
  ASSERT_EQ(a.status, 200) << a.text;
  ASSERT_EQ(a.body["StepIds"].size(), 2u);
  ASSERT_EQ(steps_.requests.size(), 2u);
  EXPECT_EQ(a.body["StepIds"][0], steps_.steps[0].id);
  EXPECT_EQ(a.body["StepIds"][1], steps_.steps[1].id);
  EXPECT_EQ(steps_.requests[0].name, "first");
  EXPECT_EQ(steps_.requests[0].definition_uri, "/defs/a.json");
  EXPECT_EQ(steps_.requests[0].action_on_failure, "CONTINUE");
  EXPECT_EQ(steps_.requests[1].definition_uri, "/defs/b.json");
  EXPECT_EQ(steps_.requests[1].action_on_failure, "CANCEL_AND_WAIT");
  EXPECT_EQ(steps_.steps[1].environment, "production");
}

TEST_F(EmrTest, AddJobFlowStepsTranslatesEveryStepBeforeSubmittingAny) {
  Answer a = call("AddJobFlowSteps",
                  {{"JobFlowId", prod_id()},
                   {"Steps",
                    {kiln_step("good", "/defs/a.json"),
                     {{"Name", "shell"},
                      {"HadoopJarStep",
                       {{"Jar", "command-runner.jar"}, {"Args", {"bash", "-c", "rm -rf /"}}}}}}}});
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(a.type, "ValidationException");
  const std::string m = a.body["Message"];
  EXPECT_NE(m.find("Steps[1] ('shell')"), std::string::npos) << m;
  EXPECT_NE(m.find("Accepted steps"), std::string::npos) << m;
  EXPECT_TRUE(steps_.steps.empty());
}

TEST_F(EmrTest, AddJobFlowStepsAddsNoneWhenALaterStepFailsToSubmit) {
  Answer a =
      call("AddJobFlowSteps",
           {{"JobFlowId", prod_id()},
            {"Steps", {kiln_step("a", "/defs/a.json"), kiln_step("b", "/defs/unreadable.json")}}});
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(a.type, "ValidationException");
  EXPECT_TRUE(steps_.steps.empty());
  const std::string m = a.body["Message"];
  EXPECT_NE(m.find("Steps[1] ('b'): definition '/defs/unreadable.json': cannot open it. No step "
                   "was added."),
            std::string::npos)
      << m;
}

TEST_F(EmrTest, AddJobFlowStepsRefusesTerminatingTheSharedCluster) {
  json step = kiln_step("x", "/defs/a.json");
  for (const char* action : {"TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW"}) {
    step["ActionOnFailure"] = action;
    Answer a = call("AddJobFlowSteps", {{"JobFlowId", prod_id()}, {"Steps", json::array({step})}});
    EXPECT_EQ(a.type, "ValidationException");
    EXPECT_NE(a.body["Message"].get<std::string>().find("shared"), std::string::npos);
  }
  step["ActionOnFailure"] = "SOMETIMES";
  EXPECT_EQ(
      call("AddJobFlowSteps", {{"JobFlowId", prod_id()}, {"Steps", json::array({step})}}).type,
      "ValidationException");
  EXPECT_TRUE(steps_.steps.empty());
}

TEST_F(EmrTest, AddJobFlowStepsToAnotherEnvironmentsClusterIsAnUnknownJobFlow) {
  const json steps = json::array({kiln_step("x", "/defs/a.json")});
  Answer foreign = call(staging_, "AddJobFlowSteps", {{"JobFlowId", prod_id()}, {"Steps", steps}});
  Answer unknown =
      call(staging_, "AddJobFlowSteps", {{"JobFlowId", "j-0000000000000"}, {"Steps", steps}});
  EXPECT_EQ(foreign.status, 400);
  EXPECT_EQ(foreign.type, "ValidationException");
  EXPECT_EQ(foreign.body["Message"], "Specified job flow ID does not exist.");
  EXPECT_EQ(foreign.text, unknown.text);
  EXPECT_TRUE(steps_.steps.empty());
}

TEST_F(EmrTest, AddJobFlowStepsRefusesAnExecutionRoleAndEmptyOrHugeBatches) {
  Answer a =
      call("AddJobFlowSteps", {{"JobFlowId", prod_id()},
                               {"Steps", json::array({kiln_step("x", "/defs/a.json")})},
                               {"ExecutionRoleArn", "arn:aws:iam::123456789012:role/EmrStepRole"}});
  EXPECT_EQ(a.type, "ValidationException");
  EXPECT_NE(a.body["Message"].get<std::string>().find("ExecutionRoleArn"), std::string::npos);
  EXPECT_EQ(call("AddJobFlowSteps", {{"JobFlowId", prod_id()}, {"Steps", json::array()}}).type,
            "ValidationException");
  json many = json::array();
  for (int i = 0; i < 257; ++i) many.push_back(kiln_step("x", "/defs/a.json"));
  EXPECT_EQ(call("AddJobFlowSteps", {{"JobFlowId", prod_id()}, {"Steps", many}}).type,
            "ValidationException");
  json long_name = kiln_step(std::string(257, 'n'), "/defs/a.json");
  EXPECT_EQ(
      call("AddJobFlowSteps", {{"JobFlowId", prod_id()}, {"Steps", json::array({long_name})}}).type,
      "ValidationException");
  EXPECT_TRUE(steps_.steps.empty());
}

TEST_F(EmrTest, AddJobFlowStepsWhileShuttingDownIsRetryable) {
  steps_.shutting_down = true;
  Answer a = call("AddJobFlowSteps", {{"JobFlowId", prod_id()},
                                      {"Steps", json::array({kiln_step("x", "/defs/a.json")})}});
  EXPECT_EQ(a.status, 503);
  EXPECT_EQ(a.type, "ServiceUnavailableException");
}

// --- DescribeStep / ListSteps -----------------------------------------------------

TEST_F(EmrTest, DescribeStepEchoesTheHadoopJarStepAndReportsStatus) {
  const json rf_args = {"/usr/bin/spark-submit",
                        "--master",
                        "yarn",
                        "--deploy-mode",
                        "cluster",
                        "--conf",
                        "spark.yarn.submit.waitAppCompletion=false",
                        "--class",
                        "com.azavea.rf.batch.ingest.spark.Ingest",
                        "s3://rasterfoundry-global-artifacts-us-east-1/batch/rf-batch.jar",
                        "-t",
                        "--overwrite",
                        "-s",
                        "scene-1",
                        "-j",
                        "file:///defs/rf.json"};
  const std::string jar = "s3://us-east-1.elasticmapreduce/libs/script-runner/script-runner.jar";
  auto ids = add(production_, {{{"Name", "ingest-rf"},
                                {"ActionOnFailure", "CONTINUE"},
                                {"HadoopJarStep", {{"Jar", jar}, {"Args", rf_args}}}}});
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(steps_.requests[0].definition_uri, "/defs/rf.json");

  Answer a = call("DescribeStep", {{"ClusterId", prod_id()}, {"StepId", ids[0]}});
  ASSERT_EQ(a.status, 200) << a.text;
  const json& s = a.body["Step"];
  EXPECT_EQ(s["Id"], ids[0]);
  EXPECT_EQ(s["Name"], "ingest-rf");
  EXPECT_EQ(s["ActionOnFailure"], "CONTINUE");
  EXPECT_EQ(s["Config"]["Jar"], jar);
  EXPECT_EQ(s["Config"]["Args"], rf_args);
  EXPECT_EQ(s["Config"]["Properties"], json::object());
  EXPECT_EQ(s["Status"]["State"], "PENDING");
  EXPECT_EQ(s["Status"]["Timeline"]["CreationDateTime"].get<double>(), 1700000000.0);
  EXPECT_FALSE(s["Status"]["Timeline"].contains("StartDateTime"));
  EXPECT_FALSE(s["Status"].contains("FailureDetails"));
  // EMR's timestamps are numbers with a fraction, even on a whole second.
  EXPECT_NE(a.text.find("\"CreationDateTime\":1700000000.0"), std::string::npos) << a.text;

  // The step fails: what Airflow's EmrStepSensor reads.
  store::Step& stored = steps_.steps[0];
  stored.state = store::StepState::kFailed;
  stored.started_ms = 1700000001250;
  stored.ended_ms = 1700000042999;
  stored.failure = store::Failure{"SOURCE_ERROR", "cannot open /data/x.tif", ""};
  a = call("DescribeStep", {{"ClusterId", prod_id()}, {"StepId", ids[0]}});
  const json& st = a.body["Step"]["Status"];
  EXPECT_EQ(st["State"], "FAILED");
  EXPECT_EQ(st["Timeline"]["StartDateTime"].get<double>(), 1700000001.25);
  EXPECT_EQ(st["Timeline"]["EndDateTime"].get<double>(), 1700000042.999);
  EXPECT_EQ(st["FailureDetails"]["Reason"], "SOURCE_ERROR");
  EXPECT_EQ(st["FailureDetails"]["Message"], "cannot open /data/x.tif");
  EXPECT_EQ(st["FailureDetails"]["LogFile"], "/var/lib/kiln/logs/" + ids[0] + ".log");
}

TEST_F(EmrTest, StepsFromTheNativeApiDescribeAsKilnIngest) {
  SubmitRequest native;
  native.definition = {{"layer", "x"}};
  ASSERT_TRUE(steps_.submit(production_, native).is_ok());
  Answer a = call("DescribeStep", {{"ClusterId", prod_id()}, {"StepId", steps_.steps[0].id}});
  ASSERT_EQ(a.status, 200) << a.text;
  EXPECT_EQ(a.body["Step"]["Config"]["Jar"], "command-runner.jar");
  EXPECT_EQ(a.body["Step"]["Config"]["Args"], json({"kiln", "ingest"}));
}

TEST_F(EmrTest, AnotherEnvironmentsStepsAndClusterLookNonexistent) {
  auto staging_ids = add(staging_, {kiln_step("s", "/defs/a.json")});
  ASSERT_EQ(staging_ids.size(), 1u);
  const std::string staging_cluster = emr_cluster_id("staging");

  // Staging's step through production's credentials and cluster: as if
  // it never existed.
  Answer foreign = call("DescribeStep", {{"ClusterId", prod_id()}, {"StepId", staging_ids[0]}});
  EXPECT_EQ(foreign.status, 400);
  EXPECT_EQ(foreign.type, "InvalidRequestException");
  EXPECT_EQ(foreign.body["Message"], "Step id '" + staging_ids[0] + "' is not valid.");
  Answer never = call("DescribeStep", {{"ClusterId", prod_id()}, {"StepId", "s-ZZZZZZZZZZZZZ"}});
  EXPECT_EQ(never.type, foreign.type);
  EXPECT_EQ(never.body["Message"], "Step id 's-ZZZZZZZZZZZZZ' is not valid.");

  // Staging's cluster id with production's credentials, for every operation.
  for (const auto& [op, in] : std::vector<std::pair<std::string, json>>{
           {"DescribeCluster", {{"ClusterId", staging_cluster}}},
           {"ListSteps", {{"ClusterId", staging_cluster}}},
           {"DescribeStep", {{"ClusterId", staging_cluster}, {"StepId", staging_ids[0]}}},
           {"CancelSteps", {{"ClusterId", staging_cluster}, {"StepIds", staging_ids}}},
           {"ModifyCluster", {{"ClusterId", staging_cluster}, {"StepConcurrencyLevel", 9}}},
           {"ListInstanceGroups", {{"ClusterId", staging_cluster}}}}) {
    Answer a = call(op, in);
    EXPECT_EQ(a.status, 400) << op;
    EXPECT_EQ(a.type, "InvalidRequestException") << op;
    EXPECT_EQ(a.body["Message"], "Cluster id '" + staging_cluster + "' is not valid.") << op;
    json unknown_in = in;
    unknown_in["ClusterId"] = "j-3VKTV7AO8QJT5";
    Answer u = call(op, unknown_in);
    EXPECT_EQ(u.body["Message"], "Cluster id 'j-3VKTV7AO8QJT5' is not valid.") << op;
    EXPECT_EQ(u.body["ErrorCode"], a.body["ErrorCode"]) << op;
  }
  // Production's listing shows none of staging's steps, even asked by id.
  Answer list = call("ListSteps", {{"ClusterId", prod_id()}, {"StepIds", staging_ids}});
  EXPECT_EQ(list.body["Steps"].size(), 0u);
  // And nothing of staging's changed.
  EXPECT_EQ(steps_.steps[0].state, store::StepState::kPending);
  EXPECT_FALSE(steps_.concurrency.count("staging"));
}

TEST_F(EmrTest, ListStepsPagesNewestFirstFiftyAtATime) {
  for (int i = 0; i < 120; ++i) {
    add(production_, {kiln_step("step-" + std::to_string(i), "/defs/a.json")});
  }
  add(staging_, {kiln_step("elsewhere", "/defs/a.json")});
  std::vector<std::string> names;
  std::string marker;
  int pages = 0;
  do {
    json in = {{"ClusterId", prod_id()}};
    if (!marker.empty()) in["Marker"] = marker;
    Answer a = call("ListSteps", in);
    ASSERT_EQ(a.status, 200) << a.text;
    ++pages;
    EXPECT_LE(a.body["Steps"].size(), 50u);
    for (const auto& s : a.body["Steps"]) names.push_back(s["Name"].get<std::string>());
    marker = a.body.value("Marker", "");
  } while (!marker.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(names.size(), 120u);
  EXPECT_EQ(names.front(), "step-119");
  EXPECT_EQ(names.back(), "step-0");
}

TEST_F(EmrTest, ListStepsFilters) {
  auto ids = add(production_, {kiln_step("a", "/defs/a.json"), kiln_step("b", "/defs/b.json"),
                               kiln_step("c", "/defs/c.json")});
  ASSERT_EQ(ids.size(), 3u);
  steps_.steps[1].state = store::StepState::kCompleted;
  Answer a = call("ListSteps", {{"ClusterId", prod_id()}, {"StepStates", {"COMPLETED"}}});
  ASSERT_EQ(a.body["Steps"].size(), 1u);
  EXPECT_EQ(a.body["Steps"][0]["Id"], ids[1]);
  EXPECT_EQ(a.body["Steps"][0]["Status"]["State"], "COMPLETED");
  EXPECT_FALSE(a.body.contains("Marker"));

  a = call("ListSteps", {{"ClusterId", prod_id()}, {"StepIds", {ids[0], ids[2]}}});
  ASSERT_EQ(a.body["Steps"].size(), 2u);
  EXPECT_EQ(a.body["Steps"][0]["Id"], ids[2]);

  a = call("ListSteps", {{"ClusterId", prod_id()}, {"StepStates", {"DONE"}}});
  EXPECT_EQ(a.type, "ValidationException");
  EXPECT_NE(a.body["Message"].get<std::string>().find("'DONE'"), std::string::npos);

  a = call("ListSteps", {{"ClusterId", prod_id()}, {"Marker", "forged"}});
  EXPECT_EQ(a.type, "InvalidRequestException");
}

// --- CancelSteps ------------------------------------------------------------------

TEST_F(EmrTest, CancelStepsReportsPerStep) {
  auto ids =
      add(production_, {kiln_step("pending", "/defs/a.json"), kiln_step("running", "/defs/b.json"),
                        kiln_step("done", "/defs/c.json")});
  ASSERT_EQ(ids.size(), 3u);
  steps_.steps[1].state = store::StepState::kRunning;
  steps_.steps[2].state = store::StepState::kCompleted;

  Answer a = call("CancelSteps", {{"ClusterId", prod_id()},
                                  {"StepIds", {ids[0], ids[1], ids[2], "s-NOSUCHSTEP000"}},
                                  {"StepCancellationOption", "TERMINATE_PROCESS"}});
  ASSERT_EQ(a.status, 200) << a.text;
  const json& infos = a.body["CancelStepsInfoList"];
  ASSERT_EQ(infos.size(), 4u);
  EXPECT_EQ(infos[0]["StepId"], ids[0]);
  EXPECT_EQ(infos[0]["Status"], "SUBMITTED");
  EXPECT_EQ(infos[1]["Status"], "SUBMITTED");
  EXPECT_EQ(infos[2]["Status"], "FAILED");
  EXPECT_NE(infos[2]["Reason"].get<std::string>().find("COMPLETED"), std::string::npos);
  EXPECT_EQ(infos[3]["Status"], "FAILED");
  EXPECT_EQ(infos[3]["Reason"], "Step id 's-NOSUCHSTEP000' is not valid.");
  EXPECT_EQ(steps_.steps[0].state, store::StepState::kCancelled);
  EXPECT_EQ(steps_.steps[1].state, store::StepState::kCancelPending);
  EXPECT_EQ(steps_.steps[1].cancel_signal, "KILL");
  EXPECT_EQ(steps_.steps[2].state, store::StepState::kCompleted);
}

TEST_F(EmrTest, CancelStepsInterruptsByDefault) {
  auto ids = add(production_, {kiln_step("running", "/defs/a.json")});
  steps_.steps[0].state = store::StepState::kRunning;
  Answer a = call("CancelSteps", {{"ClusterId", prod_id()}, {"StepIds", ids}});
  EXPECT_EQ(a.body["CancelStepsInfoList"][0]["Status"], "SUBMITTED");
  EXPECT_EQ(steps_.steps[0].cancel_signal, "TERM");
  // Asking again to kill: the store keeps the first signal, and the answer
  // says so rather than claiming it was sent.
  a = call("CancelSteps", {{"ClusterId", prod_id()},
                           {"StepIds", ids},
                           {"StepCancellationOption", "TERMINATE_PROCESS"}});
  EXPECT_EQ(a.body["CancelStepsInfoList"][0]["Status"], "FAILED");
  EXPECT_NE(a.body["CancelStepsInfoList"][0]["Reason"].get<std::string>().find("SEND_INTERRUPT"),
            std::string::npos);

  a = call("CancelSteps",
           {{"ClusterId", prod_id()}, {"StepIds", ids}, {"StepCancellationOption", "NOW"}});
  EXPECT_EQ(a.type, "ValidationException");
  a = call("CancelSteps", {{"ClusterId", prod_id()}});
  EXPECT_EQ(a.type, "ValidationException");
}

// --- clusters ---------------------------------------------------------------------

TEST_F(EmrTest, DescribeClusterHasWhatAwscliAndAirflowRead) {
  Answer a = call("DescribeCluster", {{"ClusterId", prod_id()}});
  ASSERT_EQ(a.status, 200) << a.text;
  const json& c = a.body["Cluster"];
  EXPECT_EQ(c["Id"], prod_id());
  EXPECT_EQ(c["Name"], "kiln-production");
  EXPECT_EQ(c["ReleaseLabel"], "emr-6.15.0");  // awscli add-steps
  EXPECT_EQ(c["Status"]["State"], "WAITING");
  EXPECT_EQ(c["Status"]["Timeline"]["CreationDateTime"].get<double>(), 1699999000.5);
  EXPECT_EQ(c["StepConcurrencyLevel"], 2);
  EXPECT_EQ(c["TerminationProtected"], true);
  EXPECT_EQ(c["AutoTerminate"], false);
  EXPECT_EQ(c["Applications"][0]["Name"], "Kiln");
  // Airflow parses LogUri as an S3 URL and fails on anything else.
  EXPECT_FALSE(c.contains("LogUri"));

  add(production_, {kiln_step("queued", "/defs/a.json")});
  a = call("DescribeCluster", {{"ClusterId", prod_id()}});
  EXPECT_EQ(a.body["Cluster"]["Status"]["State"], "RUNNING");
  // Staging's queue is its own.
  a = call(staging_, "DescribeCluster", {{"ClusterId", emr_cluster_id("staging")}});
  EXPECT_EQ(a.body["Cluster"]["Status"]["State"], "WAITING");
}

TEST_F(EmrTest, DescribeClusterInternalFailureIsA500OfTheModeledType) {
  steps_.broken = true;
  Answer a = call("DescribeCluster", {{"ClusterId", prod_id()}});
  EXPECT_EQ(a.status, 500);
  EXPECT_EQ(a.type, "InternalServerException");
  a = call("ModifyCluster", {{"ClusterId", prod_id()}});
  EXPECT_EQ(a.status, 500);
  EXPECT_EQ(a.type, "InternalServerError");
}

TEST_F(EmrTest, ListClustersShowsOnlyTheCallersCluster) {
  Answer a = call(staging_, "ListClusters", json::object());
  ASSERT_EQ(a.status, 200) << a.text;
  ASSERT_EQ(a.body["Clusters"].size(), 1u);
  EXPECT_EQ(a.body["Clusters"][0]["Id"], emr_cluster_id("staging"));
  EXPECT_EQ(a.body["Clusters"][0]["Name"], "kiln-staging");
  EXPECT_EQ(a.body["Clusters"][0]["Status"]["State"], "WAITING");
  EXPECT_FALSE(a.body.contains("Marker"));

  // What Airflow's EmrAddStepsOperator asks to find a cluster by name.
  a = call("ListClusters", {{"ClusterStates", {"RUNNING", "WAITING"}}});
  ASSERT_EQ(a.body["Clusters"].size(), 1u);
  EXPECT_EQ(a.body["Clusters"][0]["Name"], "kiln-production");

  EXPECT_EQ(call("ListClusters", {{"ClusterStates", {"TERMINATED"}}}).body["Clusters"].size(), 0u);
  EXPECT_EQ(call("ListClusters", {{"CreatedAfter", 1699999001}}).body["Clusters"].size(), 0u);
  EXPECT_EQ(call("ListClusters", {{"CreatedBefore", 1699999000}}).body["Clusters"].size(), 0u);
  EXPECT_EQ(call("ListClusters", {{"CreatedAfter", 1699999000}, {"CreatedBefore", 1699999001}})
                .body["Clusters"]
                .size(),
            1u);
  EXPECT_EQ(call("ListClusters", {{"ClusterStates", {"ON_FIRE"}}}).type, "ValidationException");
  EXPECT_EQ(call("ListClusters", {{"CreatedAfter", "yesterday"}}).type, "SerializationException");
  EXPECT_EQ(call("ListClusters", {{"Marker", "x"}}).type, "InvalidRequestException");
}

TEST_F(EmrTest, ModifyClusterSetsTheStepConcurrency) {
  Answer a = call("ModifyCluster", {{"ClusterId", prod_id()}, {"StepConcurrencyLevel", 8}});
  ASSERT_EQ(a.status, 200) << a.text;
  EXPECT_EQ(a.body["StepConcurrencyLevel"], 8);
  EXPECT_EQ(steps_.concurrency["production"], 8);
  a = call("DescribeCluster", {{"ClusterId", prod_id()}});
  EXPECT_EQ(a.body["Cluster"]["StepConcurrencyLevel"], 8);
  // Without a level it reports the current one.
  a = call("ModifyCluster", {{"ClusterId", prod_id()}});
  EXPECT_EQ(a.body["StepConcurrencyLevel"], 8);
  for (int bad : {0, 257, -1}) {
    a = call("ModifyCluster", {{"ClusterId", prod_id()}, {"StepConcurrencyLevel", bad}});
    EXPECT_EQ(a.type, "ValidationException") << bad;
  }
  a = call("ModifyCluster", {{"ClusterId", prod_id()}, {"StepConcurrencyLevel", 2.5}});
  EXPECT_EQ(a.type, "SerializationException");
  EXPECT_EQ(steps_.concurrency["production"], 8);
}

TEST_F(EmrTest, DescribeClusterHelpersForAwscli) {
  Answer a = call("ListInstanceGroups", {{"ClusterId", prod_id()}});
  ASSERT_EQ(a.status, 200) << a.text;
  EXPECT_EQ(a.body["InstanceGroups"], json::array());
  a = call("ListBootstrapActions", {{"ClusterId", prod_id()}});
  ASSERT_EQ(a.status, 200) << a.text;
  EXPECT_EQ(a.body["BootstrapActions"], json::array());
}

// --- against botocore's service model ------------------------------------------------

// Checks `value` against shape `name` of the model: every member known and
// of its type, required members present, enum values in their set,
// timestamps numbers. Problems go to `errors` with their path.
void check_shape(const json& model, const std::string& name, const json& value,
                 const std::string& path, std::vector<std::string>* errors) {
  const json& shape = model["shapes"][name];
  const std::string type = shape["type"];
  auto bad = [&](const std::string& what) { errors->push_back(path + ": " + what); };
  if (type == "structure") {
    if (!value.is_object()) return bad("not an object");
    for (const auto& req : shape.value("required", json::array())) {
      if (!value.contains(req.get<std::string>()))
        bad("missing required " + req.get<std::string>());
    }
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (path.empty() && it.key() == "__type") continue;
      if (!shape["members"].contains(it.key())) {
        bad("member " + it.key() + " is not in " + name);
        continue;
      }
      check_shape(model, shape["members"][it.key()]["shape"].get<std::string>(), *it,
                  path + "." + it.key(), errors);
    }
  } else if (type == "list") {
    if (!value.is_array()) return bad("not a list");
    for (size_t i = 0; i < value.size(); ++i) {
      check_shape(model, shape["member"]["shape"].get<std::string>(), value[i],
                  path + "[" + std::to_string(i) + "]", errors);
    }
  } else if (type == "map") {
    if (!value.is_object()) return bad("not a map");
    for (auto it = value.begin(); it != value.end(); ++it) {
      check_shape(model, shape["value"]["shape"].get<std::string>(), *it, path + "." + it.key(),
                  errors);
    }
  } else if (type == "string") {
    if (!value.is_string()) return bad("not a string");
    if (shape.contains("enum")) {
      const auto& e = shape["enum"];
      if (std::find(e.begin(), e.end(), value) == e.end()) {
        // Appended piece by piece: GCC 12 at -O3 warns (-Wrestrict, its bug
        // 105651) about "literal" + std::string.
        std::string m = "'";
        m += value.get<std::string>();
        m += "' not in the enum";
        bad(m);
      }
    }
  } else if (type == "integer" || type == "long") {
    if (!value.is_number_integer()) bad("not an integer");
  } else if (type == "boolean") {
    if (!value.is_boolean()) bad("not a boolean");
  } else if (type == "timestamp" || type == "double") {
    if (!value.is_number()) bad("not a number");
  } else {
    bad("unexpected shape type " + type);
  }
}

TEST_F(EmrTest, ResponsesMatchBotocoresServiceModel) {
  std::ifstream f(kServiceModel);
  ASSERT_TRUE(f) << "no " << kServiceModel << " (make deps installs python3-botocore)";
  const json model = json::parse(f);

  auto ids = add(production_, {kiln_step("a", "/defs/a.json"), kiln_step("b", "/defs/b.json")});
  steps_.steps[0].state = store::StepState::kFailed;
  steps_.steps[0].started_ms = 1700000000100;
  steps_.steps[0].ended_ms = 1700000000200;
  steps_.steps[0].failure = store::Failure{"TASK_FAILED", "out of attempts", "/logs/x.log"};
  SubmitRequest native;
  native.definition = {{"layer", "x"}};
  ASSERT_TRUE(steps_.submit(production_, native).is_ok());

  const std::vector<std::pair<std::string, json>> calls = {
      {"AddJobFlowSteps",
       {{"JobFlowId", prod_id()}, {"Steps", json::array({kiln_step("c", "/d/c.json")})}}},
      {"ListSteps", {{"ClusterId", prod_id()}}},
      {"DescribeStep", {{"ClusterId", prod_id()}, {"StepId", ids[0]}}},
      {"DescribeStep", {{"ClusterId", prod_id()}, {"StepId", steps_.steps[2].id}}},
      {"CancelSteps", {{"ClusterId", prod_id()}, {"StepIds", {ids[0], ids[1]}}}},
      {"DescribeCluster", {{"ClusterId", prod_id()}}},
      {"ListClusters", json::object()},
      {"ModifyCluster", {{"ClusterId", prod_id()}, {"StepConcurrencyLevel", 3}}},
      {"ListInstanceGroups", {{"ClusterId", prod_id()}}},
      {"ListBootstrapActions", {{"ClusterId", prod_id()}}},
      // Errors: the modeled shapes of each operation.
      {"DescribeStep", {{"ClusterId", prod_id()}, {"StepId", "s-0"}}},
      {"ListSteps", {{"ClusterId", "j-0"}}},
  };
  for (const auto& [op, in] : calls) {
    SCOPED_TRACE(op + " " + in.dump());
    const json& operation = model["operations"][op];
    ASSERT_TRUE(operation.is_object()) << op << " is not in the model";
    std::vector<std::string> errors;
    check_shape(model, operation["input"]["shape"].get<std::string>(), in, "(input)", &errors);
    Answer a = call(op, in);
    if (a.type.empty()) {
      ASSERT_EQ(a.status, 200) << a.text;
      check_shape(model, operation["output"]["shape"].get<std::string>(), a.body, "", &errors);
    } else {
      bool modeled = false;
      for (const auto& e : operation.value("errors", json::array())) {
        if (e["shape"] == a.type) modeled = true;
      }
      EXPECT_TRUE(modeled) << a.type << " is not among " << op << "'s errors";
      check_shape(model, a.type, a.body, "", &errors);
    }
    EXPECT_TRUE(errors.empty()) << ::testing::PrintToString(errors) << "\n" << a.text;
  }
}

// The requests this test sends are valid inputs too, or the check above
// proves nothing about what real clients send.
TEST_F(EmrTest, TestRequestsAreValidModelInputs) {
  std::ifstream f(kServiceModel);
  ASSERT_TRUE(f) << "no " << kServiceModel << " (make deps installs python3-botocore)";
  const json model = json::parse(f);
  std::vector<std::string> errors;
  check_shape(model, "AddJobFlowStepsInput",
              {{"JobFlowId", prod_id()}, {"Steps", json::array({kiln_step("c", "/d/c.json")})}}, "",
              &errors);
  check_shape(model, "CancelStepsInput",
              {{"ClusterId", prod_id()},
               {"StepIds", {"s-1"}},
               {"StepCancellationOption", "TERMINATE_PROCESS"}},
              "", &errors);
  check_shape(model, "ListClustersInput",
              {{"ClusterStates", {"RUNNING", "WAITING"}}, {"CreatedAfter", 1699999001}}, "",
              &errors);
  EXPECT_TRUE(errors.empty()) << ::testing::PrintToString(errors);
}

}  // namespace
}  // namespace kiln::server
