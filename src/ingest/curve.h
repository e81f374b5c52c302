// Space-filling curves over tile coordinates: the order partitions run in.
#pragma once

#include <cstdint>

namespace kiln::ingest {

// Interleaves the bits of x and y (x in the even bits).
uint64_t morton_index(uint32_t x, uint32_t y);
// Position of (x, y) along a Hilbert curve filling a 2^order square.
uint64_t hilbert_index(int order, uint32_t x, uint32_t y);

}  // namespace kiln::ingest
