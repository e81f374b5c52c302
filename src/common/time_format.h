// Times as people and JSON read them.
#pragma once

#include <cstdint>
#include <string>

namespace kiln {

// Appends epoch_ms as RFC 3339 UTC with milliseconds:
// "2026-12-06T04:17:40.123Z".
void append_rfc3339(std::string* out, int64_t epoch_ms);

}  // namespace kiln
