// Test-only: where the sample rasters live. Tests read only inside the
// repository: data/ holds the scenes `make data` (scripts/fetch-data.sh)
// unpacks from Debian's r-cran-stars package (L7_ETMs.tif...), tests/data/
// the small files committed with the tests (origin and licence of each in
// tests/data/PROVENANCE.md). A missing file fails the test; it never skips.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <system_error>

#ifndef KILN_SOURCE_DIR
#error "KILN_SOURCE_DIR must be defined for test binaries (see CMakeLists.txt)"
#endif

namespace kiln {

// The path of sample raster `name` in data/ or tests/data/ of the source
// tree. When neither has it, adds a (non-fatal) GoogleTest failure that says
// to run `make data` and returns the data/ path, so the test goes on to fail
// where it opens the file rather than skipping.
inline std::string test_data_path(const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path fetched = fs::path(KILN_SOURCE_DIR) / "data" / name;
  const fs::path committed = fs::path(KILN_SOURCE_DIR) / "tests" / "data" / name;
  for (const fs::path& p : {fetched, committed}) {
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p.lexically_normal().string();
  }
  ADD_FAILURE() << "sample raster " << name << " is in neither " << fetched.parent_path().string()
                << " nor " << committed.parent_path().string()
                << ": run `make data` (scripts/fetch-data.sh) to fetch data/";
  return fetched.lexically_normal().string();
}

}  // namespace kiln
