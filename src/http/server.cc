#include "http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>

#include <nlohmann/json.hpp>

#include "common/log.h"

namespace kiln::http {
namespace {

// epoll data tags below the first connection id.
constexpr uint64_t kListenTag = 1;
constexpr uint64_t kMailboxTag = 2;
// Bytes read from one connection per readiness event, so a fast sender
// does not starve the others in one loop turn.
constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kReadPerEvent = 64 * 1024;
// File descriptors kept for everything but client connections (the job
// store, logs, worker pipes, GDAL).
constexpr size_t kReservedFds = 256;
// After an error answer, unread request bytes are drained this long before
// the close, so the close does not reset the connection before the client
// has read the answer (RFC 9112 9.6).
constexpr int64_t kLingerMs = 2'000;
// Answer heads up to this size keep their buffer between requests.
constexpr size_t kKeptHeadBytes = 4 * 1024;
// Request ids drawn from the kernel per getrandom(2) call.
constexpr size_t kIdsPerDraw = 64;
// The longest the loop sleeps without looking at deadlines and stop().
constexpr int64_t kMaxPollMs = 1'000;

const char* reason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Status";
  }
}

const char* error_code(int status) {
  switch (status) {
    case 400:
      return "bad_request";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 408:
      return "request_timeout";
    case 411:
      return "length_required";
    case 413:
      return "payload_too_large";
    case 414:
      return "uri_too_long";
    case 417:
      return "expectation_failed";
    case 429:
      return "too_many_connections";
    case 431:
      return "headers_too_large";
    case 500:
      return "internal";
    case 501:
      return "not_implemented";
    case 503:
      return "unavailable";
    case 505:
      return "http_version_not_supported";
    default:
      return "error";
  }
}

// Kiln's native error body ({"error": {"code", "message"}}), with the
// request id when there is one.
Response error_response(int status, const std::string& message, const std::string& request_id) {
  nlohmann::json e = {{"code", error_code(status)}, {"message", message}};
  if (!request_id.empty()) e["request_id"] = request_id;
  Response res;
  res.status = status;
  res.set_content(
      nlohmann::json{{"error", e}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
      "application/json");
  return res;
}

std::string peer_address(const sockaddr_storage& ss, int* port) {
  char text[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    *port = ntohs(in->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    *port = ntohs(in6->sin6_port);
  }
  return text;
}

}  // namespace

enum class Server::ConnState {
  kIdle,       // between requests: no byte of the next one yet
  kReading,    // part of a request head or body has arrived
  kHandling,   // a handler thread has the request
  kSuspended,  // the handler suspended it; a Deferred will answer
  kWriting,    // sending the answer
  kLingering,  // answered and shut down for writing; draining, then close
};

struct Server::Conn {
  Conn(uint64_t id_, int fd_, const ParserLimits& limits) : id(id_), fd(fd_), parser(limits) {}
  const uint64_t id;
  const int fd;
  std::string addr;
  int port = 0;
  ConnState state = ConnState::kIdle;
  RequestParser parser;
  bool first_request = true;
  bool peer_closed = false;  // read() saw the end of the client's stream
  bool head_request = false;
  uint64_t seq = 0;    // requests dispatched on this connection
  std::string out;     // the answer's status line and headers
  std::string body;    // its body, sent after `out` without a copy
  size_t out_off = 0;  // bytes of out + body sent
  bool close_after_write = false;
  int64_t deadline = 0;  // 0: none
  uint32_t interest = 0;
  std::shared_ptr<Deferred> deferred;  // while kSuspended
  int64_t body_bytes = 0;              // counted in buffered_body_bytes_ for this request
};

Server::Server(ServerOptions options)
    : options_(std::move(options)),
      clock_(options_.clock ? *options_.clock : system_clock()),
      pool_(options_.handler_threads),
      mailbox_(std::make_shared<Mailbox>()) {}

Server::~Server() {
  stop();
  pool_.stop();
  for (auto& [id, c] : conns_) {
    if (c->deferred) c->deferred->abandon();
    ::close(c->fd);
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (spare_fd_ >= 0) ::close(spare_fd_);
}

Result<int> Server::bind(const std::string& host, int port) {
  // Every idle or slow client holds a descriptor: the default soft limit
  // (often 1024) would be the first thing an attacker exhausts.
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  max_connections_ = options_.max_connections;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > kReservedFds) {
    max_connections_ = std::min<size_t>(max_connections_, rl.rlim_cur - kReservedFds);
  }
  if (!mailbox_->ok()) return io_error(std::string("eventfd: ") + std::strerror(errno));

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return io_error("cannot listen on " + host + ":" + service + ": " + ::gai_strerror(rc));
  }
  std::string why = "no address";
  for (addrinfo* ai = found; ai; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // The kernel caps the backlog at net.core.somaxconn; a burst of a
    // thousand connects must queue, not be refused, while the loop accepts.
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 4096) == 0) {
      listen_fd_ = fd;
      break;
    }
    why = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(found);
  if (listen_fd_ < 0) return io_error("cannot listen on " + host + ":" + service + ": " + why);

  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len);
  int bound = 0;
  peer_address(ss, &bound);

  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return io_error(std::string("epoll_create1: ") + std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenTag;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  ev.data.u64 = kMailboxTag;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, mailbox_->fd(), &ev);
  spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  return bound;
}

void Server::run() {
  pool_.start();
  std::vector<epoll_event> events(256);
  while (!stopping_.load()) {
    int64_t wait_ms = kMaxPollMs;
    if (!deadlines_.empty()) {
      wait_ms = std::min<int64_t>(wait_ms, clock_.real_wait(deadlines_.begin()->first).count());
    }
    const int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()),
                               static_cast<int>(wait_ms));
    if (n < 0 && errno != EINTR) {
      log::error(std::string("http: epoll_wait: ") + std::strerror(errno));
      break;
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kListenTag) {
        accept_all();
      } else if (tag == kMailboxTag) {
        for (LoopMessage& m : mailbox_->take()) on_message(std::move(m));
      } else {
        on_event(tag, events[i].events);
      }
    }
    const int64_t now = clock_.now_ms();
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
      on_deadline(deadlines_.begin()->second);
    }
  }
  mailbox_->close();
  pool_.stop();
  std::vector<uint64_t> ids;
  for (const auto& [id, c] : conns_) ids.push_back(id);
  for (uint64_t id : ids) close_conn(id);
}

void Server::stop() {
  stopping_.store(true);
  mailbox_->wake();
}

void Server::accept_all() {
  for (;;) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int fd =
        ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && spare_fd_ >= 0) {
        // Out of descriptors: the pending connection would keep the listen
        // socket readable forever. Take it with the spare and close it.
        ::close(spare_fd_);
        const int victim = ::accept(listen_fd_, nullptr, nullptr);
        if (victim >= 0) ::close(victim);
        spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        log::warn("http: out of file descriptors; refused a connection");
        continue;
      }
      return;  // EAGAIN: all taken
    }
    int port = 0;
    const std::string addr = peer_address(ss, &port);
    if (conns_.size() >= max_connections_) {
      refuse(fd, 503,
             "the server holds its maximum of " + std::to_string(max_connections_) +
                 " connections; retry later");
      continue;
    }
    size_t& from_addr = per_address_[addr];
    if (from_addr >= options_.max_connections_per_address) {
      refuse(fd, 429,
             "too many connections from " + addr + " (at most " +
                 std::to_string(options_.max_connections_per_address) + ")");
      continue;
    }
    ++from_addr;
    const int one = 1;
    // Small JSON answers: without TCP_NODELAY, Nagle and delayed ACKs hold
    // each back for tens of milliseconds.
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const uint64_t id = next_conn_id_++;
    auto conn = std::make_unique<Conn>(id, fd, options_.limits);
    conn->addr = addr;
    conn->port = port;
    Conn& c = *conn;
    conns_.emplace(id, std::move(conn));
    open_connections_.store(conns_.size());
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = id;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    c.interest = ev.events;
    // A new connection must deliver its first head within the header
    // timeout: a socket that never sends is a slow loris too.
    set_deadline(c, clock_.now_ms() + options_.header_timeout_ms);
  }
}

void Server::refuse(int fd, int status, const std::string& message) {
  Response res = error_response(status, message, "");
  std::string text =
      "HTTP/1.1 " + std::to_string(status) + " " + reason(status) +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(res.body.size()) +
      "\r\nConnection: close\r\n\r\n" + res.body;
  // Best effort on a fresh socket (its send buffer is empty).
  [[maybe_unused]] ssize_t n = ::send(fd, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::close(fd);
}

void Server::on_event(uint64_t id, uint32_t events) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  if (events & (EPOLLERR | EPOLLHUP)) return close_conn(id);
  switch (c.state) {
    case ConnState::kIdle:
    case ConnState::kReading:
      if (events & (EPOLLIN | EPOLLRDHUP)) {
        read_some(c, (events & EPOLLRDHUP) != 0);
        process(id);
      }
      return;
    case ConnState::kHandling:
    case ConnState::kSuspended:
      // The client went away before its answer: a suspended request is
      // abandoned (its waker may drop it), a running handler's answer is
      // dropped when it comes.
      if (events & EPOLLRDHUP) return close_conn(id);
      // It sent more (a pipelined request) before its answer: those bytes
      // wait in the socket; watch only for the hang-up until the answer.
      if (events & EPOLLIN) set_interest(c, EPOLLRDHUP);
      return;
    case ConnState::kWriting:
      if (events & EPOLLOUT) flush(id);
      return;
    case ConnState::kLingering: {
      char sink[kReadChunk];
      for (;;) {
        const ssize_t n = ::read(c.fd, sink, sizeof sink);
        if (n > 0) continue;
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        return close_conn(id);
      }
    }
  }
}

void Server::read_some(Conn& c, bool hung_up) {
  char buf[kReadChunk];
  size_t total = 0;
  while (total < kReadPerEvent) {
    const ssize_t n = ::read(c.fd, buf, sizeof buf);
    if (n > 0) {
      c.parser.append(std::string_view(buf, static_cast<size_t>(n)));
      total += static_cast<size_t>(n);
      // A short read emptied the socket: asking again would only say
      // EAGAIN (a syscall per request); epoll says when more comes. Unless
      // the client has hung up its side: the end of its stream must be
      // seen now, so its answer is still sent (peer_closed).
      if (static_cast<size_t>(n) < sizeof buf && !hung_up) return;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    c.peer_closed = true;  // EOF, or an error: nothing more will come
    return;
  }
}

void Server::process(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  while (c.state == ConnState::kIdle || c.state == ConnState::kReading) {
    switch (c.parser.advance()) {
      case RequestParser::State::kNeedMore:
        if (c.parser.started() && c.state == ConnState::kIdle) {
          c.state = ConnState::kReading;
          // The header deadline counts from the first byte of each request
          // (from accept for the first one, already set).
          if (!c.first_request) set_deadline(c, clock_.now_ms() + options_.header_timeout_ms);
        }
        if (c.peer_closed) return close_conn(id);
        return;
      case RequestParser::State::kHeadComplete: {
        c.state = ConnState::kReading;
        set_deadline(c, clock_.now_ms() + options_.body_timeout_ms);
        const int64_t length = std::max<int64_t>(c.parser.content_length(), 0);
        if (buffered_body_bytes_ + length > options_.max_buffered_body_bytes) {
          return send_error(c, 503,
                            "the server holds too many request bodies at once; retry shortly");
        }
        buffered_body_bytes_ += length;
        c.body_bytes = length;
        if (c.parser.expects_continue() &&
            c.parser.buffered_bytes() < static_cast<size_t>(c.parser.content_length())) {
          static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
          const ssize_t n = ::send(c.fd, kContinue, sizeof kContinue - 1, MSG_NOSIGNAL);
          // A send buffer full before the first answer: not a client to wait for.
          if (n != static_cast<ssize_t>(sizeof kContinue - 1)) return close_conn(id);
        }
        continue;
      }
      case RequestParser::State::kComplete:
        return dispatch(c);
      case RequestParser::State::kError:
        return send_error(c, c.parser.error().status, c.parser.error().message);
    }
  }
}

void Server::dispatch(Conn& c) {
  Request req = c.parser.take_request();
  req.remote_addr = c.addr;
  req.remote_port = c.port;
  req.request_id = next_request_id();
  c.first_request = false;
  c.head_request = req.method == "HEAD";
  c.close_after_write = !c.parser.keep_alive() || c.peer_closed;
  c.state = ConnState::kHandling;
  ++c.seq;
  set_deadline(c, 0);
  // Watch only for the client leaving (and not even that once it has
  // half-closed: the hang-up stays signalled). Reads stay watched until
  // the client sends more before its answer (on_event drops them then):
  // changing the interest twice per request costs two syscalls, and most
  // clients send nothing while they wait.
  if (c.peer_closed) set_interest(c, 0u);
  const uint64_t conn = c.id, seq = c.seq;
  pool_.submit(
      [this, r = std::move(req), conn, seq]() mutable { handle(std::move(r), conn, seq); });
}

// On a handler thread.
void Server::handle(Request req, uint64_t conn, uint64_t seq) {
  if (options_.on_request) options_.on_request(req);
  Response res;
  res.target_ = std::make_shared<DeferredTarget>(DeferredTarget{mailbox_, conn, seq});
  Router::Outcome outcome;
  const Handler* handler = router_.find(&req, &outcome);
  if (!handler) {
    res = outcome == Router::Outcome::kWrongMethod
              ? error_response(405, "method " + req.method + " not allowed on " + req.path, "")
              : error_response(404, "no such endpoint", "");
  } else {
    std::string what;
    try {
      (*handler)(req, res);
    } catch (const std::exception& e) {
      what = e.what();
      if (what.empty()) what = "exception";
    } catch (...) {
      what = "unknown exception";
    }
    if (!what.empty()) {
      log::error("http: request " + req.request_id + " (" + req.method + " " + req.path + " from " +
                 req.remote_addr + "): handler failed: " + what);
      Response err = error_response(
          500, "internal error; quote request id " + req.request_id + " when reporting it",
          req.request_id);
      err.set_header("X-Request-Id", req.request_id);
      // An answer promised by suspend() is given now instead.
      if (res.deferred_) return res.deferred_->complete(std::move(err));
      res = std::move(err);
    }
  }
  LoopMessage m;
  m.conn = conn;
  m.seq = seq;
  if (res.deferred_) {
    m.kind = LoopMessage::Kind::kSuspended;
    m.deferred = res.deferred_;
  } else {
    m.kind = LoopMessage::Kind::kResponse;
    m.response = std::move(res);
  }
  mailbox_->post(std::move(m));
}

void Server::on_message(LoopMessage m) {
  auto it = conns_.find(m.conn);
  if (it == conns_.end() || it->second->seq != m.seq) {
    // The client left before the answer; tell whoever will answer.
    if (m.deferred) m.deferred->abandon();
    return;
  }
  Conn& c = *it->second;
  if (m.kind == LoopMessage::Kind::kSuspended) {
    if (c.state == ConnState::kHandling) {  // else: answered already
      c.state = ConnState::kSuspended;
      c.deferred = std::move(m.deferred);
    }
    return;
  }
  if (c.state != ConnState::kHandling && c.state != ConnState::kSuspended) return;
  c.deferred.reset();
  start_write(c, std::move(m.response), c.close_after_write);
}

void Server::start_write(Conn& c, Response res, bool close_after) {
  if (res.status < 0) res.status = 200;
  if (stopping_.load()) close_after = true;
  c.close_after_write = close_after;
  std::string& out = c.out;
  out.clear();
  out.reserve(512);
  out += "HTTP/1.1 " + std::to_string(res.status) + " " + reason(res.status) + "\r\n";
  for (const auto& [k, v] : res.headers) {
    // Framing is the server's: a handler's own would contradict it.
    if (::strcasecmp(k.c_str(), "content-length") == 0 ||
        ::strcasecmp(k.c_str(), "connection") == 0 ||
        ::strcasecmp(k.c_str(), "transfer-encoding") == 0) {
      continue;
    }
    out += k + ": " + v + "\r\n";
  }
  out += "Content-Length: " + std::to_string(res.body.size()) + "\r\n";
  if (close_after) out += "Connection: close\r\n";
  out += "\r\n";
  c.body = c.head_request ? std::string() : std::move(res.body);
  c.out_off = 0;
  c.state = ConnState::kWriting;
  set_deadline(c, clock_.now_ms() + options_.write_timeout_ms);
  flush(c.id);
}

void Server::send_error(Conn& c, int status, const std::string& message) {
  c.head_request = false;
  start_write(c, error_response(status, message, ""), /*close_after=*/true);
}

void Server::flush(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  const size_t total = c.out.size() + c.body.size();
  while (c.out_off < total) {
    // Head and body in one call: the body is never copied behind the head.
    iovec iov[2];
    msghdr msg{};
    msg.msg_iov = iov;
    if (c.out_off < c.out.size()) {
      iov[msg.msg_iovlen++] = {c.out.data() + c.out_off, c.out.size() - c.out_off};
    }
    const size_t body_off = c.out_off > c.out.size() ? c.out_off - c.out.size() : 0;
    if (body_off < c.body.size()) {
      iov[msg.msg_iovlen++] = {c.body.data() + body_off, c.body.size() - body_off};
    }
    const ssize_t n = ::sendmsg(c.fd, &msg, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return set_interest(c, EPOLLOUT);
    return close_conn(id);
  }
  finish_response(id);
}

void Server::release_body(Conn& c) {
  buffered_body_bytes_ -= c.body_bytes;
  c.body_bytes = 0;
}

void Server::finish_response(uint64_t id) {
  Conn& c = *conns_.at(id);
  release_body(c);
  c.out.clear();
  // An idle connection keeps no answer's memory; a head-sized buffer stays
  // for the next answer.
  if (c.out.capacity() > kKeptHeadBytes) c.out.shrink_to_fit();
  c.body = std::string();
  c.out_off = 0;
  if (c.close_after_write) {
    if (c.peer_closed) return close_conn(id);
    return start_linger(c);
  }
  c.state = ConnState::kIdle;
  set_deadline(c, clock_.now_ms() + options_.idle_timeout_ms);
  set_interest(c, EPOLLIN | EPOLLRDHUP);
  // A pipelined request may be buffered already.
  if (c.parser.buffered_bytes() > 0) process(id);
}

void Server::start_linger(Conn& c) {
  ::shutdown(c.fd, SHUT_WR);
  c.state = ConnState::kLingering;
  set_deadline(c, clock_.now_ms() + kLingerMs);
  set_interest(c, EPOLLIN | EPOLLRDHUP);
}

void Server::on_deadline(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  set_deadline(c, 0);
  switch (c.state) {
    case ConnState::kReading:
      return send_error(c, 408,
                        c.parser.request().method.empty()
                            ? "request head not complete within " +
                                  std::to_string(options_.header_timeout_ms) + " ms"
                            : "request body not complete within " +
                                  std::to_string(options_.body_timeout_ms) + " ms");
    case ConnState::kIdle:
    case ConnState::kWriting:
    case ConnState::kLingering:
    case ConnState::kHandling:
    case ConnState::kSuspended:
      return close_conn(id);
  }
}

void Server::set_deadline(Conn& c, int64_t deadline_ms) {
  if (c.deadline) deadlines_.erase({c.deadline, c.id});
  c.deadline = deadline_ms;
  if (deadline_ms) deadlines_.insert({deadline_ms, c.id});
}

void Server::set_interest(Conn& c, uint32_t events) {
  if (c.interest == events) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = c.id;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
  c.interest = events;
}

void Server::close_conn(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  release_body(c);
  set_deadline(c, 0);
  if (c.deferred) c.deferred->abandon();
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  ::close(c.fd);
  auto addr = per_address_.find(c.addr);
  if (addr != per_address_.end() && --addr->second == 0) per_address_.erase(addr);
  conns_.erase(it);
  open_connections_.store(conns_.size());
}

std::string Server::next_request_id() {
  // Random, not a sequence: an id every reply may carry must not tell one
  // environment how many requests the others send. 64 bits from the
  // kernel's CSPRNG; a short read (never expected) falls back to the
  // sequence, which stays unique.
  // Drawn kIdsPerDraw at a time: one syscall per request was a visible
  // share of a small answer's cost.
  if (random_ids_used_ >= random_ids_.size()) {
    random_ids_.resize(kIdsPerDraw);
    const ssize_t n =
        ::getrandom(random_ids_.data(), random_ids_.size() * sizeof(uint64_t), GRND_NONBLOCK);
    random_ids_.resize(n > 0 ? static_cast<size_t>(n) / sizeof(uint64_t) : 0);
    random_ids_used_ = 0;
  }
  uint64_t r = 0;
  if (random_ids_used_ < random_ids_.size()) {
    r = random_ids_[random_ids_used_++];
  } else {
    r = ++request_seq_;
  }
  char id[24];
  std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(r));
  return id;
}

}  // namespace kiln::http
