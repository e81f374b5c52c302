// Clock: where code that schedules, times out or waits reads the time, so
// tests drive it instead of sleeping. Production code takes a `Clock&` (or a
// pointer) and is given system_clock(); tests give a ManualClock and
// advance() it.
//
// Times are milliseconds since the Unix epoch, the unit the job store
// records. The system clock's now_ms() is the wall clock; waits against it
// use the steady clock for their length, so a wall-clock step does not
// stretch a timeout.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace kiln {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch.
  virtual int64_t now_ms() const = 0;
  // How long a waiting thread should block in real time before it looks at
  // now_ms() again, waiting for deadline_ms (0 if it has passed).
  virtual std::chrono::milliseconds real_wait(int64_t deadline_ms) const = 0;
  // Blocks until now_ms() >= deadline_ms.
  void sleep_until(int64_t deadline_ms) const;
  void sleep_for(int64_t ms) const { sleep_until(now_ms() + ms); }
};

// The wall clock. Thread-safe; one shared instance.
Clock& system_clock();

// A clock that moves only when told to. Thread-safe: a test thread
// advances it while the code under test waits on it. Waits against it block
// in short real slices (real_wait), so they notice an advance promptly.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  int64_t now_ms() const override { return now_.load(); }
  std::chrono::milliseconds real_wait(int64_t deadline_ms) const override;
  void advance(int64_t ms) { now_ += ms; }
  void set(int64_t ms) { now_ = ms; }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace kiln
