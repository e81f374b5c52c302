#include "http/mailbox.h"

#include <sys/eventfd.h>
#include <unistd.h>

namespace kiln::http {

Mailbox::Mailbox() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

Mailbox::~Mailbox() {
  if (fd_ >= 0) ::close(fd_);
}

void Mailbox::post(LoopMessage m) {
  {
    MutexLock lock(&mu_);
    if (closed_) return;
    queue_.push_back(std::move(m));
  }
  wake();
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
