// Reading traces and scenarios: both formats, and errors that name the
// file and the line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "sim/scenario.h"
#include "sim/scratch_test_dir.h"
#include "sim/trace.h"

namespace kiln::sim {
namespace {

namespace fs = std::filesystem;

class TraceTest : public ScratchDirTest {
 protected:
  // The error message of reading a workload with this text.
  std::string workload_error(const std::string& name, const std::string& text) {
    auto r = read_workload(write(name, text));
    EXPECT_FALSE(r.is_ok()) << text;
    return r.is_ok() ? "" : r.status().message();
  }
};

TEST_F(TraceTest, WorkloadCsvIsReadInTimeOrder) {
  auto w = read_workload(write("w.csv",
                               "# a comment\narrival_s,environment,tiles\n60,prod,100\n\n"
                               "0.5,staging,2000\n60,prod,7\n"));
  ASSERT_TRUE(w.is_ok()) << w.status().message();
  ASSERT_EQ(w->size(), 3u);
  EXPECT_EQ((*w)[0].t_ms, 500);
  EXPECT_EQ((*w)[0].environment, "staging");
  EXPECT_EQ((*w)[0].line, 5);
  // Ties keep the file's order.
  EXPECT_EQ((*w)[1].tiles, 100);
  EXPECT_EQ((*w)[2].tiles, 7);
}

TEST_F(TraceTest, ColumnsMayComeInAnyOrder) {
  auto w = read_workload(write("w.csv", "tiles,arrival_s,environment\n100,3,prod\n"));
  ASSERT_TRUE(w.is_ok()) << w.status().message();
  EXPECT_EQ((*w)[0].t_ms, 3000);
  EXPECT_EQ((*w)[0].tiles, 100);
}

TEST_F(TraceTest, WorkloadJsonLinesAreReadToo) {
  auto w = read_workload(write("w.jsonl",
                               "{\"arrival_s\": 7.25, \"environment\": \"prod\", \"tiles\": 9}\n"
                               "# comment\n"
                               "{\"arrival_s\": 1, \"environment\": \"qa\", \"tiles\": 3, "
                               "\"note\": \"extra keys are ignored\"}\n"));
  ASSERT_TRUE(w.is_ok()) << w.status().message();
  ASSERT_EQ(w->size(), 2u);
  EXPECT_EQ((*w)[0].environment, "qa");
  EXPECT_EQ((*w)[1].t_ms, 7250);
  // A .txt file whose first line is an object is JSON lines as well.
  auto sniffed = read_workload(write("w.txt",
                                     "{\"arrival_s\": 0, \"environment\": \"p\", "
                                     "\"tiles\": 1}\n"));
  ASSERT_TRUE(sniffed.is_ok()) << sniffed.status().message();
}

TEST_F(TraceTest, BadWorkloadLinesNameFileAndLine) {
  std::string m = workload_error("b.csv", "arrival_s,environment,tiles\n1,p,10\n2,p,lots\n");
  EXPECT_NE(m.find("b.csv:3"), std::string::npos) << m;
  EXPECT_NE(m.find("'lots'"), std::string::npos) << m;
  m = workload_error("n.csv", "arrival_s,environment,tiles\n-1,p,10\n");
  EXPECT_NE(m.find("n.csv:2: arrival_s"), std::string::npos) << m;
  m = workload_error("e.csv", "arrival_s,environment,tiles\n1,,10\n");
  EXPECT_NE(m.find("e.csv:2: environment"), std::string::npos) << m;
  m = workload_error("f.csv", "arrival_s,environment,tiles\n1,p,2.5\n");
  EXPECT_NE(m.find("f.csv:2: tiles"), std::string::npos) << m;
  m = workload_error("x.csv", "arrival_s,environment,tiles\n1,p,10,4\n");
  EXPECT_NE(m.find("x.csv:2: 4 fields"), std::string::npos) << m;
  // Without a header the first row would be lost: refused instead.
  m = workload_error("h.csv", "0,p,10\n1,p,10\n");
  EXPECT_NE(m.find("h.csv:1: the header line"), std::string::npos) << m;
  m = workload_error("u.csv", "arrival_s,environment,tiles,colour\n");
  EXPECT_NE(m.find("unknown column 'colour'"), std::string::npos) << m;
  m = workload_error("j.jsonl",
                     "{\"arrival_s\": 1, \"environment\": \"p\", \"tiles\": 1}\n{oops\n");
  EXPECT_NE(m.find("j.jsonl:2: not a JSON object"), std::string::npos) << m;
  m = workload_error("k.jsonl",
                     "{\"arrival_s\": \"soon\", \"environment\": \"p\", \"tiles\": 1}\n");
  EXPECT_NE(m.find("k.jsonl:1: \"arrival_s\""), std::string::npos) << m;
  m = workload_error("l.jsonl", "{\"arrival_s\": 1, \"environment\": \"p\"}\n");
  EXPECT_NE(m.find("l.jsonl:1: \"tiles\" is missing"), std::string::npos) << m;
  m = workload_error("empty.csv", "arrival_s,environment,tiles\n");
  EXPECT_NE(m.find("no data lines"), std::string::npos) << m;
  EXPECT_EQ(read_workload((dir_ / "none.csv").string()).status().code(), StatusCode::kNotFound);
}

TEST_F(TraceTest, SpotTraceIsAStepFunctionWithAnOptionalRate) {
  auto s = read_spot_trace(write("s.csv",
                                 "t_s,price_per_hour,interruptions_per_node_hour\n"
                                 "3600,0.2,0.5\n0,0.1,\n7200,0.3,0\n"));
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  const elastic::PriceTrace prices = spot_prices(*s);
  EXPECT_DOUBLE_EQ(prices.at(0), 0.1);
  EXPECT_DOUBLE_EQ(prices.at(4000 * 1000), 0.2);
  EXPECT_DOUBLE_EQ(prices.cost(0, 7200 * 1000), 0.1 + 0.2);
  // The first hour gives no rate: the scenario's applies.
  EXPECT_DOUBLE_EQ(interruption_rate(*s, 10, 0.07), 0.07);
  EXPECT_DOUBLE_EQ(interruption_rate(*s, 3600 * 1000, 0.07), 0.5);
  EXPECT_DOUBLE_EQ(interruption_rate(*s, 9000 * 1000, 0.07), 0.0);
  auto two = read_spot_trace(write("two.csv", "t_s,price_per_hour\n0,0.1\n"));
  ASSERT_TRUE(two.is_ok()) << two.status().message();
  auto bad = read_spot_trace(write("bad.csv", "t_s,price_per_hour\n0,-1\n"));
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("bad.csv:2: price_per_hour"), std::string::npos);
  auto jl = read_spot_trace(write("s.jsonl", "{\"t_s\": 0, \"price_per_hour\": 0.12}\n"));
  ASSERT_TRUE(jl.is_ok()) << jl.status().message();
  EXPECT_LT((*jl)[0].interruptions_per_node_hour, 0);
}

TEST_F(TraceTest, ScenarioErrorsNameFileLineAndKey) {
  write("w.csv", "arrival_s,environment,tiles\n1,production,10\n2,qa,5\n");
  const std::string groups = R"(
[[group]]
name = "core"
core = true
slots_per_node = 2
price_per_hour = 1.0
)";
  auto load = [&](const std::string& simulation) {
    return load_scenario(write("s.toml", groups + "[simulation]\n" + simulation), "", "");
  };
  auto r = load("workload = \"w.csv\"\ntiles_per_partition = -5\n");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("s.toml:9: simulation.tiles_per_partition"),
            std::string::npos)
      << r.status().message();
  r = load("workload = \"w.csv\"\ncolour = 1\n");
  EXPECT_NE(r.status().message().find("s.toml:9: simulation.colour: unknown key"),
            std::string::npos)
      << r.status().message();
  // An environment the scenario does not know: the trace's line is named.
  r = load("workload = \"w.csv\"\n");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("w.csv:3: environment 'qa'"), std::string::npos)
      << r.status().message();
  r = load(
      "workload = \"w.csv\"\n[[simulation.environment]]\nname = \"production\"\n"
      "[[simulation.environment]]\nname = \"qa\"\nconcurrency = 0\n");
  EXPECT_NE(r.status().message().find("simulation.environment[1].concurrency"), std::string::npos)
      << r.status().message();
  r = load("tiles_per_slot_second = 10\n");
  EXPECT_NE(r.status().message().find("no workload trace"), std::string::npos);
  r = load("workload = \"missing.csv\"\n");
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("missing.csv"), std::string::npos);
  // The groups are elastic's to check; the file is named.
  auto g = load_scenario(write("g.toml",
                               "[[group]]\nname = \"core\"\ncore = true\nmin_nodes = 0\n"
                               "[simulation]\nworkload = \"w.csv\"\n"),
                         "", "");
  ASSERT_FALSE(g.is_ok());
  EXPECT_NE(g.status().message().find("g.toml"), std::string::npos) << g.status().message();
  // A broken TOML file: its line.
  auto t = load_scenario(write("t.toml", "[simulation]\nseed = = 3\n"), "", "");
  ASSERT_FALSE(t.is_ok());
  EXPECT_NE(t.status().message().find("t.toml:2"), std::string::npos) << t.status().message();
}

TEST_F(TraceTest, FlagsOverrideTheScenariosTraces) {
  write("a.csv", "arrival_s,environment,tiles\n1,production,10\n");
  const std::string b =
      write("b.csv", "arrival_s,environment,tiles\n1,production,10\n2,production,5\n");
  const std::string path = write("s.toml", "[simulation]\nworkload = \"a.csv\"\nseed = 9\n");
  auto own = load_scenario(path, "", "");
  ASSERT_TRUE(own.is_ok()) << own.status().message();
  EXPECT_EQ(own->workload.size(), 1u);
  EXPECT_EQ(own->settings.seed, 9u);
  auto over = load_scenario(path, b, "");
  ASSERT_TRUE(over.is_ok()) << over.status().message();
  EXPECT_EQ(over->workload.size(), 2u);
}

}  // namespace
}  // namespace kiln::sim
