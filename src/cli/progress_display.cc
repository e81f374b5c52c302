#include "cli/progress_display.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace kiln::cli {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string clock_text(double seconds) {
  if (seconds < 0 || seconds > 359999) return "--:--";
  int s = static_cast<int>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%02d:%02d", s / 60, s % 60);
  return buf;
}

}  // namespace

Result<ProgressMode> parse_progress_mode(const std::string& t) {
  if (t == "auto") return ProgressMode::kAuto;
  if (t == "bar") return ProgressMode::kBar;
  if (t == "json") return ProgressMode::kJson;
  if (t == "none") return ProgressMode::kNone;
  return invalid_argument("--progress: expected auto, bar, json or none; got '" + t + "'");
}

ProgressDisplay::ProgressDisplay(const ingest::Progress& progress, ProgressMode mode)
    : progress_(progress), mode_(mode), start_(now_seconds()) {
  if (mode_ == ProgressMode::kAuto)
    mode_ = isatty(STDERR_FILENO) ? ProgressMode::kBar : ProgressMode::kNone;
  if (mode_ == ProgressMode::kNone) return;
  thread_ = std::thread([this] {
    const auto period = std::chrono::milliseconds(mode_ == ProgressMode::kBar ? 200 : 1000);
    while (!stop_.load()) {
      std::this_thread::sleep_for(period);
      if (!stop_.load()) render(false);
    }
  });
}

ProgressDisplay::~ProgressDisplay() { stop(); }

void ProgressDisplay::stop() {
  if (stop_.exchange(true)) return;
  if (thread_.joinable()) thread_.join();
  if (mode_ != ProgressMode::kNone) render(true);
}

void ProgressDisplay::render(bool final) {
  const int64_t done = progress_.tiles_done.load(), total = progress_.tiles_total.load();
  const double elapsed = now_seconds() - start_;
  const double rate = elapsed > 0 ? done / elapsed : 0;
  const double eta = rate > 0 && total > done ? (total - done) / rate : 0;
  if (mode_ == ProgressMode::kJson) {
    nlohmann::json j = {{"event", final ? "done" : "progress"},
                        {"tiles_done", done},
                        {"tiles_total", total},
                        {"tiles_written", progress_.tiles_written.load()},
                        {"partitions_done", progress_.partitions_done.load()},
                        {"partitions_total", progress_.partitions_total.load()},
                        {"bytes_read", progress_.bytes_read.load()},
                        {"bytes_written", progress_.bytes_written.load()},
                        {"elapsed_s", elapsed},
                        {"tiles_per_s", rate},
                        {"eta_s", eta}};
    std::fprintf(stderr, "%s\n", j.dump().c_str());
    std::fflush(stderr);
    return;
  }
  constexpr int kWidth = 30;
  int filled = total > 0 ? static_cast<int>(kWidth * std::min<int64_t>(done, total) / total) : 0;
  std::string bar(filled, '#');
  bar.append(kWidth - filled, ' ');
  std::fprintf(stderr, "\r[%s] %lld/%lld tiles  %.0f tiles/s  ETA %s   ", bar.c_str(),
               static_cast<long long>(done), static_cast<long long>(total), rate,
               clock_text(eta).c_str());
  if (final) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

}  // namespace kiln::cli
