// The POSIX launcher with real children: exit statuses, output redirection,
// a clean signal state whatever the parent blocks; Child's ownership (killed
// and reaped when dropped, unless released) and Fd's.
#include "common/process.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
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
  struct sigaction ignore = {}, before = {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGTERM, &ignore, &before), 0);  // ignored and blocked
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &term, &old), 0);
  auto child = posix_launcher().start({{"/bin/sleep", "1000"}});
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::sigaction(SIGTERM, &before, nullptr);
  ASSERT_TRUE(child.is_ok());
  ASSERT_TRUE(child->signal(SIGTERM).is_ok());
  // A child that inherited the blocked SIGTERM would sleep on; the Child
  // kills it when the test ends either way.
  std::optional<ExitStatus> st = poll_for_exit(*child, std::chrono::seconds(10));
  ASSERT_TRUE(st.has_value())
      << "SIGTERM did not stop the child: it inherited a blocked or ignored SIGTERM";
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

// A sandboxed task's limits are set between clone and exec: they bind the
// program from its first instruction, and what it starts inherits them.
TEST(PosixLauncher, ChildStartsWithTheLimitsAsked) {
  Fd r, w;
  ASSERT_TRUE(make_pipe(&r, &w).is_ok());
  SpawnOptions so;
  so.argv = {"/bin/sh", "-c",
             "/bin/grep -E '^Max (cpu time|file size|core file size) ' /proc/self/limits"};
  so.stdout_fd = w.get();
  so.rlimits = {{RLIMIT_CPU, 7}, {RLIMIT_FSIZE, 3 << 20}, {RLIMIT_CORE, 0}};
  auto child = posix_launcher().start(so);
  ASSERT_TRUE(child.is_ok()) << child.status().to_string();
  w.reset();
  std::string out;
  char buf[1024];
  for (ssize_t n; (n = ::read(r.get(), buf, sizeof buf)) > 0;) out.append(buf, n);
  ASSERT_TRUE(child->wait().is_ok());
  // Soft and hard alike, as seen by grep (a grandchild of the spawn).
  auto limit_line = [&out](const std::string& name) {
    const size_t at = out.find(name);
    if (at == std::string::npos) return std::string();
    std::string line = out.substr(at, out.find('\n', at) - at);
    std::string squeezed;
    for (char c : line)
      if (c != ' ' || (!squeezed.empty() && squeezed.back() != ' ')) squeezed += c;
    while (!squeezed.empty() && squeezed.back() == ' ') squeezed.pop_back();
    return squeezed;
  };
  EXPECT_EQ(limit_line("Max cpu time"), "Max cpu time 7 7 seconds") << out;
  EXPECT_EQ(limit_line("Max file size"), "Max file size 3145728 3145728 bytes") << out;
  EXPECT_EQ(limit_line("Max core file size"), "Max core file size 0 0 bytes") << out;

  // And they hold: writing past RLIMIT_FSIZE ends the child by SIGXFSZ.
  char tmpl[] = "/tmp/kiln-process-test-XXXXXX";
  Fd file(::mkstemp(tmpl));
  ASSERT_TRUE(file.valid());
  SpawnOptions big;
  big.argv = {"/bin/sh", "-c", std::string("/usr/bin/head -c 4194304 /dev/zero > ") + tmpl};
  big.rlimits = {{RLIMIT_FSIZE, 1 << 20}};
  auto writer = posix_launcher().start(big);
  ASSERT_TRUE(writer.is_ok());
  auto st = writer->wait();
  ::unlink(tmpl);
  ASSERT_TRUE(st.is_ok());
  EXPECT_FALSE(st->ok()) << "wrote 4 MiB under a 1 MiB file size limit";
  struct stat sb;
  ASSERT_EQ(::fstat(file.get(), &sb), 0);
  EXPECT_EQ(sb.st_size, 1 << 20);
}

// Descriptors handed on by number, even when one's number is another's
// target: each arrives where it was asked to.
TEST(PosixLauncher, ExtraDescriptorsArriveAtTheirNumbers) {
  Fd r1, w1, r2, w2;
  ASSERT_TRUE(make_pipe(&r1, &w1).is_ok());
  ASSERT_TRUE(make_pipe(&r2, &w2).is_ok());
  SpawnOptions so;
  so.argv = {"/bin/sh", "-c", "echo first >&7; echo second >&8"};
  // Crossed on purpose: w2 goes to 7 and w1 to 8, wherever they are now.
  so.fds = {{w2.get(), 7}, {w1.get(), 8}};
  auto child = posix_launcher().start(so);
  ASSERT_TRUE(child.is_ok()) << child.status().to_string();
  w1.reset();
  w2.reset();
  auto drain = [](const Fd& fd) {
    std::string out;
    char buf[256];
    for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) > 0;) out.append(buf, n);
    return out;
  };
  EXPECT_EQ(drain(r2), "first\n");
  EXPECT_EQ(drain(r1), "second\n");
  ASSERT_TRUE(child->wait().is_ok());
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
