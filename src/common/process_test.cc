// The POSIX launcher with real children: exit statuses, output redirection,
// a clean signal state whatever the parent blocks; Child's ownership (killed
// and reaped when dropped, unless released) and Fd's.
#include "common/process.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace kiln::os {
namespace {

// True once `pid` is neither running nor a zombie of ours: it was reaped.
bool reaped(pid_t pid) { return ::waitpid(pid, nullptr, WNOHANG) == -1 && errno == ECHILD; }

// Polls the child until it ends or `limit` passes (real time); nullopt if it
// still runs then.
std::optional<ExitStatus> poll_for_exit(Child& child, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    auto st = child.reap(/*wait=*/false);
    if (!st.is_ok()) return std::nullopt;
    if (st->has_value()) return **st;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

TEST(PosixLauncher, ReportsExitCodesAndSignals) {
  ProcessLauncher& l = posix_launcher();
  auto child = l.start({{"/bin/sh", "-c", "exit 3"}});
  ASSERT_TRUE(child.is_ok()) << child.status().to_string();
  auto st = child->wait();
  ASSERT_TRUE(st.is_ok()) << st.status().to_string();
  EXPECT_FALSE(st->signaled);
  EXPECT_EQ(st->code, 3);
  EXPECT_EQ(st->describe(), "exit status 3");

  child = l.start({{"/bin/sleep", "1000"}});
  ASSERT_TRUE(child.is_ok());
  auto polled = child->reap(/*wait=*/false);
  ASSERT_TRUE(polled.is_ok());
  EXPECT_FALSE(polled->has_value()) << "still running";
  EXPECT_TRUE(child->running());
  ASSERT_TRUE(child->signal(SIGKILL).is_ok());
  st = child->wait();
  ASSERT_TRUE(st.is_ok());
  EXPECT_TRUE(st->signaled);
  EXPECT_EQ(st->describe(), "killed by signal 9 (SIGKILL)");
  EXPECT_FALSE(child->running());
  EXPECT_GT(child->pid(), 0) << "the pid is kept for messages";
  // Signalling a reaped child sends nothing (its pid may be another
  // process's by now) and is not an error.
  EXPECT_TRUE(child->signal(SIGTERM).is_ok());
  // The launcher itself also accepts a pid that is gone.
  EXPECT_TRUE(l.signal(child->pid(), SIGTERM).is_ok());
}

TEST(PosixLauncher, ChildOutputGoesToTheGivenDescriptor) {
  Fd r, w;
  ASSERT_TRUE(make_pipe(&r, &w).is_ok());
  SpawnOptions so;
  so.argv = {"/bin/sh", "-c", "echo out; echo err >&2; echo $KILN_TEST_VAR"};
  so.env = environment_with("KILN_TEST_VAR", "hello");
  so.stdout_fd = w.get();
  so.stderr_fd = w.get();
  auto child = posix_launcher().start(so);
  ASSERT_TRUE(child.is_ok());
  w.reset();  // the child holds the only write end now
  std::string out;
  char buf[256];
  for (ssize_t n; (n = ::read(r.get(), buf, sizeof buf)) > 0;) out.append(buf, n);
  EXPECT_EQ(out, "out\nerr\nhello\n");
  ASSERT_TRUE(child->wait().is_ok());
}

// `kiln serve` blocks SIGTERM on its threads and ignores SIGPIPE; a worker
// it starts must still stop on SIGTERM.
TEST(PosixLauncher, ChildrenStartWithDefaultSignals) {
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &term, &old), 0);
  auto child = posix_launcher().start({{"/bin/sleep", "1000"}});
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(child.is_ok());
  ASSERT_TRUE(child->signal(SIGTERM).is_ok());
  // A child that inherited the blocked SIGTERM would sleep on; the Child
  // kills it when the test ends either way.
  std::optional<ExitStatus> st = poll_for_exit(*child, std::chrono::seconds(10));
  ASSERT_TRUE(st.has_value()) << "SIGTERM did not stop the child: it inherited a blocked SIGTERM";
  EXPECT_TRUE(st->signaled);
  EXPECT_EQ(st->signal, SIGTERM);
}

// `kiln serve` starts its workers at a lower priority so that hundreds of
// them loading their libraries at once do not starve its own threads.
TEST(PosixLauncher, ChildStartsAtTheNiceLevelAsked) {
  const int ours = ::getpriority(PRIO_PROCESS, 0);
  const int asked = ours < 7 ? 7 : 19;
  SpawnOptions so;
  so.argv = {"/bin/sleep", "1000"};
  so.nice = asked;
  auto niced = posix_launcher().start(so);
  ASSERT_TRUE(niced.is_ok()) << niced.status().to_string();
  auto plain = posix_launcher().start({{"/bin/sleep", "1000"}});
  ASSERT_TRUE(plain.is_ok());
  errno = 0;
  EXPECT_EQ(::getpriority(PRIO_PROCESS, static_cast<id_t>(niced->pid())), asked);
  EXPECT_EQ(::getpriority(PRIO_PROCESS, static_cast<id_t>(plain->pid())), ours);
  EXPECT_EQ(errno, 0);
  // Both Children kill and reap their process when the test ends.
}

TEST(PosixLauncher, MissingProgramIsAnError) {
  auto child = posix_launcher().start({{"/nonexistent/program"}});
  ASSERT_FALSE(child.is_ok());
  EXPECT_NE(child.status().message().find("/nonexistent/program"), std::string::npos);
}

TEST(Child, DroppedWhileRunningIsKilledAndReaped) {
  pid_t pid = 0;
  {
    auto child = posix_launcher().start({{"/bin/sleep", "1000"}});
    ASSERT_TRUE(child.is_ok());
    pid = child->pid();
    ASSERT_FALSE(reaped(pid));
  }
  EXPECT_TRUE(reaped(pid)) << "no zombie and no orphan left behind";
}

TEST(Child, MovingHandsOverOwnership) {
  auto started = posix_launcher().start({{"/bin/sleep", "1000"}});
  ASSERT_TRUE(started.is_ok());
  Child a = std::move(started).value();
  const pid_t first = a.pid();
  Child b = std::move(a);
  EXPECT_FALSE(a.running());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(a.pid(), 0);      // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(b.pid(), first);
  EXPECT_TRUE(b.running());
  EXPECT_FALSE(reaped(first));

  // Assigning over a running child kills and reaps it first.
  auto second = posix_launcher().start({{"/bin/sleep", "1000"}});
  ASSERT_TRUE(second.is_ok());
  b = std::move(second).value();
  EXPECT_TRUE(reaped(first));
  EXPECT_TRUE(b.running());
}

TEST(Child, ReleasedChildIsLeftAlone) {
  pid_t pid = 0;
  {
    auto child = posix_launcher().start({{"/bin/sleep", "1000"}});
    ASSERT_TRUE(child.is_ok());
    pid = child->release();
    EXPECT_FALSE(child->running());
  }
  ASSERT_EQ(::kill(pid, 0), 0) << "a released child outlives its Child";
  ASSERT_TRUE(posix_launcher().signal(pid, SIGKILL).is_ok());
  auto st = posix_launcher().reap(pid, /*wait=*/true);
  ASSERT_TRUE(st.is_ok() && st->has_value());
  EXPECT_EQ((*st)->signal, SIGKILL);
}

TEST(Child, ReapedElsewhereEndsOwnershipWithAnError) {
  auto child = posix_launcher().start({{"/bin/sh", "-c", "exit 0"}});
  ASSERT_TRUE(child.is_ok());
  ASSERT_EQ(::waitpid(child->pid(), nullptr, 0), child->pid());
  auto st = child->reap(/*wait=*/false);
  EXPECT_FALSE(st.is_ok());
  EXPECT_FALSE(child->running()) << "nothing left to kill or reap";
}

TEST(Fd, ClosesOnceAndReportsCloseErrors) {
  Fd r, w;
  ASSERT_TRUE(make_pipe(&r, &w).is_ok());
  EXPECT_TRUE(r.valid());
  EXPECT_NE(::fcntl(r.get(), F_GETFD) & FD_CLOEXEC, 0) << "pipe ends are close-on-exec";
  const int raw = w.get();
  Fd moved = std::move(w);
  EXPECT_FALSE(w.valid());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(moved.get(), raw);
  EXPECT_TRUE(moved.close("pipe").is_ok());
  EXPECT_FALSE(moved.valid());
  EXPECT_TRUE(moved.close("pipe").is_ok()) << "closing twice is a no-op";
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1) << "closed";

  // A descriptor closed behind the Fd's back: close() says so, naming it.
  Fd stale(::dup(r.get()));
  ASSERT_TRUE(stale.valid());
  ASSERT_EQ(::close(stale.get()), 0);
  Status st = stale.close("/some/file");
  EXPECT_EQ(st.code(), StatusCode::kIOError);
  EXPECT_NE(st.message().find("/some/file"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace kiln::os
