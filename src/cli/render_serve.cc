#include "cli/render_serve.h"

#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <string>
#include <string_view>

#include "cli/exit_codes.h"
#include "common/process.h"
#include "render/stored_tile.h"

namespace kiln::cli {
namespace {

// A request line names a path and a query of at most 4 KiB.
constexpr size_t kMaxLine = 64 * 1024;

extern "C" void on_render_signal(int) { ::_exit(kExitOk); }

bool write_all(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(STDOUT_FILENO, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads stdin a buffer at a time; next() returns one line without its
// newline, false at the end of input or for a line over kMaxLine.
class LineReader {
 public:
  bool next(std::string* line) {
    for (;;) {
      const size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        line->assign(buf_, 0, nl);
        buf_.erase(0, nl + 1);
        return true;
      }
      if (buf_.size() > kMaxLine) return false;
      char chunk[16 * 1024];
      const ssize_t n = ::read(STDIN_FILENO, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  std::string buf_;
};

}  // namespace

int serve_renders(int max_requests) {
  os::stop_with_parent_or_signal(on_render_signal);
  // Each render allocates a few MiB (decoded bands, doubles, the image)
  // and frees them. glibc would hand them back to the kernel (mmap'd
  // blocks, a trimmed heap) and fault them in again on the next request:
  // half the renderer's time. Kept instead.
  ::mallopt(M_MMAP_THRESHOLD, 64 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
  render::StoredTileRenderer renderer;
  LineReader in;
  std::string line;
  for (int served = 0; max_requests <= 0 || served < max_requests; ++served) {
    if (!in.next(&line)) return kExitOk;
    Result<render::StoredTileRequest> req = render::decode_render_request(line);
    Result<std::string> image =
        req.is_ok() ? renderer.render(*req) : Result<std::string>(req.status());
    const bool ok = image.is_ok();
    const std::string header =
        render::encode_render_reply(ok ? Status::ok() : image.status(), ok ? image->size() : 0);
    if (!write_all(header) || (ok && !write_all(*image))) return kExitOk;  // the server left
  }
  return kExitOk;
}

}  // namespace kiln::cli
