// The web console's static files (src/server/console/), embedded into the
// binary at build time: cmake/EmbedConsole.cmake writes console_assets.cc
// with each file's bytes, its Content-Type and a strong ETag from its
// SHA-256, so the server reads no file to serve them.
#pragma once

#include <span>
#include <string_view>

namespace kiln::server {

struct ConsoleAsset {
  std::string_view name;          // file name: "index.html", "console.js"
  std::string_view content_type;  // "text/html; charset=utf-8", ...
  std::string_view etag;          // "\"<16 hex digits of the SHA-256>\""
  std::string_view body;
};

// Every embedded file, sorted by name.
std::span<const ConsoleAsset> console_assets();

}  // namespace kiln::server
