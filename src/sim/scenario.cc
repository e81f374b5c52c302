#include "sim/scenario.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <set>

#include <toml++/toml.h>

#include "config/autoscaler_config.h"

namespace kiln::sim {
namespace {

// "<file>:<line>: simulation.<key>: <message>".
Status key_error(const std::string& path, const toml::node& n, const std::string& key,
                 const std::string& message) {
  return invalid_argument(path + ":" + std::to_string(n.source().begin.line) + ": simulation." +
                          key + ": " + message);
}

// A number within [lo, hi].
Result<double> number_in(const std::string& path, const toml::node& n, const std::string& key,
                         double lo, double hi) {
  std::optional<double> v = n.value<double>();
  if (!v || !std::isfinite(*v) || *v < lo || *v > hi) {
    char range[96];
    std::snprintf(range, sizeof range, "must be a number from %g to %g", lo, hi);
    return key_error(path, n, key, range);
  }
  return *v;
}

Result<int64_t> whole_in(const std::string& path, const toml::node& n, const std::string& key,
                         int64_t lo, int64_t hi) {
  std::optional<int64_t> v = n.value_exact<int64_t>();
  if (!v || *v < lo || *v > hi) {
    return key_error(
        path, n, key,
        "must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  return *v;
}

Status read_environments(const std::string& path, const toml::node& n, Settings* s) {
  const toml::array* list = n.as_array();
  if (list == nullptr || !list->is_array_of_tables() || list->empty()) {
    return key_error(path, n, "environment",
                     "must be [[simulation.environment]] tables with name, concurrency, priority");
  }
  s->environments.clear();
  for (const toml::node& e : *list) {
    const toml::table& t = *e.as_table();
    const std::string key = "environment[" + std::to_string(s->environments.size()) + "]";
    const std::optional<std::string> name = t["name"].value<std::string>();
    if (!name || name->empty()) return key_error(path, e, key + ".name", "required");
    if (s->environments.count(*name)) {
      return key_error(path, e, key + ".name", "'" + *name + "' is listed twice");
    }
    store::EnvironmentPolicy p{64, 0};
    for (const auto& [k, v] : t) {
      const std::string field(k.str());
      if (field == "name") continue;
      if (field == "concurrency") {
        KILN_ASSIGN_OR_RETURN(int64_t c, whole_in(path, v, key + ".concurrency", 1, 256));
        p.concurrency = static_cast<int>(c);
      } else if (field == "priority") {
        KILN_ASSIGN_OR_RETURN(int64_t pr, whole_in(path, v, key + ".priority", -1000, 1000));
        p.priority = static_cast<int>(pr);
      } else {
        return key_error(path, v, key + "." + field,
                         "unknown key (name, concurrency, priority are known)");
      }
    }
    s->environments[*name] = p;
  }
  return Status::ok();
}

// The [simulation] table into `s`; trace paths into *workload / *spot.
Status read_simulation(const std::string& path, const toml::table& t, Settings* s,
                       std::string* workload, std::string* spot) {
  using Setter = std::function<Status(const toml::node&, const std::string&)>;
  auto seconds_to = [&](int64_t* out, double lo, double hi) -> Setter {
    return [=, &path](const toml::node& n, const std::string& key) -> Status {
      KILN_ASSIGN_OR_RETURN(double v, number_in(path, n, key, lo, hi));
      *out = std::llround(v * 1000);
      return Status::ok();
    };
  };
  auto text_to = [&](std::string* out) -> Setter {
    return [=, &path](const toml::node& n, const std::string& key) -> Status {
      std::optional<std::string> v = n.value<std::string>();
      if (!v || v->empty()) return key_error(path, n, key, "must be a file name");
      *out = *v;
      return Status::ok();
    };
  };
  const double kYear = 366.0 * 86400;
  const std::map<std::string, Setter> setters = {
      {"workload", text_to(workload)},
      {"spot_trace", text_to(spot)},
      {"environment",
       [&](const toml::node& n, const std::string&) { return read_environments(path, n, s); }},
      {"tiles_per_slot_second",
       [&](const toml::node& n, const std::string& key) -> Status {
         KILN_ASSIGN_OR_RETURN(s->tiles_per_slot_second, number_in(path, n, key, 1e-3, 1e9));
         return Status::ok();
       }},
      {"tiles_per_partition",
       [&](const toml::node& n, const std::string& key) -> Status {
         KILN_ASSIGN_OR_RETURN(s->tiles_per_partition, whole_in(path, n, key, 1, int64_t{1} << 40));
         return Status::ok();
       }},
      {"max_partitions",
       [&](const toml::node& n, const std::string& key) -> Status {
         KILN_ASSIGN_OR_RETURN(int64_t v, whole_in(path, n, key, 1, 100000));
         s->max_partitions = static_cast<int>(v);
         return Status::ok();
       }},
      {"commit_seconds", seconds_to(&s->commit_ms, 0, 86400)},
      {"per_request_bootstrap_seconds", seconds_to(&s->per_request_bootstrap_ms, 0, 86400)},
      {"per_request_nodes",
       [&](const toml::node& n, const std::string& key) -> Status {
         KILN_ASSIGN_OR_RETURN(int64_t v, whole_in(path, n, key, 1, 10000));
         s->per_request_nodes = static_cast<int>(v);
         return Status::ok();
       }},
      {"starvation_seconds", seconds_to(&s->starvation_ms, 0, kYear)},
      {"spot_notice_seconds", seconds_to(&s->spot_notice_ms, 0, 3600)},
      {"spot_interruptions_per_node_hour",
       [&](const toml::node& n, const std::string& key) -> Status {
         KILN_ASSIGN_OR_RETURN(s->spot_interruptions_per_node_hour, number_in(path, n, key, 0, 60));
         return Status::ok();
       }},
      {"demand_window_seconds", seconds_to(&s->demand_window_ms, 60, 86400)},
      {"chart_bucket_seconds", seconds_to(&s->chart_bucket_ms, 60, 7 * 86400)},
      {"seed",
       [&](const toml::node& n, const std::string& key) -> Status {
         KILN_ASSIGN_OR_RETURN(int64_t v, whole_in(path, n, key, 0, INT64_MAX));
         s->seed = static_cast<uint64_t>(v);
         return Status::ok();
       }},
  };
  for (const auto& [k, v] : t) {
    const std::string key(k.str());
    auto it = setters.find(key);
    if (it == setters.end()) {
      std::string known;
      for (const auto& [name, setter] : setters) known += (known.empty() ? "" : ", ") + name;
      return key_error(path, v, key, "unknown key (known: " + known + ")");
    }
    KILN_RETURN_IF_ERROR(it->second(v, key));
  }
  return Status::ok();
}

}  // namespace

StepShape shape_of(const Settings& s, int64_t tiles) {
  StepShape shape;
  shape.partitions = std::clamp<int64_t>(
      (tiles + s.tiles_per_partition - 1) / s.tiles_per_partition, 1, s.max_partitions);
  const double per = static_cast<double>(tiles) / static_cast<double>(shape.partitions);
  shape.partition_ms = std::max<int64_t>(1, std::llround(per / s.tiles_per_slot_second * 1000));
  shape.commit_ms = s.commit_ms;
  return shape;
}

const elastic::GroupConfig& core_group(const elastic::AutoscalerConfig& c) {
  for (const auto& g : c.groups)
    if (g.core) return g;
  return c.groups.front();
}

Result<Scenario> load_scenario(const std::string& path, const std::string& workload_override,
                               const std::string& spot_override) {
  Scenario sc;
  sc.path = path;
  if (!std::filesystem::is_regular_file(path)) return not_found(path + ": no such scenario file");
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return invalid_argument(path + ":" + std::to_string(e.source().begin.line) + ": " +
                            std::string(e.description()));
  }
  auto ac = config::parse_autoscaler_config(root);
  if (!ac.is_ok()) return ac.status().with_context(path);
  sc.autoscaler = std::move(ac).value();

  std::string workload, spot;
  if (const toml::node* n = root.get("simulation")) {
    if (!n->is_table()) {
      return invalid_argument(path + ":" + std::to_string(n->source().begin.line) +
                              ": simulation: must be a table");
    }
    KILN_RETURN_IF_ERROR(read_simulation(path, *n->as_table(), &sc.settings, &workload, &spot));
  }
  const std::filesystem::path base = std::filesystem::path(path).parent_path();
  auto relative = [&](const std::string& p) {
    return p.empty() || std::filesystem::path(p).is_absolute() ? p : (base / p).string();
  };
  sc.workload_path = workload_override.empty() ? relative(workload) : workload_override;
  sc.spot_path = spot_override.empty() ? relative(spot) : spot_override;
  if (sc.workload_path.empty()) {
    return invalid_argument(path +
                            ": no workload trace: set simulation.workload or pass --workload");
  }
  KILN_ASSIGN_OR_RETURN(sc.workload, read_workload(sc.workload_path));
  for (const Arrival& a : sc.workload) {
    if (!sc.settings.environments.count(a.environment)) {
      std::string known;
      for (const auto& [name, p] : sc.settings.environments) {
        known += (known.empty() ? "" : ", ") + name;
      }
      return invalid_argument(sc.workload_path + ":" + std::to_string(a.line) + ": environment '" +
                              a.environment + "' is not one of the scenario's (" + known +
                              "; [[simulation.environment]] in " + path + ")");
    }
  }
  if (!sc.spot_path.empty()) {
    KILN_ASSIGN_OR_RETURN(sc.spot, read_spot_trace(sc.spot_path));
  }
  return sc;
}

}  // namespace kiln::sim
