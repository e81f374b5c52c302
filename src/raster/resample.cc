#include "raster/resample.h"

#include <string>

namespace kiln {

const char* warp_resample_name(WarpResample r) {
  switch (r) {
    case WarpResample::kNearest:
      return "nearest";
    case WarpResample::kBilinear:
      return "bilinear";
    case WarpResample::kCubic:
      return "cubic";
    case WarpResample::kLanczos:
      return "lanczos";
  }
  return "?";
}

const char* pyramid_resample_name(PyramidResample r) {
  switch (r) {
    case PyramidResample::kAverage:
      return "average";
    case PyramidResample::kMode:
      return "mode";
    case PyramidResample::kMin:
      return "min";
    case PyramidResample::kMax:
      return "max";
    case PyramidResample::kMedian:
      return "median";
    case PyramidResample::kNearest:
      return "nearest";
  }
  return "?";
}

Result<WarpResample> parse_warp_resample(std::string_view n) {
  for (auto r : {WarpResample::kNearest, WarpResample::kBilinear, WarpResample::kCubic,
                 WarpResample::kLanczos}) {
    if (n == warp_resample_name(r)) return r;
  }
  return invalid_argument("unknown resample method '" + std::string(n) +
                          "' (expected nearest, bilinear, cubic or lanczos)");
}

Result<PyramidResample> parse_pyramid_resample(std::string_view n) {
  for (auto r : {PyramidResample::kAverage, PyramidResample::kMode, PyramidResample::kMin,
                 PyramidResample::kMax, PyramidResample::kMedian, PyramidResample::kNearest}) {
    if (n == pyramid_resample_name(r)) return r;
  }
  return invalid_argument("unknown pyramid resample method '" + std::string(n) +
                          "' (expected average, mode, min, max, median or nearest)");
}

GDALResampleAlg to_gdal(WarpResample r) {
  switch (r) {
    case WarpResample::kNearest:
      return GRA_NearestNeighbour;
    case WarpResample::kBilinear:
      return GRA_Bilinear;
    case WarpResample::kCubic:
      return GRA_Cubic;
    case WarpResample::kLanczos:
      return GRA_Lanczos;
  }
  return GRA_NearestNeighbour;
}

int warp_filter_radius(WarpResample r) {
  switch (r) {
    case WarpResample::kNearest:
    case WarpResample::kBilinear:
      return 1;
    case WarpResample::kCubic:
      return 2;
    case WarpResample::kLanczos:
      return 3;
  }
  // Not reached (every enumerator is handled above). The widest kernel's
  // radius errs on the side of reading too much source, never too little.
  return 3;
}

}  // namespace kiln
