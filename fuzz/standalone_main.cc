// A main() for fuzz targets built without libFuzzer (any compiler): runs
// LLVMFuzzerTestOneInput once over every file named on the command line,
// walking directories, so CI replays the seed corpus and saved crashes with
// the ordinary g++ build.
//
// Usage: <binary> [-min_checked=N] FILE_OR_DIR...
// -min_checked=N fails the replay unless the target's deep checks ran at
// least N times (see kiln_fuzz_checked_count below): a seed corpus
// that no longer parses would otherwise replay green while testing nothing.
// Other flags starting with '-' are libFuzzer's and are ignored.
//
// Exit status: 0 when every input ran, 1 when a path cannot be read, no
// input ran at all (a replay of nothing proves nothing) or -min_checked is
// not met, 2 on bad usage. A finding aborts inside the target; the
// "Running:" line before it names the input, as libFuzzer's own replay does.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
// Optional in a target: how many times its deep checks have run so far (past
// the parser, on what the parser returned).
extern "C" size_t kiln_fuzz_checked_count() __attribute__((weak));

namespace {

namespace fs = std::filesystem;

// Appends `path`, or every regular file below it, to *out (sorted within a
// directory so runs are reproducible). False, with a message, if unreadable.
bool collect(const fs::path& path, std::vector<fs::path>* out) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec) {
    std::fprintf(stderr, "cannot read %s: %s\n", path.c_str(), ec.message().c_str());
    return false;
  }
  if (!fs::is_directory(st)) {
    out->push_back(path);
    return true;
  }
  std::vector<fs::path> found;
  for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file()) found.push_back(it->path());
  }
  if (ec) {
    std::fprintf(stderr, "cannot walk %s: %s\n", path.c_str(), ec.message().c_str());
    return false;
  }
  std::sort(found.begin(), found.end());
  out->insert(out->end(), found.begin(), found.end());
  return true;
}

bool read_file(const fs::path& path, std::vector<uint8_t>* bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  bytes->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s [-min_checked=N] FILE_OR_DIR...\n", argv[0]);
    return 2;
  }
  std::vector<fs::path> inputs;
  bool readable = true;
  size_t min_checked = 0;
  const std::string kMinChecked = "-min_checked=";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind(kMinChecked, 0) == 0) {
      char* end = nullptr;
      const std::string number = arg.substr(kMinChecked.size());
      min_checked = std::strtoull(number.c_str(), &end, 10);
      if (number.empty() || *end != '\0') {
        std::fprintf(stderr, "%s: -min_checked wants a count; got '%s'\n", argv[0], arg.c_str());
        return 2;
      }
      if (kiln_fuzz_checked_count == nullptr) {
        std::fprintf(stderr, "%s: -min_checked: this target does not count its checks\n", argv[0]);
        return 2;
      }
      continue;
    }
    if (arg.size() > 1 && arg[0] == '-') {
      // Lets a libFuzzer command line (-runs=..., -max_len=...) replay here too.
      std::fprintf(stderr, "ignoring libFuzzer flag %s\n", arg.c_str());
      continue;
    }
    readable = collect(arg, &inputs) && readable;
  }

  std::vector<uint8_t> bytes;
  size_t ran = 0;
  for (const fs::path& path : inputs) {
    if (!read_file(path, &bytes)) {
      std::fprintf(stderr, "cannot read %s\n", path.c_str());
      readable = false;
      continue;
    }
    std::fprintf(stderr, "Running: %s\n", path.c_str());
    // data() of an empty vector may be null; libFuzzer never passes null.
    static const uint8_t kEmpty = 0;
    LLVMFuzzerTestOneInput(bytes.empty() ? &kEmpty : bytes.data(), bytes.size());
    ++ran;
  }

  if (kiln_fuzz_checked_count != nullptr) {
    std::printf("ran %zu inputs; the target's deep checks ran %zu times\n", ran,
                kiln_fuzz_checked_count());
  } else {
    std::printf("ran %zu inputs\n", ran);
  }
  if (ran == 0) {
    std::fprintf(stderr, "no input ran: give files or non-empty directories\n");
    return 1;
  }
  if (min_checked > 0 && kiln_fuzz_checked_count() < min_checked) {
    std::fprintf(stderr,
                 "the target's deep checks ran %zu times, fewer than -min_checked=%zu: does "
                 "the seed corpus still parse?\n",
                 kiln_fuzz_checked_count(), min_checked);
    return 1;
  }
  return readable ? 0 : 1;
}
