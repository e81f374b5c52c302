#include "common/time_format.h"

#include <ctime>

namespace kiln {
namespace {

void append_digits(std::string* out, int v, int width) {
  char buf[8];
  for (int i = width - 1; i >= 0; --i) {
    buf[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  out->append(buf, static_cast<size_t>(width));
}

}  // namespace

void append_rfc3339(std::string* out, int64_t epoch_ms) {
  const std::time_t secs = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  append_digits(out, tm.tm_year + 1900, 4);
  out->push_back('-');
  append_digits(out, tm.tm_mon + 1, 2);
  out->push_back('-');
  append_digits(out, tm.tm_mday, 2);
  out->push_back('T');
  append_digits(out, tm.tm_hour, 2);
  out->push_back(':');
  append_digits(out, tm.tm_min, 2);
  out->push_back(':');
  append_digits(out, tm.tm_sec, 2);
  out->push_back('.');
  append_digits(out, static_cast<int>(epoch_ms % 1000), 3);
  out->push_back('Z');
}

}  // namespace kiln
