// Server: Kiln's HTTP/1.1 server, one epoll loop thread that owns every
// socket plus a fixed pool of handler threads (README.md says why and what
// it promises). A connection costs a file descriptor and a small buffer,
// never a thread, until its request is complete; a request whose answer
// must wait (a long poll) is suspended and costs no thread either.
//
//   http::Server server(options);
//   server.Get("/healthz", [](const http::Request&, http::Response& res) {...});
//   KILN_ASSIGN_OR_RETURN(int port, server.bind("127.0.0.1", 0));
//   server.run();  // until server.stop() from another thread
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "http/deferred.h"
#include "http/handler_pool.h"
#include "http/mailbox.h"
#include "http/message.h"
#include "http/parser.h"
#include "http/router.h"

namespace kiln::http {

struct ServerOptions {
  ParserLimits limits;
  // Threads that run handlers. Handlers block on the job store and on
  // planning; long polls suspend instead. 16 keeps a few slow submits
  // from delaying the rest on a small host (see README.md).
  size_t handler_threads = 16;
  // From accept (a new connection) or from the first byte of a later
  // request until its head is complete; then 408 and close (slow loris).
  int64_t header_timeout_ms = 10'000;
  // From the end of the head until the whole body has arrived.
  int64_t body_timeout_ms = 30'000;
  // A kept-alive connection with no request in progress is closed after this.
  int64_t idle_timeout_ms = 60'000;
  // From the start of a response until the client has taken all of it.
  int64_t write_timeout_ms = 30'000;
  // Open connections in all, and from one peer address. Beyond: the new
  // connection gets 503 (all) or 429 (its address) and is closed. The
  // global cap is also held under RLIMIT_NOFILE minus a reserve.
  size_t max_connections = 10'000;
  size_t max_connections_per_address = 1'024;
  // Request bodies held in memory at once, over all connections: a body is
  // counted (by its Content-Length) from the end of its head until its
  // answer is sent. A body that would go over gets 503 and the connection
  // is closed, so slow bodies on many connections cannot exhaust memory.
  int64_t max_buffered_body_bytes = 256 << 20;
  // The clock for deadlines; nullptr: system_clock().
  const Clock* clock = nullptr;
  // Called on a handler thread for every complete request, before routing.
  std::function<void(const Request&)> on_request;
};

class Server {
 public:
  explicit Server(ServerOptions options);
  // Stops the loop if it runs (stop() then waits for run() to return only
  // if run() is on another thread: call stop() and join it first).
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Routes (router.h). Add them all before run().
  void Get(const std::string& pattern, Handler h) { router_.add("GET", pattern, std::move(h)); }
  void Post(const std::string& pattern, Handler h) { router_.add("POST", pattern, std::move(h)); }
  void Put(const std::string& pattern, Handler h) { router_.add("PUT", pattern, std::move(h)); }
  void Delete(const std::string& pattern, Handler h) {
    router_.add("DELETE", pattern, std::move(h));
  }

  // Raises the RLIMIT_NOFILE soft limit to the hard limit, then binds
  // host:port (port 0: a free one) and listens. Returns the port.
  Result<int> bind(const std::string& host, int port);
  // Serves on the calling thread until stop(); then closes every
  // connection (suspended requests become abandoned) and joins the handler
  // threads. REQUIRES: bind() succeeded. Call once.
  void run();
  // Makes run() return soon. Thread-safe; from any thread, any time.
  void stop();

  // Open client connections now. Thread-safe.
  size_t connections() const { return open_connections_.load(); }
  // The connection cap in force after bind() (max_connections, held under
  // the file descriptor limit).
  size_t max_connections() const { return max_connections_; }

 private:
  struct Conn;
  enum class ConnState;

  void accept_all();
  void refuse(int fd, int status, const std::string& message);
  void on_event(uint64_t id, uint32_t events);
  // Reads what c's socket holds (up to kReadPerEvent); hung_up: epoll said
  // the client shut its side, so read on to the end of its stream.
  void read_some(Conn& c, bool hung_up);
  // Parses what conn buffered; dispatches a complete request. May close c.
  void process(uint64_t id);
  void dispatch(Conn& c);
  void handle(Request req, uint64_t conn, uint64_t seq);
  void on_message(LoopMessage m);
  // Sends `res` on c; close_after: then close (after a short linger).
  void start_write(Conn& c, Response res, bool close_after);
  void send_error(Conn& c, int status, const std::string& message);
  void flush(uint64_t id);
  void finish_response(uint64_t id);
  void start_linger(Conn& c);
  void on_deadline(uint64_t id);
  void set_deadline(Conn& c, int64_t deadline_ms);
  void set_interest(Conn& c, uint32_t events);
  void close_conn(uint64_t id);
  // Gives back what c's body took from max_buffered_body_bytes.
  void release_body(Conn& c);
  std::string next_request_id();

  const ServerOptions options_;
  const Clock& clock_;
  Router router_;
  HandlerPool pool_;
  const std::shared_ptr<Mailbox> mailbox_;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> open_connections_{0};
  size_t max_connections_ = 0;
  int64_t buffered_body_bytes_ = 0;   // loop thread: the bodies counted now
  uint64_t request_seq_ = 0;          // loop thread
  std::vector<uint64_t> random_ids_;  // loop thread: drawn, not yet used from random_ids_used_
  size_t random_ids_used_ = 0;

  // Loop-thread state: no lock, nothing else touches it.
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int spare_fd_ = -1;  // given up to accept-and-close when out of descriptors
  uint64_t next_conn_id_ = 16;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::map<std::string, size_t> per_address_;
  std::set<std::pair<int64_t, uint64_t>> deadlines_;  // (deadline ms, conn id)
};

}  // namespace kiln::http
