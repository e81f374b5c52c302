// Test-only: where the sample rasters live. data/ in the source tree holds
// the scenes every checkout has (L7_ETMs.tif); the shared sample set
// (/work/shared/data, described in its PROVENANCE.md) may be absent, so tests
// that use it must GTEST_SKIP() when test_data_path() returns "".
#pragma once

#include <filesystem>
#include <string>
#include <system_error>

#ifndef KILN_SOURCE_DIR
#error "KILN_SOURCE_DIR must be defined for test binaries (see CMakeLists.txt)"
#endif

namespace kiln {

// The path of sample raster `name`: the source tree's data/ first, then the
// shared sample set; "" when neither has it.
inline std::string test_data_path(const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path candidates[] = {
      fs::path(KILN_SOURCE_DIR) / "data" / name,
      fs::path("/work/shared/data") / name,
      fs::path(KILN_SOURCE_DIR) / ".." / "shared" / "data" / name,
  };
  for (const fs::path& p : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p.lexically_normal().string();
  }
  return "";
}

}  // namespace kiln
