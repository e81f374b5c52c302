// Fuzz target for the ingest-definition parsers: Kiln's own format and
// Raster Foundry's, both behind kiln::ingest::parse_definition.
//
// Bad input is expected and must come back as a Status, so a refused input
// is not a finding. What is a finding: a crash or sanitizer report (libFuzzer
// and ASan/UBSan see those), an exception escaping the parser (it terminates
// the process), and a definition that does not survive its own canonical
// form, because the catalog stores to_json(def) as text in the layer's
// metadata and that text must describe the same ingest.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "common/status.h"
#include "ingest/definition.h"

namespace {

using kiln::Result;
using kiln::Status;
using kiln::ingest::IngestDefinition;
using nlohmann::json;

// Definitions that went through every check; standalone_main.cc reports it
// so a replay in which nothing parses any more fails instead of passing.
size_t g_checked = 0;

// JSON text for failure reports; cannot throw (invalid UTF-8 is replaced).
std::string printable(const json& j) {
  return j.dump(-1, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace);
}

// Reports a broken invariant and aborts, so libFuzzer saves the input.
[[noreturn]] void fail(const std::string& what, const json& canonical) {
  std::fprintf(stderr, "kiln_fuzz_definition: %s\n  canonical: %s\n", what.c_str(),
               printable(canonical).c_str());
  std::abort();
}

void check_definition(const IngestDefinition& def) {
  const json canonical = kiln::ingest::to_json(def);

  // parse_definition validates what it returns, so validate must agree.
  const Status valid = kiln::ingest::validate(def);
  if (!valid.is_ok()) {
    fail("validate() refuses a definition parse_definition returned: " + valid.message(),
         canonical);
  }

  const Result<std::vector<IngestDefinition>> again = kiln::ingest::parse_definition(canonical);
  if (!again.is_ok()) {
    fail("parse_definition(to_json(d)) fails: " + again.status().message(), canonical);
  }
  if (again->size() != 1) {
    fail("parse_definition(to_json(d)) gives " + std::to_string(again->size()) +
             " definitions, not 1",
         canonical);
  }
  const json canonical_again = kiln::ingest::to_json(again->front());
  if (canonical_again != canonical) {
    fail("to_json(parse_definition(to_json(d))) differs: " + printable(canonical_again), canonical);
  }

  // The same through text, as the catalog stores it: dump() throws on
  // strings that are not UTF-8, and NaN or infinities would come back null.
  std::string text;
  try {
    text = canonical.dump();
  } catch (const json::exception& e) {
    fail(std::string("to_json(d).dump() throws: ") + e.what(), canonical);
  }
  const json reread = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (reread.is_discarded() || reread != canonical) {
    fail("to_json(d) does not survive dump() and parse(): " + text, canonical);
  }
  ++g_checked;
}

void parse_and_check(const json& doc) {
  const Result<std::vector<IngestDefinition>> defs = kiln::ingest::parse_definition(doc);
  if (!defs.is_ok()) return;  // refused with a message: the expected outcome for bad input
  for (const IngestDefinition& def : *defs) check_definition(def);
}

}  // namespace

// Number of definitions checked so far in this process (for replays).
extern "C" size_t kiln_fuzz_checked_count() { return g_checked; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The Raster Foundry reader logs every unknown field; millions of inputs
  // would drown the fuzzer's own output. KILN_LOG_LEVEL still wins.
  static const bool kQuiet = [] {
    if (std::getenv("KILN_LOG_LEVEL") == nullptr) kiln::log::set_level(kiln::log::Level::kOff);
    return true;
  }();
  (void)kQuiet;

  const json doc = json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return 0;  // not JSON: nlohmann's business, not Kiln's

  parse_and_check(doc);
  // tests/definitions/canonical/ holds arrays of canonical definitions; their
  // elements are the richest seeds (every field spelt out), so an array is
  // also taken as a list of documents.
  if (doc.is_array()) {
    for (const json& element : doc) parse_and_check(element);
  }
  return 0;
}
