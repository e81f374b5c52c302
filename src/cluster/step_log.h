// StepLog: each step's log file, <state_dir>/logs/<step id>.log. The core
// appends one timestamped line per event ("kiln-serve: ..."); task
// processes append their own lines to the same file (O_APPEND: whole lines
// interleave). Thread-safe: every call opens, writes and closes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "store/job_store.h"

namespace kiln::cluster {

struct LogChunk {
  std::string text;
  int64_t next_offset = 0;  // where the next read continues
};

class StepLog {
 public:
  // `logs_dir` must exist.
  StepLog(std::string logs_dir, const Clock& clock);

  std::string path(const std::string& step_id) const;
  // "partition task 3 attempt 1" / "commit task attempt 2": how the logs
  // name a task.
  static std::string task_name(const store::Task& t);
  // Logs, in each task's step log, that its attempt went back to the
  // queue and why ("lease lapsed", "worker w-... left").
  void requeued(const std::vector<store::Task>& tasks, const std::string& why) const;
  // Appends "<RFC 3339 time> kiln-serve: <line>". A log that cannot be
  // written is reported once per call on the server's own log, never to
  // the caller: a step does not fail because its log did.
  void append(const std::string& step_id, const std::string& line) const;
  // Up to max_bytes from `offset` (an empty chunk at or past the end; a log
  // not written yet reads as empty).
  LogChunk read(const std::string& step_id, int64_t offset, int64_t max_bytes) const;

 private:
  std::string logs_dir_;  // ends with '/'
  const Clock& clock_;
};

}  // namespace kiln::cluster
