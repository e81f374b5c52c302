// A small structured logger: one line per event on stderr,
// "<UTC time> <level> <message>". Thread-safe. Kiln's own messages and GDAL's
// (through raster/gdal_env) share it, so nothing reaches stderr raw.
#pragma once

#include <string>
#include <string_view>

namespace kiln::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

// Sets the minimum level printed. Thread-safe; default kInfo, or the value of
// KILN_LOG_LEVEL (debug|info|warn|error|off) when set at first use.
void set_level(Level level);
Level level();
bool parse_level(std::string_view text, Level* out);

// Writes one line if `level` is enabled. Thread-safe.
void write(Level level, std::string_view message);

inline void debug(std::string_view m) { write(Level::kDebug, m); }
inline void info(std::string_view m) { write(Level::kInfo, m); }
inline void warn(std::string_view m) { write(Level::kWarn, m); }
inline void error(std::string_view m) { write(Level::kError, m); }

}  // namespace kiln::log
