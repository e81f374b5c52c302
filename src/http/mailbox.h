// Mailbox: how handler threads and Deferred::complete hand finished
// responses to the server's loop thread. A queue under a mutex plus an
// eventfd the loop polls with its sockets. Internal to src/http.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>

#include "common/mutex.h"
#include "http/deferred.h"
#include "http/message.h"

namespace kiln::http {

struct LoopMessage {
  enum class Kind {
    kResponse,   // `response` answers request `seq` on connection `conn`
    kSuspended,  // the handler of `seq` suspended it; `deferred` will answer
  };
  Kind kind = Kind::kResponse;
  uint64_t conn = 0;
  uint64_t seq = 0;
  Response response;
  std::shared_ptr<Deferred> deferred;
};

class Mailbox {
 public:
  // Opens the eventfd; ok() says whether that worked.
  Mailbox();
  ~Mailbox();
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  bool ok() const { return fd_ >= 0; }
  // The eventfd: readable while messages wait. For the loop's epoll set.
  int fd() const { return fd_; }

  // Queues `m` and wakes the loop. Thread-safe; dropped after close().
  void post(LoopMessage m) EXCLUDES(mu_);
  // Wakes the loop without a message (stop()). Thread-safe.
  void wake();
  // Everything queued so far, oldest first; resets the eventfd. Loop only.
  std::deque<LoopMessage> take() EXCLUDES(mu_);
  // Later posts are dropped (the loop has stopped). Thread-safe.
  void close() EXCLUDES(mu_);

 private:
  int fd_ = -1;
  Mutex mu_;
  std::deque<LoopMessage> queue_ GUARDED_BY(mu_);
  bool closed_ GUARDED_BY(mu_) = false;
};

}  // namespace kiln::http
