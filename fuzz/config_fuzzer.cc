// Fuzz target for kiln.toml (config/server_config.h): parse_config over
// TOML text, every table and key the server reads at start-up.
//
// The config is the operator's, not a tenant's, but the parser is the
// first thing `kiln serve` runs and a file edited by hand is as hostile to
// it as any input: a malformed one must be refused with a message naming
// the key, never crash the server or start it with a half-read config.
//
// Refusals are expected. What is a finding: a crash or sanitizer report, an
// exception escaping (toml++ throws on malformed TOML; parse_config must
// catch it), a refusal without a message, and an accepted config that
// breaks what the rest of the server relies on: absolute state_dir and
// catalogs, named and distinct environments that environment() finds, and
// a second parse of the same text that answers differently.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "config/server_config.h"

namespace {

using kiln::config::ServerConfig;

size_t g_checked = 0;  // configs accepted

[[noreturn]] void fail(const std::string& what, std::string_view input) {
  std::fprintf(stderr, "kiln_fuzz_config: %s\n  input:\n%.*s\n", what.c_str(),
               static_cast<int>(input.size()), input.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto parsed = kiln::config::parse_config(text, "/etc/kiln");
  const auto again = kiln::config::parse_config(text, "/etc/kiln");
  if (parsed.is_ok() != again.is_ok()) fail("two parses of the same text disagree", text);
  if (!parsed.is_ok()) {
    if (parsed.status().message().empty()) fail("refused without a message", text);
    if (parsed.status().message() != again.status().message())
      fail("two refusals of the same text differ", text);
    return 0;
  }
  const ServerConfig& c = *parsed;
  if (c.state_dir.empty() || c.state_dir.front() != '/')
    fail("state_dir is not absolute: " + c.state_dir, text);
  std::set<std::string> names;
  for (const auto& env : c.environments) {
    if (env.name.empty()) fail("an environment without a name", text);
    if (!names.insert(env.name).second) fail("environment " + env.name + " twice", text);
    if (c.environment(env.name) != &env) fail("environment() misses " + env.name, text);
    if (env.catalog.empty() || env.catalog.front() != '/')
      fail("environment " + env.name + ": catalog not absolute: " + env.catalog, text);
  }
  ++g_checked;
  return 0;
}

extern "C" size_t kiln_fuzz_checked_count() { return g_checked; }
