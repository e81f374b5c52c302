// The POSIX launcher with real children: exit statuses, output redirection,
// and a clean signal state whatever the parent blocks.
#include "worker/process.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace kiln::worker {
namespace {

TEST(PosixLauncher, ReportsExitCodesAndSignals) {
  ProcessLauncher& l = posix_launcher();
  auto pid = l.spawn({{"/bin/sh", "-c", "exit 3"}});
  ASSERT_TRUE(pid.is_ok()) << pid.status().to_string();
  auto st = l.reap(*pid, /*wait=*/true);
  ASSERT_TRUE(st.is_ok() && st->has_value());
  EXPECT_FALSE((*st)->signaled);
  EXPECT_EQ((*st)->code, 3);
  EXPECT_EQ((*st)->describe(), "exit status 3");

  pid = l.spawn({{"/bin/sleep", "1000"}});
  ASSERT_TRUE(pid.is_ok());
  st = l.reap(*pid, /*wait=*/false);
  ASSERT_TRUE(st.is_ok());
  EXPECT_FALSE(st->has_value()) << "still running";
  ASSERT_TRUE(l.signal(*pid, SIGKILL).is_ok());
  st = l.reap(*pid, /*wait=*/true);
  ASSERT_TRUE(st.is_ok() && st->has_value());
  EXPECT_TRUE((*st)->signaled);
  EXPECT_EQ((*st)->describe(), "killed by signal 9 (SIGKILL)");
  // Signalling a reaped child is not an error.
  EXPECT_TRUE(l.signal(*pid, SIGTERM).is_ok());
}

TEST(PosixLauncher, ChildOutputGoesToTheGivenDescriptor) {
  Fd r, w;
  ASSERT_TRUE(make_pipe(&r, &w).is_ok());
  SpawnOptions so;
  so.argv = {"/bin/sh", "-c", "echo out; echo err >&2; echo $KILN_TEST_VAR"};
  so.env = environment_with("KILN_TEST_VAR", "hello");
  so.stdout_fd = w.get();
  so.stderr_fd = w.get();
  auto pid = posix_launcher().spawn(so);
  ASSERT_TRUE(pid.is_ok());
  w.reset();  // the child holds the only write end now
  std::string out;
  char buf[256];
  for (ssize_t n; (n = ::read(r.get(), buf, sizeof buf)) > 0;) out.append(buf, n);
  EXPECT_EQ(out, "out\nerr\nhello\n");
  ASSERT_TRUE(posix_launcher().reap(*pid, true).is_ok());
}

// `kiln serve` blocks SIGTERM on its threads and ignores SIGPIPE; a worker
// it starts must still stop on SIGTERM.
TEST(PosixLauncher, ChildrenStartWithDefaultSignals) {
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &term, &old), 0);
  auto pid = posix_launcher().spawn({{"/bin/sleep", "1000"}});
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(pid.is_ok());
  ASSERT_TRUE(posix_launcher().signal(*pid, SIGTERM).is_ok());
  Result<std::optional<ExitStatus>> st = std::optional<ExitStatus>();
  for (int i = 0; i < 200 && st.is_ok() && !st->has_value(); ++i) {
    st = posix_launcher().reap(*pid, /*wait=*/false);
    if (!st->has_value()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (st.is_ok() && !st->has_value()) {
    (void)posix_launcher().signal(*pid, SIGKILL);
    (void)posix_launcher().reap(*pid, /*wait=*/true);
    FAIL() << "SIGTERM did not stop the child: it inherited a blocked SIGTERM";
  }
  ASSERT_TRUE(st.is_ok());
  EXPECT_TRUE((*st)->signaled);
  EXPECT_EQ((*st)->signal, SIGTERM);
}

TEST(PosixLauncher, MissingProgramIsAnError) {
  auto pid = posix_launcher().spawn({{"/nonexistent/program"}});
  ASSERT_FALSE(pid.is_ok());
  EXPECT_NE(pid.status().message().find("/nonexistent/program"), std::string::npos);
}

}  // namespace
}  // namespace kiln::worker
