// Progress: counters an ingest updates as it goes and anyone may read
// (the CLI's progress bar, later the cluster's step progress). Lock-free.
#pragma once

#include <atomic>
#include <cstdint>

namespace kiln::ingest {

struct Progress {
  std::atomic<int64_t> tiles_total{0};  // planned; empty tiles count as done when skipped
  std::atomic<int64_t> tiles_done{0};
  std::atomic<int64_t> tiles_written{0};
  std::atomic<int64_t> partitions_total{0};
  std::atomic<int64_t> partitions_done{0};
  std::atomic<uint64_t> bytes_read{0};     // decoded source bytes
  std::atomic<uint64_t> bytes_written{0};  // encoded tile bytes
};

}  // namespace kiln::ingest
