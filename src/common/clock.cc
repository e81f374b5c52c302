#include "common/clock.h"

#include <algorithm>
#include <thread>

namespace kiln {
namespace {

class SystemClock final : public Clock {
 public:
  int64_t now_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  std::chrono::milliseconds real_wait(int64_t deadline_ms) const override {
    return std::chrono::milliseconds(std::max<int64_t>(0, deadline_ms - now_ms()));
  }
};

// A ManualClock's waiter re-reads the clock this often (real time).
constexpr std::chrono::milliseconds kManualSlice{2};

}  // namespace

void Clock::sleep_until(int64_t deadline_ms) const {
  for (;;) {
    const auto wait = real_wait(deadline_ms);
    if (now_ms() >= deadline_ms) return;
    std::this_thread::sleep_for(std::max(wait, std::chrono::milliseconds(1)));
  }
}

Clock& system_clock() {
  static SystemClock clock;
  return clock;
}

std::chrono::milliseconds ManualClock::real_wait(int64_t deadline_ms) const {
  return now_ms() >= deadline_ms ? std::chrono::milliseconds(0) : kManualSlice;
}

}  // namespace kiln
