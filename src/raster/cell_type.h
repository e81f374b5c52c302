// CellType: the pixel types a layer can hold, and their GDAL equivalents.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <gdal.h>

#include "common/status.h"

namespace kiln {

// Every real GDAL 3.6 data type. (Signed 8-bit arrives as GDT_Int8 only in
// GDAL 3.7; complex types are refused as not imagery.)
enum class CellType {
  kUInt8,
  kUInt16,
  kInt16,
  kUInt32,
  kInt32,
  kUInt64,
  kInt64,
  kFloat32,
  kFloat64
};

GDALDataType to_gdal(CellType t);
// Returns the CellType for a GDAL type, or kInputError for complex/unknown.
Result<CellType> cell_type_from_gdal(GDALDataType t);
// Bytes per cell. Inline: it sits in per-pixel address arithmetic.
constexpr size_t cell_bytes(CellType t) {
  switch (t) {
    case CellType::kUInt8:
      return 1;
    case CellType::kUInt16:
    case CellType::kInt16:
      return 2;
    case CellType::kUInt32:
    case CellType::kInt32:
    case CellType::kFloat32:
      return 4;
    case CellType::kUInt64:
    case CellType::kInt64:
    case CellType::kFloat64:
      return 8;
  }
  return 1;
}
bool is_float(CellType t);
// Lower-case name: "uint8", "uint16", ..., "float64".
const char* cell_type_name(CellType t);
// Parses a name as cell_type_name() prints it ("byte" is accepted for uint8).
Result<CellType> parse_cell_type(std::string_view name);
// Smallest/largest representable value, as double.
double cell_min(CellType t);
double cell_max(CellType t);

}  // namespace kiln
