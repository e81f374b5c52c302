// The elastic part of kiln.toml (and of `kiln simulate` scenario files,
// which use the same tables): [[group]] instance groups and the
// [autoscaling] table with its [[autoscaling.rule]] and
// [[autoscaling.target]] policies. Errors name the key
// ("group[1].max_nodes: must be ...").
#pragma once

#include <toml++/toml.h>

#include "common/status.h"
#include "elastic/autoscaler.h"

namespace kiln::config {

// The core group a config without [[group]] tables gets: the fixed pool of
// the [executor] table (nodes x slots, on demand, price 0).
struct CoreDefaults {
  int nodes = 1;
  int slots_per_node = 2;
};

// Reads [[group]] and [autoscaling] from the document's root (other tables
// are the caller's) and validates the result.
Result<elastic::AutoscalerConfig> parse_autoscaler_config(const toml::table& root,
                                                          const CoreDefaults& core = {});

}  // namespace kiln::config
