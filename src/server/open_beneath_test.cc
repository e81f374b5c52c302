#include "server/open_beneath.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include <gtest/gtest.h>

namespace kiln::server {
namespace {

namespace fs = std::filesystem;

using OpenFn = std::function<int(int, std::string_view, int)>;

// A version directory as an ingest leaves it, plus what a hostile task
// could leave in its output: a symlinked tile, a symlinked zoom directory,
// both pointing at a secret outside.
class OpenBeneathTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/open-beneath-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ / "v" / "3" / "1");
    fs::create_directories(root_ / "outside" / "7");
    std::ofstream(root_ / "v" / "3" / "1" / "2.png") << "tile";
    std::ofstream(root_ / "outside" / "secret") << "secret";
    std::ofstream(root_ / "outside" / "7" / "8.png") << "secret tile";
    fs::create_symlink(root_ / "outside" / "secret", root_ / "v" / "3" / "1" / "5.png");
    fs::create_symlink(root_ / "outside", root_ / "v" / "4");
    fs::create_symlink("../../../outside/secret", root_ / "v" / "3" / "1" / "6.png");
    dir_ = ::open((root_ / "v").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(dir_, 0);
  }
  void TearDown() override {
    if (dir_ >= 0) ::close(dir_);
    fs::remove_all(root_);
  }
  int open(std::string_view path) {
    return GetParam() ? open_beneath(dir_, path, O_RDONLY)
                      : open_beneath_walk(dir_, path, O_RDONLY);
  }
  std::string read_all(int fd) {
    std::string out(64, '\0');
    const ssize_t n = ::read(fd, out.data(), out.size());
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
    ::close(fd);
    return out;
  }

  fs::path root_;
  int dir_ = -1;
};

TEST_P(OpenBeneathTest, OpensAFileSeveralComponentsDown) {
  const int fd = open("3/1/2.png");
  ASSERT_GE(fd, 0) << std::strerror(errno);
  EXPECT_EQ(read_all(fd), "tile");
}

TEST_P(OpenBeneathTest, OpensADirectory) {
  const int fd = GetParam() ? open_beneath(dir_, "3/1", O_RDONLY | O_DIRECTORY)
                            : open_beneath_walk(dir_, "3/1", O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  ::close(fd);
}

TEST_P(OpenBeneathTest, RefusesASymlinkedFileAbsoluteOrRelative) {
  for (const char* p : {"3/1/5.png", "3/1/6.png"}) {
    errno = 0;
    EXPECT_EQ(open(p), -1) << p;
    EXPECT_EQ(errno, ELOOP) << p;
  }
}

TEST_P(OpenBeneathTest, RefusesASymlinkedDirectoryOnTheWay) {
  errno = 0;
  EXPECT_EQ(open("4/7/8.png"), -1);
  // The walk opens directories with O_DIRECTORY | O_NOFOLLOW, which Linux
  // refuses with ENOTDIR on a symlink.
  EXPECT_TRUE(errno == ELOOP || errno == ENOTDIR) << std::strerror(errno);
}

TEST_P(OpenBeneathTest, RefusesASymlinkedDirectoryAsAnOPathDirectory) {
  // O_PATH | O_NOFOLLOW alone would open the symlink itself; the tile door
  // always adds O_DIRECTORY.
  errno = 0;
  const int fd = GetParam() ? open_beneath(dir_, "4", O_PATH | O_DIRECTORY)
                            : open_beneath_walk(dir_, "4", O_PATH | O_DIRECTORY);
  EXPECT_EQ(fd, -1);
  EXPECT_TRUE(errno == ELOOP || errno == ENOTDIR) << std::strerror(errno);
}

TEST_P(OpenBeneathTest, RefusesPathsThatWouldLeaveOrAreNotPlain) {
  for (const char* p : {"../outside/secret", "3/../../outside/secret", "/etc/passwd", "3//1/2.png",
                        "./3/1/2.png", "", "3/1/"}) {
    errno = 0;
    EXPECT_EQ(open(p), -1) << p;
    EXPECT_EQ(errno, EXDEV) << p;
  }
}

TEST_P(OpenBeneathTest, MissingIsEnoentAndAFileOnTheWayIsEnotdir) {
  errno = 0;
  EXPECT_EQ(open("3/1/9.png"), -1);
  EXPECT_EQ(errno, ENOENT);
  errno = 0;
  EXPECT_EQ(open("3/1/2.png/x"), -1);
  EXPECT_EQ(errno, ENOTDIR);
}

INSTANTIATE_TEST_SUITE_P(OpenAt2AndWalk, OpenBeneathTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "openat2" : "walk"; });

}  // namespace
}  // namespace kiln::server
