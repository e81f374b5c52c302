// Space-filling curves: Morton (Z-order) bit interleaving and the Hilbert
// curve, checked by their defining properties.
#include "ingest/curve.h"

#include <cstdint>
#include <cstdlib>
#include <set>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace kiln::ingest {
namespace {

TEST(Morton, InterleavesXInTheEvenBits) {
  EXPECT_EQ(morton_index(0, 0), 0u);
  EXPECT_EQ(morton_index(1, 0), 1u);
  EXPECT_EQ(morton_index(0, 1), 2u);
  EXPECT_EQ(morton_index(1, 1), 3u);
  EXPECT_EQ(morton_index(2, 0), 4u);
  EXPECT_EQ(morton_index(0, 2), 8u);
  EXPECT_EQ(morton_index(3, 5), 0b100111u);  // x=011, y=101 -> y2x2y1x1y0x0 = 1 0 0 1 1 1
  // Full 32-bit coordinates: all 64 bits in use, no overlap.
  EXPECT_EQ(morton_index(0xffffffffu, 0), 0x5555555555555555ULL);
  EXPECT_EQ(morton_index(0, 0xffffffffu), 0xaaaaaaaaaaaaaaaaULL);
  EXPECT_EQ(morton_index(0xffffffffu, 0xffffffffu), ~uint64_t{0});
}

TEST(Morton, QuadrantsComeInBlocks) {
  // On an 8x8 grid each 4x4 quadrant occupies one contiguous quarter of the
  // index range, in order NW, NE, SW, SE (y down).
  for (uint32_t y = 0; y < 8; ++y) {
    for (uint32_t x = 0; x < 8; ++x) {
      const uint64_t q = morton_index(x, y) / 16;
      EXPECT_EQ(q, (x / 4) + 2 * (y / 4)) << x << "," << y;
    }
  }
}

TEST(Hilbert, OrderOneVisitsTheFourCellsInOrder) {
  EXPECT_EQ(hilbert_index(1, 0, 0), 0u);
  EXPECT_EQ(hilbert_index(1, 0, 1), 1u);
  EXPECT_EQ(hilbert_index(1, 1, 1), 2u);
  EXPECT_EQ(hilbert_index(1, 1, 0), 3u);
}

// The defining properties on a 2^order square: every index 0..n^2-1 is hit
// exactly once, and consecutive indices are 4-neighbours.
void check_hilbert(int order) {
  const uint32_t n = 1u << order;
  std::vector<std::pair<uint32_t, uint32_t>> at(static_cast<size_t>(n) * n, {n, n});
  for (uint32_t y = 0; y < n; ++y) {
    for (uint32_t x = 0; x < n; ++x) {
      const uint64_t d = hilbert_index(order, x, y);
      ASSERT_LT(d, static_cast<uint64_t>(n) * n) << "order " << order << " at " << x << "," << y;
      ASSERT_EQ(at[d].first, n) << "order " << order << ": index " << d << " hit twice";
      at[d] = {x, y};
    }
  }
  for (size_t d = 1; d < at.size(); ++d) {
    const int dx = std::abs(static_cast<int>(at[d].first) - static_cast<int>(at[d - 1].first));
    const int dy = std::abs(static_cast<int>(at[d].second) - static_cast<int>(at[d - 1].second));
    EXPECT_EQ(dx + dy, 1) << "order " << order << ": step " << d - 1 << "->" << d << " jumps from ("
                          << at[d - 1].first << "," << at[d - 1].second << ") to (" << at[d].first
                          << "," << at[d].second << ")";
  }
  // The curve starts at the origin and ends at the corner (n-1, 0).
  EXPECT_EQ(at.front(), std::make_pair(0u, 0u));
  EXPECT_EQ(at.back(), std::make_pair(n - 1, 0u));
}

TEST(Hilbert, IsABijectionWithNeighbouringSteps) {
  check_hilbert(1);
  check_hilbert(2);
  check_hilbert(4);  // 16 x 16
  check_hilbert(6);
}

TEST(Hilbert, EachQuadrantIsOneQuarterOfTheCurve) {
  // Locality: a 2^(k-1) quadrant of a 2^k square is one contiguous quarter.
  constexpr int kOrder = 4;
  constexpr uint32_t kN = 1u << kOrder;
  std::set<uint64_t> quarters[2][2];
  for (uint32_t y = 0; y < kN; ++y)
    for (uint32_t x = 0; x < kN; ++x)
      quarters[x / (kN / 2)][y / (kN / 2)].insert(hilbert_index(kOrder, x, y) / (kN * kN / 4));
  for (auto& row : quarters)
    for (auto& q : row) EXPECT_EQ(q.size(), 1u);
}

}  // namespace
}  // namespace kiln::ingest
