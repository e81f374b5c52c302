// Deferred: the answer to a suspended request (Response::suspend()), given
// later from any thread. The server's loop thread writes it; nothing waits
// for it in between, so a long poll costs a connection, not a thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "http/message.h"

namespace kiln::http {

class Mailbox;

// Where a suspended request's answer goes: the server's loop and the
// request's connection and sequence number on it.
struct DeferredTarget {
  std::weak_ptr<Mailbox> mailbox;
  uint64_t conn = 0;
  uint64_t seq = 0;
};

class Deferred {
 public:
  explicit Deferred(DeferredTarget target) : target_(std::move(target)) {}

  // Answers the request with `res` (status -1 becomes 200). Thread-safe and
  // cheap: it hands `res` to the loop thread. The first call wins; later
  // ones, and calls after the client left or the server stopped, do nothing.
  void complete(Response res);
  bool completed() const { return done_.load(); }
  // True once the answer would go nowhere: the client closed the
  // connection or the server stopped. Whoever holds this object may drop
  // it then (a waiter list prunes abandoned entries). Thread-safe.
  bool abandoned() const { return abandoned_.load(); }

  // The server marks the request abandoned; not for handlers.
  void abandon() { abandoned_.store(true); }

 private:
  const DeferredTarget target_;
  std::atomic<bool> done_{false};
  std::atomic<bool> abandoned_{false};
};

}  // namespace kiln::http
