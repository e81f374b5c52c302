// kiln::http::Server over real loopback sockets. Clients are raw sockets,
// so a test can send half a head, pipeline, or never send anything. Tests
// that involve deadlines drive a ManualClock; where a test must know the
// server has seen something (a connection, a partial head) before it moves
// the clock, it first completes a request on another connection: the loop
// is one thread and handles events in arrival order, so that answer
// proves the earlier event was handled.
#include "http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"

namespace kiln::http {
namespace {

// A client socket that reads and writes raw HTTP. Every read gives up after
// 30 s, so a broken server fails a test instead of hanging it.
class RawClient {
 public:
  RawClient(int port, const std::string& source = "127.0.0.1") {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{30, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    ::inet_pton(AF_INET, source.c_str(), &src.sin_addr);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof src);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0;
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return connected_; }
  bool send(const std::string& text) {
    return ::send(fd_, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
  }
  void close() {
    ::close(fd_);
    fd_ = -1;
  }

  struct Reply {
    int status = 0;  // 0: the connection ended (or timed out) first
    std::string head;
    std::string body;
  };
  // One response: the head, then Content-Length bytes of body (none for
  // the answer to a HEAD request).
  Reply read_reply(bool head_only = false) {
    Reply r;
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return r;
    }
    r.head = buf_.substr(0, end + 4);
    buf_.erase(0, end + 4);
    r.status = std::atoi(r.head.c_str() + 9);
    size_t length = 0;
    const size_t cl = r.head.find("Content-Length: ");
    if (cl != std::string::npos && !head_only) {
      length = std::strtoul(r.head.c_str() + cl + 16, nullptr, 10);
    }
    while (buf_.size() < length) {
      if (!fill()) return Reply{};
    }
    r.body = buf_.substr(0, length);
    buf_.erase(0, length);
    return r;
  }
  // True when the server closed the connection (EOF) with nothing unread.
  bool closed_by_server() {
    if (!buf_.empty()) return false;
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
  }

 private:
  bool fill() {
    char chunk[4096];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buf_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

std::string get(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: test\r\n" + extra + "\r\n";
}

// A Server on 127.0.0.1 with its loop on a thread of its own.
class ServerTest : public testing::Test {
 protected:
  void start(ServerOptions options = ServerOptions()) {
    options.clock = &clock_;
    server_ = std::make_unique<Server>(options);
    server_->Get("/hello", [](const Request& req, Response& res) {
      res.set_content("hello " + req.remote_addr + " " + req.get_param_value("who"), "text/plain");
    });
    server_->Get(R"(/items/([^/]+)/parts/(\d+))", [](const Request& req, Response& res) {
      res.set_content(req.matches[1] + ":" + req.matches[2], "text/plain");
    });
    server_->Post("/echo", [](const Request& req, Response& res) {
      res.status = 201;
      res.set_header("X-Length", std::to_string(req.body.size()));
      res.set_content(req.body, "application/octet-stream");
    });
    server_->Get("/throw",
                 [](const Request&, Response&) -> void { throw std::runtime_error("boom"); });
    server_->Get("/poll", [this](const Request&, Response& res) {
      std::shared_ptr<Deferred> d = res.suspend();
      MutexLock lock(&mu_);
      suspended_.push_back(std::move(d));
      changed_.notify_all();
    });
    server_->Get("/instant", [](const Request&, Response& res) {
      // Completed before the handler even returns.
      res.suspend()->complete([] {
        Response r;
        r.set_content("instant", "text/plain");
        return r;
      }());
    });
    auto port = server_->bind("127.0.0.1", 0);
    ASSERT_TRUE(port.is_ok()) << port.status().to_string();
    port_ = *port;
    loop_ = std::thread([this] { server_->run(); });
  }

  void TearDown() override {
    if (server_) server_->stop();
    if (loop_.joinable()) loop_.join();
  }

  // Waits (real time, bounded) until `n` requests are suspended.
  bool wait_suspended(size_t n) {
    MutexLock lock(&mu_);
    const int64_t deadline = system_clock().now_ms() + 30'000;
    while (suspended_.size() < n) {
      if (!changed_.wait_until(&mu_, system_clock(), deadline)) return false;
    }
    return true;
  }

  // A complete request on a fresh connection from `source`.
  RawClient::Reply request(const std::string& text, const std::string& source = "127.0.0.1") {
    RawClient c(port_, source);
    EXPECT_TRUE(c.send(text));
    return c.read_reply();
  }

  ManualClock clock_;
  std::unique_ptr<Server> server_;
  std::thread loop_;
  int port_ = 0;
  Mutex mu_;
  CondVar changed_;
  std::vector<std::shared_ptr<Deferred>> suspended_ GUARDED_BY(mu_);
};

TEST_F(ServerTest, RoutesWithGroupsParamsAndErrors) {
  start();
  RawClient::Reply r = request(get("/hello?who=you"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello 127.0.0.1 you");
  EXPECT_NE(r.head.find("Content-Type: text/plain"), std::string::npos);
  EXPECT_EQ(request(get("/items/a%20b/parts/42")).body, "a b:42");
  r = request(get("/nowhere"));
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("\"not_found\""), std::string::npos);
  r = request("DELETE /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(r.status, 405);
  EXPECT_NE(r.body.find("method_not_allowed"), std::string::npos);
  RawClient c(port_);
  ASSERT_TRUE(c.send("HEAD /hello?who=x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  r = c.read_reply(/*head_only=*/true);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.head.find("Content-Length: 17"), std::string::npos) << r.head;  // GET's length
  EXPECT_TRUE(c.closed_by_server()) << "a body followed the head";
}

TEST_F(ServerTest, KeepAliveAndPipelinedRequestsAnswerInOrder) {
  start();
  RawClient c(port_);
  ASSERT_TRUE(c.send(get("/hello?who=1") +
                     "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde" +
                     get("/items/x/parts/7")));
  RawClient::Reply a = c.read_reply(), b = c.read_reply(), d = c.read_reply();
  EXPECT_EQ(a.body, "hello 127.0.0.1 1");
  EXPECT_EQ(b.status, 201);
  EXPECT_EQ(b.body, "abcde");
  EXPECT_NE(b.head.find("X-Length: 5"), std::string::npos);
  EXPECT_EQ(d.body, "x:7");
  // Still open for more.
  ASSERT_TRUE(c.send(get("/hello?who=2")));
  EXPECT_EQ(c.read_reply().body, "hello 127.0.0.1 2");
  // Connection: close is honoured.
  ASSERT_TRUE(c.send(get("/hello", "Connection: close\r\n")));
  RawClient::Reply last = c.read_reply();
  EXPECT_EQ(last.status, 200);
  EXPECT_NE(last.head.find("Connection: close"), std::string::npos);
  EXPECT_TRUE(c.closed_by_server());
}

TEST_F(ServerTest, RefusesOversizedHeadersBodiesAndChunkedBodies) {
  ServerOptions o;
  o.limits.max_header_bytes = 2048;
  o.limits.max_body_bytes = 1000;
  start(o);
  {
    RawClient c(port_);
    ASSERT_TRUE(c.send(get("/hello", "X-Big: " + std::string(3000, 'x') + "\r\n")));
    RawClient::Reply r = c.read_reply();
    EXPECT_EQ(r.status, 431);
    EXPECT_NE(r.body.find("over 2048 bytes"), std::string::npos) << r.body;
    EXPECT_TRUE(c.closed_by_server());
  }
  {
    RawClient c(port_);
    // The answer comes before the body is sent.
    ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n"));
    RawClient::Reply r = c.read_reply();
    EXPECT_EQ(r.status, 413);
    EXPECT_NE(r.body.find("limit of 1000 bytes"), std::string::npos) << r.body;
    EXPECT_TRUE(c.closed_by_server());
  }
  RawClient::Reply r = request(
      "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  EXPECT_EQ(r.status, 411);
  EXPECT_NE(r.body.find("Content-Length"), std::string::npos);
  EXPECT_EQ(request("GET / HTTP/1.1\r\n\r\n").status, 400);  // no Host
  // A body of exactly the limit is fine.
  r = request("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" +
              std::string(1000, 'b'));
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body.size(), 1000u);
}

TEST_F(ServerTest, AnswersExpectContinueBeforeTheBody) {
  start();
  RawClient c(port_);
  ASSERT_TRUE(
      c.send("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
             "Content-Length: 3\r\n\r\n"));
  RawClient::Reply cont = c.read_reply();
  EXPECT_EQ(cont.status, 100);
  ASSERT_TRUE(c.send("xyz"));
  RawClient::Reply r = c.read_reply();
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, "xyz");
}

TEST_F(ServerTest, ExceptionInAHandlerIsA500WithARequestId) {
  start();
  RawClient c(port_);
  ASSERT_TRUE(c.send(get("/throw")));
  RawClient::Reply r = c.read_reply();
  EXPECT_EQ(r.status, 500);
  const size_t at = r.head.find("X-Request-Id: ");
  ASSERT_NE(at, std::string::npos) << r.head;
  const std::string id = r.head.substr(at + 14, r.head.find("\r\n", at) - at - 14);
  EXPECT_FALSE(id.empty());
  EXPECT_NE(r.body.find("\"request_id\":\"" + id + "\""), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("boom"), std::string::npos) << "the exception text stays in the log";
  // 16 hex digits, random: the next request's id is no neighbour of this one.
  EXPECT_EQ(id.size(), 16u) << id;
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
  ASSERT_TRUE(c.send(get("/throw")));
  RawClient::Reply again = c.read_reply();
  const size_t at2 = again.head.find("X-Request-Id: ");
  ASSERT_NE(at2, std::string::npos) << again.head;
  const std::string id2 = again.head.substr(at2 + 14, 16);
  EXPECT_NE(id2, id);
  EXPECT_GT(std::abs(static_cast<long double>(std::stoull(id2, nullptr, 16)) -
                     static_cast<long double>(std::stoull(id, nullptr, 16))),
            1e6L)
      << id << " then " << id2 << ": a sequence";
  // The server and even the connection carry on.
  ASSERT_TRUE(c.send(get("/hello")));
  EXPECT_EQ(c.read_reply().status, 200);
}

TEST_F(ServerTest, SlowHeadersAreClosedAtTheDeadlineWhileOthersAreServed) {
  ServerOptions o;
  o.header_timeout_ms = 10'000;
  o.idle_timeout_ms = 60'000;
  start(o);
  RawClient silent(port_, "127.0.0.2");  // connects, never sends
  RawClient slow(port_, "127.0.0.2");
  ASSERT_TRUE(slow.send("GET /hello HTTP/1.1\r\nHo"));
  // Served meanwhile, from the same address and another.
  EXPECT_EQ(request(get("/hello"), "127.0.0.2").status, 200);
  EXPECT_EQ(request(get("/hello"), "127.0.0.3").status, 200);
  clock_.advance(9'000);
  ASSERT_TRUE(slow.send("st: t\r\nX: "));  // trickling does not extend the deadline
  EXPECT_EQ(request(get("/hello"), "127.0.0.3").status, 200);
  clock_.advance(1'001);
  RawClient::Reply r = slow.read_reply();
  EXPECT_EQ(r.status, 408);
  EXPECT_NE(r.body.find("request head not complete within 10000 ms"), std::string::npos);
  EXPECT_TRUE(slow.closed_by_server());
  EXPECT_TRUE(silent.closed_by_server());
}

TEST_F(ServerTest, HeaderDeadlineOfALaterRequestCountsFromItsFirstByte) {
  ServerOptions o;
  o.header_timeout_ms = 10'000;
  o.idle_timeout_ms = 60'000;
  start(o);
  RawClient c(port_);
  ASSERT_TRUE(c.send(get("/hello")));
  EXPECT_EQ(c.read_reply().status, 200);
  clock_.advance(30'000);  // idle, within the keep-alive timeout
  EXPECT_EQ(request(get("/hello"), "127.0.0.3").status, 200);
  ASSERT_TRUE(c.send("GET /hel"));
  EXPECT_EQ(request(get("/hello"), "127.0.0.3").status, 200);  // the loop has read it
  clock_.advance(10'001);
  EXPECT_EQ(c.read_reply().status, 408);
  EXPECT_TRUE(c.closed_by_server());
}

TEST_F(ServerTest, IdleKeepAliveConnectionsAreClosed) {
  ServerOptions o;
  o.idle_timeout_ms = 5'000;
  o.header_timeout_ms = 10'000;
  start(o);
  RawClient c(port_);
  ASSERT_TRUE(c.send(get("/hello")));
  EXPECT_EQ(c.read_reply().status, 200);
  EXPECT_EQ(request(get("/hello"), "127.0.0.3").status, 200);
  clock_.advance(5'001);
  EXPECT_TRUE(c.closed_by_server());
}

TEST_F(ServerTest, BodyDeadline) {
  ServerOptions o;
  o.body_timeout_ms = 5'000;
  start(o);
  RawClient c(port_);
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc"));
  EXPECT_EQ(request(get("/hello"), "127.0.0.3").status, 200);
  clock_.advance(5'001);
  RawClient::Reply r = c.read_reply();
  EXPECT_EQ(r.status, 408);
  EXPECT_NE(r.body.find("request body not complete"), std::string::npos);
}

TEST_F(ServerTest, CapsTheBodiesHeldInMemoryInAll) {
  ServerOptions o;
  o.max_buffered_body_bytes = 1000;
  start(o);
  // 800 bytes announced, 3 sent: the 800 count until its answer is sent.
  RawClient slow(port_);
  ASSERT_TRUE(slow.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 800\r\n\r\nabc"));
  // Served after the slow head was read (one loop, in order).
  EXPECT_EQ(request(get("/hello"), "127.0.0.3").status, 200);
  RawClient over(port_, "127.0.0.4");
  ASSERT_TRUE(over.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 300\r\n\r\n"));
  RawClient::Reply r = over.read_reply();
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("too many request bodies"), std::string::npos) << r.body;
  // A body that fits is taken meanwhile; so are requests without one.
  RawClient fits(port_, "127.0.0.5");
  ASSERT_TRUE(fits.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 150\r\n\r\n" +
                        std::string(150, 'x')));
  EXPECT_EQ(fits.read_reply().status, 201);
  // Once the slow body is in and answered, its share is free again.
  ASSERT_TRUE(slow.send(std::string(797, 'y')));
  EXPECT_EQ(slow.read_reply().status, 201);
  RawClient again(port_, "127.0.0.6");
  ASSERT_TRUE(again.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 900\r\n\r\n" +
                         std::string(900, 'z')));
  EXPECT_EQ(again.read_reply().status, 201);
}

TEST_F(ServerTest, CapsConnectionsPerAddress) {
  ServerOptions o;
  o.max_connections_per_address = 3;
  start(o);
  std::vector<std::unique_ptr<RawClient>> held;
  for (int i = 0; i < 3; ++i) held.push_back(std::make_unique<RawClient>(port_, "127.0.0.2"));
  RawClient fourth(port_, "127.0.0.2");
  RawClient::Reply r = fourth.read_reply();
  EXPECT_EQ(r.status, 429);
  EXPECT_NE(r.body.find("too many connections from 127.0.0.2 (at most 3)"), std::string::npos)
      << r.body;
  EXPECT_TRUE(fourth.closed_by_server());
  // Other addresses are served; the held ones still work.
  EXPECT_EQ(request(get("/hello"), "127.0.0.3").status, 200);
  ASSERT_TRUE(held[0]->send(get("/hello")));
  EXPECT_EQ(held[0]->read_reply().status, 200);
  // A slot freed is a slot again.
  held[1]->close();
  held[2]->close();
  held.resize(1);
  EXPECT_EQ(request(get("/hello"), "127.0.0.3").status, 200);  // the closes were seen
  EXPECT_EQ(request(get("/hello"), "127.0.0.2").status, 200);
}

TEST_F(ServerTest, AThousandIdleSocketsDoNotBlockARequest) {
  start();
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; i < 1000; ++i) {
    idle.push_back(std::make_unique<RawClient>(port_, "127.0.0.2"));
    ASSERT_TRUE(idle.back()->connected()) << i;
  }
  RawClient::Reply r = request(get("/hello"), "127.0.0.3");
  EXPECT_EQ(r.status, 200);
  // They were all accepted (before the request, which connected last), not
  // left in the backlog.
  EXPECT_GE(server_->connections(), 1000u);
}

TEST_F(ServerTest, SuspendedRequestsHoldNoHandlerThread) {
  ServerOptions o;
  o.handler_threads = 2;
  start(o);
  constexpr size_t kPolls = 200;
  std::vector<std::unique_ptr<RawClient>> polls;
  for (size_t i = 0; i < kPolls; ++i) {
    polls.push_back(std::make_unique<RawClient>(port_, "127.0.0.2"));
    ASSERT_TRUE(polls.back()->send(get("/poll")));
  }
  ASSERT_TRUE(wait_suspended(kPolls));
  // Two handler threads, two hundred requests waiting: still served.
  EXPECT_EQ(request(get("/hello"), "127.0.0.3").status, 200);
  EXPECT_EQ(request(get("/instant"), "127.0.0.3").body, "instant");
  std::vector<std::shared_ptr<Deferred>> ds;
  {
    MutexLock lock(&mu_);
    ds = suspended_;
  }
  // Answered from this thread, in reverse order.
  for (size_t i = kPolls; i-- > 0;) {
    Response res;
    res.set_content("done " + std::to_string(i), "text/plain");
    ds[i]->complete(std::move(res));
  }
  std::set<std::string> bodies;
  for (size_t i = 0; i < kPolls; ++i) {
    RawClient::Reply r = polls[i]->read_reply();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body.rfind("done ", 0), 0u);
    bodies.insert(r.body);
  }
  // Each connection got exactly one answer, and all are distinct.
  EXPECT_EQ(bodies.size(), kPolls);
  // The connections are kept alive for more.
  for (auto& p : polls) {
    ASSERT_TRUE(p->send(get("/hello")));
    EXPECT_EQ(p->read_reply().status, 200);
  }
}

TEST_F(ServerTest, AClientThatLeavesAbandonsItsSuspendedRequest) {
  // One handler thread: it has told the loop about the suspension before it
  // runs the next request's handler, so the barrier below orders both.
  ServerOptions o;
  o.handler_threads = 1;
  start(o);
  auto c = std::make_unique<RawClient>(port_);
  ASSERT_TRUE(c->send(get("/poll")));
  ASSERT_TRUE(wait_suspended(1));
  std::shared_ptr<Deferred> d;
  {
    MutexLock lock(&mu_);
    d = suspended_[0];
  }
  EXPECT_FALSE(d->abandoned());
  c->close();
  EXPECT_EQ(request(get("/hello"), "127.0.0.3").status, 200);  // the loop saw the close
  EXPECT_TRUE(d->abandoned());
  Response res;
  d->complete(std::move(res));  // harmless
}

}  // namespace
}  // namespace kiln::http
