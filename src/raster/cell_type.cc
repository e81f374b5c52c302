#include "raster/cell_type.h"

#include <cstdint>
#include <limits>

namespace kiln {

GDALDataType to_gdal(CellType t) {
  switch (t) {
    case CellType::kUInt8:
      return GDT_Byte;
    case CellType::kUInt16:
      return GDT_UInt16;
    case CellType::kInt16:
      return GDT_Int16;
    case CellType::kUInt32:
      return GDT_UInt32;
    case CellType::kInt32:
      return GDT_Int32;
    case CellType::kUInt64:
      return GDT_UInt64;
    case CellType::kInt64:
      return GDT_Int64;
    case CellType::kFloat32:
      return GDT_Float32;
    case CellType::kFloat64:
      return GDT_Float64;
  }
  return GDT_Unknown;
}

Result<CellType> cell_type_from_gdal(GDALDataType t) {
  switch (t) {
    case GDT_Byte:
      return CellType::kUInt8;
    case GDT_UInt16:
      return CellType::kUInt16;
    case GDT_Int16:
      return CellType::kInt16;
    case GDT_UInt32:
      return CellType::kUInt32;
    case GDT_Int32:
      return CellType::kInt32;
    case GDT_UInt64:
      return CellType::kUInt64;
    case GDT_Int64:
      return CellType::kInt64;
    case GDT_Float32:
      return CellType::kFloat32;
    case GDT_Float64:
      return CellType::kFloat64;
    default:
      return input_error(std::string("pixel type ") + GDALGetDataTypeName(t) +
                         " is not supported (complex data is not imagery)");
  }
}

bool is_float(CellType t) { return t == CellType::kFloat32 || t == CellType::kFloat64; }

const char* cell_type_name(CellType t) {
  switch (t) {
    case CellType::kUInt8:
      return "uint8";
    case CellType::kUInt16:
      return "uint16";
    case CellType::kInt16:
      return "int16";
    case CellType::kUInt32:
      return "uint32";
    case CellType::kInt32:
      return "int32";
    case CellType::kUInt64:
      return "uint64";
    case CellType::kInt64:
      return "int64";
    case CellType::kFloat32:
      return "float32";
    case CellType::kFloat64:
      return "float64";
  }
  return "?";
}

Result<CellType> parse_cell_type(std::string_view name) {
  static constexpr CellType kAll[] = {CellType::kUInt8,  CellType::kUInt16,  CellType::kInt16,
                                      CellType::kUInt32, CellType::kInt32,   CellType::kUInt64,
                                      CellType::kInt64,  CellType::kFloat32, CellType::kFloat64};
  if (name == "byte") return CellType::kUInt8;
  for (CellType t : kAll) {
    if (name == cell_type_name(t)) return t;
  }
  return invalid_argument("unknown cell type '" + std::string(name) +
                          "' (expected uint8, uint16, int16, uint32, int32, uint64, int64, "
                          "float32 or float64)");
}

template <typename T>
static double lo() {
  return static_cast<double>(std::numeric_limits<T>::lowest());
}
template <typename T>
static double hi() {
  return static_cast<double>(std::numeric_limits<T>::max());
}

double cell_min(CellType t) {
  switch (t) {
    case CellType::kUInt8:
      return lo<uint8_t>();
    case CellType::kUInt16:
      return lo<uint16_t>();
    case CellType::kInt16:
      return lo<int16_t>();
    case CellType::kUInt32:
      return lo<uint32_t>();
    case CellType::kInt32:
      return lo<int32_t>();
    case CellType::kUInt64:
      return lo<uint64_t>();
    case CellType::kInt64:
      return lo<int64_t>();
    case CellType::kFloat32:
      return lo<float>();
    case CellType::kFloat64:
      return lo<double>();
  }
  return 0;
}

double cell_max(CellType t) {
  switch (t) {
    case CellType::kUInt8:
      return hi<uint8_t>();
    case CellType::kUInt16:
      return hi<uint16_t>();
    case CellType::kInt16:
      return hi<int16_t>();
    case CellType::kUInt32:
      return hi<uint32_t>();
    case CellType::kInt32:
      return hi<int32_t>();
    case CellType::kUInt64:
      return hi<uint64_t>();
    case CellType::kInt64:
      return hi<int64_t>();
    case CellType::kFloat32:
      return hi<float>();
    case CellType::kFloat64:
      return hi<double>();
  }
  return 0;
}

}  // namespace kiln
