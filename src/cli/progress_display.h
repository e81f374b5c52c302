// Shows an ingest's progress while it runs: a bar on a terminal, JSON lines
// for machines, or nothing.
#pragma once

#include <atomic>
#include <string>
#include <thread>

#include "common/status.h"
#include "ingest/progress.h"

namespace kiln::cli {

enum class ProgressMode { kAuto, kBar, kJson, kNone };

Result<ProgressMode> parse_progress_mode(const std::string& text);

// Starts a thread that renders `progress` on stderr until stop().
class ProgressDisplay {
 public:
  ProgressDisplay(const ingest::Progress& progress, ProgressMode mode);
  ~ProgressDisplay();
  // Renders a final state and joins the thread. Idempotent.
  void stop();

 private:
  void render(bool final);
  const ingest::Progress& progress_;
  ProgressMode mode_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  double start_ = 0;
};

}  // namespace kiln::cli
