#include "cluster/step_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/log.h"
#include "common/time_format.h"

namespace kiln::cluster {

StepLog::StepLog(std::string logs_dir, const Clock& clock)
    : logs_dir_(std::move(logs_dir)), clock_(clock) {
  if (logs_dir_.empty() || logs_dir_.back() != '/') logs_dir_ += '/';
}

std::string StepLog::path(const std::string& step_id) const {
  // Plain concatenation: a listing asks for a path per step, and building
  // an fs::path each time showed in its profile.
  return logs_dir_ + step_id + ".log";
}

void StepLog::append(const std::string& step_id, const std::string& line) const {
  const std::string file = path(step_id);
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    log::warn("step log " + file + ": cannot open: " + std::strerror(errno));
    return;
  }
  std::string text;
  append_rfc3339(&text, clock_.now_ms());
  text += " kiln-serve: " + line + "\n";
  const ssize_t n = ::write(fd, text.data(), text.size());
  if (n != static_cast<ssize_t>(text.size())) {
    log::warn("step log " + file + ": short write: " + std::strerror(errno));
  }
  ::close(fd);
}

std::string StepLog::task_name(const store::Task& t) {
  return (t.kind == store::TaskKind::kCommit ? std::string("commit task")
                                             : "partition task " + std::to_string(t.index)) +
         " attempt " + std::to_string(t.attempt);
}

void StepLog::requeued(const std::vector<store::Task>& tasks, const std::string& why) const {
  for (const store::Task& t : tasks) {
    append(t.step_id, task_name(t) + " back in the queue: " + why);
  }
}

LogChunk StepLog::read(const std::string& step_id, int64_t offset, int64_t max_bytes) const {
  LogChunk chunk;
  chunk.next_offset = offset;
  if (offset < 0 || max_bytes <= 0) return chunk;
  std::ifstream in(path(step_id), std::ios::binary);
  if (!in) return chunk;
  in.seekg(0, std::ios::end);
  const int64_t size = in.tellg();
  if (offset >= size) return chunk;
  const int64_t n = std::min(size - offset, max_bytes);
  in.seekg(offset);
  chunk.text.resize(static_cast<size_t>(n));
  in.read(chunk.text.data(), n);
  chunk.text.resize(static_cast<size_t>(in.gcount()));
  chunk.next_offset = offset + static_cast<int64_t>(chunk.text.size());
  return chunk;
}

}  // namespace kiln::cluster
