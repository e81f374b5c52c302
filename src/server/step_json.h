// A step as the native API shows it (docs/cluster.md, "Native API").
#pragma once

#include <cstdint>
#include <string>

#include "server/json_writer.h"
#include "store/job_store.h"

namespace kiln::server {

// Writes `s` as one JSON object. `with_action`: the full ingest
// definition; lists leave it out (it is most of a step's bytes and a page
// holds up to 1,000 steps). now_ms: for the ETA of a running step.
void write_step(JsonWriter& w, const store::Step& s, const std::string& log_file, bool with_action,
                int64_t now_ms);
// The same, as a whole document.
std::string step_text(const store::Step& s, const std::string& log_file, int64_t now_ms);

}  // namespace kiln::server
