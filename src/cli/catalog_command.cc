// `kiln catalog ls|info`.
#include <cstdio>

#include "catalog/catalog.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"

namespace kiln::cli {

void add_catalog_commands(CLI::App* cmd, CatalogFlags* f) {
  cmd->require_subcommand(1);
  CLI::App* ls =
      cmd->add_subcommand("ls", "List the layers of a catalog with their current version");
  ls->add_option("--catalog,-c", f->catalog, "Catalog root directory")->required();
  ls->add_option("--env", f->env, "Only this environment");
  ls->add_flag("--json", f->json, "Print JSON");
  CLI::App* info = cmd->add_subcommand("info", "Print a layer version's metadata JSON");
  info->add_option("LAYER", f->layer, "Layer name")->required();
  info->add_option("--catalog,-c", f->catalog, "Catalog root directory")->required();
  info->add_option("--env", f->env, "Environment (default: default)");
  info->add_option("--version", f->version, "Version number (default: current)");
}

int run_catalog_command(CLI::App* cmd, const CatalogFlags& f) {
  auto catalog = catalog::Catalog::open(f.catalog, /*create=*/false);
  if (!catalog.is_ok()) return report_error(catalog.status());
  if (*cmd->get_subcommand("ls")) {
    std::optional<std::string> env;
    if (!f.env.empty()) env = f.env;
    auto layers = catalog->list(env);
    if (!layers.is_ok()) return report_error(layers.status());
    if (f.json) {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& l : *layers) {
        j.push_back({{"environment", l.environment},
                     {"layer", l.layer},
                     {"current_version", l.current_version},
                     {"versions", l.version_count}});
      }
      std::printf("%s\n", j.dump(2).c_str());
      return kExitOk;
    }
    std::printf("%-16s %-32s %8s %9s\n", "ENVIRONMENT", "LAYER", "CURRENT", "VERSIONS");
    for (const auto& l : *layers) {
      std::printf("%-16s %-32s %8d %9d\n", l.environment.c_str(), l.layer.c_str(),
                  l.current_version, l.version_count);
    }
    return kExitOk;
  }
  auto meta = catalog->metadata(f.env.empty() ? "default" : f.env, f.layer, f.version);
  if (!meta.is_ok()) return report_error(meta.status());
  std::printf("%s\n", meta->dump(2).c_str());
  return kExitOk;
}

}  // namespace kiln::cli
