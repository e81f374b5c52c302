// Random identifiers for steps and workers. Internal to src/store.
#pragma once

#include <string>

#include "common/status.h"

namespace kiln::store::internal {

// `prefix` followed by `length` characters of [0-9A-Z], drawn uniformly from
// the kernel's CSPRNG (getrandom(2)), so ids are unguessable: an id from
// another environment cannot be found by counting. Thread-safe. Fails
// (kInternal) only if the kernel refuses randomness.
Result<std::string> random_id(const std::string& prefix, int length);

// "s-" + 13 characters: EMR's step id shape.
inline Result<std::string> new_step_id() { return random_id("s-", 13); }
// "w-" + 12 characters.
inline Result<std::string> new_worker_id() { return random_id("w-", 12); }

}  // namespace kiln::store::internal
