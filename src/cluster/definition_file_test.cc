// read_definition_file: what a definition file may be, and that a refusal
// never blocks and never quotes the file.
#include "cluster/definition_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace kiln::cluster {
namespace {

namespace fs = std::filesystem;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

class DefinitionFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::path(::testing::TempDir()) / "kiln-deffile-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  Result<std::string> read(const fs::path& p, DefinitionFileLimits limits = {}) {
    return read_definition_file("definition", p.string(), limits, clock_);
  }

  fs::path dir_;
  ManualClock clock_{1'700'000'000'000};
};

TEST_F(DefinitionFileTest, ReadsARegularFile) {
  std::ofstream(dir_ / "d.json") << "{\"layer\": \"x\"}";
  auto r = read(dir_ / "d.json");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(*r, "{\"layer\": \"x\"}");
}

TEST_F(DefinitionFileTest, RefusesFifosDevicesAndDirectoriesWithoutReadingThem) {
  // A FIFO with no writer: a blocking open would never return.
  ASSERT_EQ(::mkfifo((dir_ / "fifo").c_str(), 0600), 0);
  for (const fs::path& p : {dir_ / "fifo", fs::path("/dev/zero"), fs::path("/dev/null"), dir_}) {
    auto r = read(p);
    ASSERT_FALSE(r.is_ok()) << p;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(contains(r.status().message(), "not a regular file")) << r.status().message();
    EXPECT_TRUE(contains(r.status().message(), p.string())) << r.status().message();
  }
}

TEST_F(DefinitionFileTest, RefusesASymlinkSwappedInAfterTheCheck) {
  std::ofstream(dir_ / "real.json") << "{}";
  fs::create_symlink(dir_ / "real.json", dir_ / "link.json");
  auto r = read(dir_ / "link.json");
  ASSERT_FALSE(r.is_ok());
  EXPECT_TRUE(contains(r.status().message(), "symbolic link")) << r.status().message();
}

TEST_F(DefinitionFileTest, RefusesAFileOverTheLimitWithoutQuotingIt) {
  std::ofstream(dir_ / "big.json") << std::string(2000, 's');
  DefinitionFileLimits limits;
  limits.max_bytes = 1024;
  auto r = read(dir_ / "big.json", limits);
  ASSERT_FALSE(r.is_ok());
  EXPECT_TRUE(contains(r.status().message(), "2000 bytes")) << r.status().message();
  EXPECT_TRUE(contains(r.status().message(), "1024")) << r.status().message();
  EXPECT_FALSE(contains(r.status().message(), "ss")) << r.status().message();
  limits.max_bytes = 2000;
  EXPECT_TRUE(read(dir_ / "big.json", limits).is_ok());
}

// A clock on which each look takes `step_ms`: a read slow enough to pass
// the deadline between two chunks.
class SlowClock final : public Clock {
 public:
  explicit SlowClock(int64_t step_ms) : step_ms_(step_ms) {}
  int64_t now_ms() const override { return now_.fetch_add(step_ms_) + step_ms_; }
  std::chrono::milliseconds real_wait(int64_t) const override {
    return std::chrono::milliseconds(0);
  }

 private:
  int64_t step_ms_;
  mutable std::atomic<int64_t> now_{0};
};

TEST_F(DefinitionFileTest, StopsReadingAtTheDeadline) {
  std::ofstream(dir_ / "slow.json") << std::string(300 * 1024, ' ');
  DefinitionFileLimits limits;
  limits.deadline_ms = 5000;
  SlowClock slow(2000);
  auto r = read_definition_file("definition", (dir_ / "slow.json").string(), limits, slow);
  ASSERT_FALSE(r.is_ok());
  EXPECT_TRUE(contains(r.status().message(), "within 5000 ms")) << r.status().message();
  SlowClock fast(1);
  EXPECT_TRUE(
      read_definition_file("definition", (dir_ / "slow.json").string(), limits, fast).is_ok());
}

}  // namespace
}  // namespace kiln::cluster
