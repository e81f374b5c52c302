#include "http/mailbox.h"

#include <sys/eventfd.h>
#include <unistd.h>

namespace kiln::http {

Mailbox::Mailbox() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

Mailbox::~Mailbox() {
  if (fd_ >= 0) ::close(fd_);
}

void Mailbox::post(LoopMessage m) {
  bool was_empty = false;
  {
    MutexLock lock(&mu_);
    if (closed_) return;
    was_empty = queue_.empty();
    queue_.push_back(std::move(m));
  }
  // A non-empty queue has a wake-up pending already: take() reads the
  // eventfd before it empties the queue, so whatever is in the queue when
  // it looks was posted after a wake-up it has not consumed, or is taken
  // with this batch.
  if (was_empty) wake();
}

void Mailbox::wake() {
  const uint64_t one = 1;
  // EAGAIN only when the counter is near 2^64: the loop is awake anyway.
  [[maybe_unused]] ssize_t n = ::write(fd_, &one, sizeof one);
}

std::deque<LoopMessage> Mailbox::take() {
  uint64_t count = 0;
  [[maybe_unused]] ssize_t n = ::read(fd_, &count, sizeof count);
  MutexLock lock(&mu_);
  std::deque<LoopMessage> out;
  out.swap(queue_);
  return out;
}

void Mailbox::close() {
  MutexLock lock(&mu_);
  closed_ = true;
  queue_.clear();
}

}  // namespace kiln::http
