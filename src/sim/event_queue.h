// The simulated clock's queue: events ordered by time, and events at the
// same time in the order they were pushed. That tie rule is what makes a
// run deterministic (a heap alone would order ties arbitrarily).
#pragma once

#include <cstdint>
#include <queue>
#include <vector>

namespace kiln::sim {

enum class EventKind : uint8_t {
  kArrival,    // a: index into the workload
  kTaskDone,   // a: task id, b: attempt, node
  kNodeReady,  // node: its bootstrap is over
  kNotice,     // node: a spot interruption notice
  kDeadline,   // a drain or notice deadline: the fleet terminates what is due
  kReconcile,  // an autoscaling round
  kChart,      // the end of a chart bucket
};

struct Event {
  int64_t t_ms = 0;
  EventKind kind = EventKind::kArrival;
  int64_t a = 0;
  int32_t node = -1;
  int32_t b = 0;
  int64_t seq = 0;  // set by push()
};

class EventQueue {
 public:
  void push(Event e) {
    e.seq = next_seq_++;
    heap_.push(e);
  }
  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  // REQUIRES: !empty().
  const Event& top() const { return heap_.top(); }
  Event pop() {
    Event e = heap_.top();
    heap_.pop();
    return e;
  }

 private:
  struct Later {
    bool operator()(const Event& x, const Event& y) const {
      return x.t_ms != y.t_ms ? x.t_ms > y.t_ms : x.seq > y.seq;
    }
  };
  std::priority_queue<Event, std::vector<Event>, Later> heap_;
  int64_t next_seq_ = 0;
};

}  // namespace kiln::sim
