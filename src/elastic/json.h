// JSON forms of samples, nodes and decisions: what kiln serve records each
// autoscaling round (<state_dir>/autoscaler-samples.jsonl and
// autoscaler-decisions.jsonl), what GET /v1/cluster shows, and what
// `kiln simulate replay` reads back. One place, so the recorder and the
// replayer cannot drift apart.
#pragma once

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "elastic/autoscaler.h"
#include "elastic/capacity.h"

namespace kiln::elastic {

nlohmann::json to_json(const ClusterSample& s);
nlohmann::json to_json(const Node& n);
nlohmann::json to_json(const Decision& d);  // with its sample

// kInvalidArgument naming the field for a missing or mistyped member.
Result<ClusterSample> sample_from_json(const nlohmann::json& j);
Result<Node> node_from_json(const nlohmann::json& j);

}  // namespace kiln::elastic
