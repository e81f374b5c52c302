#include "ingest/checksum.h"

#include <memory>
#include <vector>

#include <cpl_vsi.h>
#include <openssl/evp.h>

namespace kiln::ingest {

bool is_remote_name(const std::string& uri) {
  for (const char* remote : {"/vsicurl", "/vsis3", "/vsigs", "/vsiaz", "/vsiadls", "/vsioss",
                             "/vsiswift", "/vsiwebhdfs", "/vsihdfs"}) {
    if (uri.find(remote) != std::string::npos) return true;
  }
  return false;
}

std::optional<std::string> source_sha256(const std::string& uri) {
  if (is_remote_name(uri)) return std::nullopt;
  VSILFILE* f = VSIFOpenL(uri.c_str(), "rb");
  if (!f) return std::nullopt;
  std::unique_ptr<VSILFILE, decltype(&VSIFCloseL)> closer(f, &VSIFCloseL);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<unsigned char> buf(1 << 20);
  size_t n;
  while ((n = VSIFReadL(buf.data(), 1, buf.size(), f)) > 0)
    EVP_DigestUpdate(ctx.get(), buf.data(), n);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex += kHex[md[i] >> 4];
    hex += kHex[md[i] & 15];
  }
  return hex;
}

}  // namespace kiln::ingest
