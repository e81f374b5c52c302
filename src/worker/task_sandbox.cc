#include "worker/task_sandbox.h"

#include <unistd.h>

#include <filesystem>

#include "catalog/catalog.h"
#include "common/sandbox.h"

namespace kiln::worker {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

Result<std::string> spec_string(const json& j, const char* key, const char* where) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string() || it->get<std::string>().empty()) {
    return invalid_argument(std::string("lease: ") + where + "." + key + " is missing");
  }
  return it->get<std::string>();
}

}  // namespace

Result<TaskLaunch> task_launch(const LeasedTask& task, const std::vector<std::string>& command,
                               const std::string& spec_path) {
  TaskLaunch l;
  l.argv = command;
  if (task.sandbox.is_null()) return l;
  KILN_ASSIGN_OR_RETURN(sandbox::Policy policy, sandbox::policy_from_json(task.sandbox));
  if (policy.mode == sandbox::Mode::kNone) return l;

  // The layer directory the task may write. The server set catalog and
  // environment from its config, never from the tenant; the names are
  // checked again so no value can climb out of the catalog.
  const json def = task.spec.value("definition", json::object());
  const json out = def.value("output", json::object());
  KILN_ASSIGN_OR_RETURN(std::string catalog, spec_string(out, "catalog", "definition.output"));
  KILN_ASSIGN_OR_RETURN(std::string env, spec_string(out, "environment", "definition.output"));
  KILN_ASSIGN_OR_RETURN(std::string layer, spec_string(def, "layer", "definition"));
  KILN_RETURN_IF_ERROR(catalog::validate_name("environment", env));
  KILN_RETURN_IF_ERROR(catalog::validate_name("layer", layer));
  KILN_RETURN_IF_ERROR(catalog::validate_name("step_id", task.step_id));
  if (catalog.empty() || catalog[0] != '/') {
    return invalid_argument("lease: definition.output.catalog must be absolute");
  }
  const fs::path env_dir = fs::path(catalog) / env;
  const fs::path layer_dir = env_dir / layer;
  std::error_code ec;
  fs::create_directories(env_dir, ec);
  if (ec) return io_error("cannot create '" + env_dir.string() + "': " + ec.message());
  const bool as_root = ::geteuid() == 0;
  KILN_RETURN_IF_ERROR(sandbox::prepare_writable_dir(env_dir, layer_dir, as_root));
  KILN_RETURN_IF_ERROR(sandbox::prepare_writable_dir(
      layer_dir.string(), (layer_dir / ".staging" / task.step_id).string(), as_root));
  KILN_RETURN_IF_ERROR(sandbox::prepare_writable_dir(layer_dir.string(),
                                                     (layer_dir / "versions").string(), as_root));
  // The commit's flock(2) file, if an earlier (unsandboxed) run made it.
  if (as_root) KILN_RETURN_IF_ERROR(sandbox::chown_file_if_present(layer_dir, ".lock"));

  sandbox::View view;
  view.read_write.push_back(layer_dir.string());
  // The spec is shown at a fixed path inside: the worker's spec directory
  // is private (0700), and may lie under a source root bound before it.
  const std::string inside_spec = "/kiln-task-spec.json";
  view.read_only_at.push_back({spec_path, inside_spec});
  for (std::string& a : l.argv)
    if (a == spec_path) a = inside_spec;
  if (!command.empty() && !command[0].empty() && command[0][0] == '/' &&
      command[0].rfind("/usr/", 0) != 0) {
    view.read_only.push_back(command[0]);
  }
  std::vector<std::string> roots;
  if (auto it = task.sandbox.find("source_roots"); it != task.sandbox.end() && it->is_array()) {
    for (const auto& r : *it)
      if (r.is_string()) roots.push_back(r.get<std::string>());
  }
  sandbox::add_source_roots(roots, &view);
  KILN_ASSIGN_OR_RETURN(l.wrapped, sandbox::wrap(view, policy.limits, l.argv, as_root));
  l.env = sandbox::scrub_env(policy, sandbox::current_env());
  l.sandboxed = true;
  l.network = view.network;
  return l;
}

}  // namespace kiln::worker
