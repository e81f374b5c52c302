#include "common/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "common/mutex.h"

namespace kiln::log {
namespace {

std::atomic<int>& level_storage() {
  static std::atomic<int> level = [] {
    Level l = Level::kInfo;
    if (const char* env = std::getenv("KILN_LOG_LEVEL")) parse_level(env, &l);
    return static_cast<int>(l);
  }();
  return level;
}

const char* level_name(Level l) {
  switch (l) {
    case Level::kDebug:
      return "DEBUG";
    case Level::kInfo:
      return "INFO";
    case Level::kWarn:
      return "WARN";
    case Level::kError:
      return "ERROR";
    case Level::kOff:
      return "OFF";
  }
  return "?";
}

}  // namespace

void set_level(Level l) { level_storage().store(static_cast<int>(l)); }
Level level() { return static_cast<Level>(level_storage().load()); }

bool parse_level(std::string_view t, Level* out) {
  if (t == "debug")
    *out = Level::kDebug;
  else if (t == "info")
    *out = Level::kInfo;
  else if (t == "warn" || t == "warning")
    *out = Level::kWarn;
  else if (t == "error")
    *out = Level::kError;
  else if (t == "off" || t == "quiet")
    *out = Level::kOff;
  else
    return false;
  return true;
}

void write(Level l, std::string_view message) {
  if (static_cast<int>(l) < level_storage().load() || l == Level::kOff) return;
  // Lines from several threads never interleave.
  static Mutex mu;
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  int millis = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  MutexLock lock(&mu);
  std::fprintf(stderr, "%s.%03dZ %-5s %.*s\n", stamp, millis, level_name(l),
               static_cast<int>(message.size()), message.data());
}

}  // namespace kiln::log
