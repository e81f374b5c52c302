// `kiln catalog ls|info|rm|rollback|prune`.
#include <cstdio>

#include "catalog/catalog.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"

namespace kiln::cli {
namespace {

// An upkeep's failure: a busy layer (the catalog's kUnavailable: an ingest
// of it is running) has its own exit code, so scripts can try again later.
int report_upkeep_error(const Status& s) {
  const int code = report_error(s);
  return s.code() == StatusCode::kUnavailable ? kExitConflict : code;
}

// Prints what an upkeep call changed (or with --dry-run would change): one
// line per change and per skipped layer, or JSON with --json.
int print_report(const catalog::UpkeepReport& r, bool json, const std::string& nothing) {
  if (json) {
    std::printf("%s\n", catalog::to_json(r, /*with_paths=*/true).dump(2).c_str());
    return kExitOk;
  }
  for (const auto& c : r.changes) {
    std::printf("%s\n", catalog::describe(c, r.dry_run, /*with_path=*/true).c_str());
  }
  for (const auto& s : r.skipped) {
    std::printf("skipped layer '%s': %s\n", s.layer.c_str(), s.reason.c_str());
  }
  if (r.changes.empty() && r.skipped.empty()) std::printf("%s\n", nothing.c_str());
  return kExitOk;
}

void add_upkeep_flags(CLI::App* cmd, CatalogFlags* f) {
  cmd->add_option("--catalog,-c", f->catalog, "Catalog root directory")->required();
  cmd->add_option("--env", f->env, "Environment (default: default)");
  cmd->add_flag("--dry-run", f->dry_run, "Print what would change and change nothing");
  cmd->add_flag("--json", f->json, "Print JSON");
}

}  // namespace

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

  CLI::App* rm = cmd->add_subcommand(
      "rm", "Remove a layer with all its versions (refused while an ingest of it runs)");
  rm->add_option("LAYER", f->layer, "Layer name")->required();
  add_upkeep_flags(rm, f);
  CLI::App* rollback = cmd->add_subcommand(
      "rollback", "Point a layer's current at another of its versions, atomically");
  rollback->add_option("LAYER", f->layer, "Layer name")->required();
  rollback->add_option("--to", f->to, "The version to make current")->required();
  add_upkeep_flags(rollback, f);
  f->keep = catalog::kDefaultPruneKeep;
  CLI::App* prune = cmd->add_subcommand(
      "prune",
      "Remove old versions (never the current one), leftovers of crashed ingests, and layers "
      "failed ingests left with no version; layers an ingest is writing are skipped");
  prune->add_option("LAYER", f->layer, "Only this layer (default: every layer of the environment)");
  prune
      ->add_option("--keep", f->keep,
                   "Newest versions to keep besides the current one (default: " +
                       std::to_string(catalog::kDefaultPruneKeep) + ")")
      ->check(CLI::NonNegativeNumber);
  add_upkeep_flags(prune, f);
}

int run_catalog_command(CLI::App* cmd, const CatalogFlags& f) {
  auto catalog = catalog::Catalog::open(f.catalog, /*create=*/false);
  if (!catalog.is_ok()) return report_error(catalog.status());
  const std::string env = f.env.empty() ? "default" : f.env;
  if (*cmd->get_subcommand("ls")) {
    std::optional<std::string> only;
    if (!f.env.empty()) only = f.env;
    auto layers = catalog->list(only);
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
  if (*cmd->get_subcommand("rm")) {
    auto r = catalog->remove_layer(env, f.layer, f.dry_run);
    if (!r.is_ok()) return report_upkeep_error(r.status());
    return print_report(*r, f.json, "");
  }
  if (*cmd->get_subcommand("rollback")) {
    auto r = catalog->rollback(env, f.layer, *f.to, f.dry_run);
    if (!r.is_ok()) return report_upkeep_error(r.status());
    return print_report(*r, f.json,
                        "layer '" + f.layer + "' is at version " + std::to_string(*f.to) +
                            " already: nothing to change");
  }
  if (*cmd->get_subcommand("prune")) {
    catalog::PruneOptions o;
    o.keep = f.keep;
    if (!f.layer.empty()) o.layer = f.layer;
    o.dry_run = f.dry_run;
    auto r = catalog->prune(env, o);
    if (!r.is_ok()) return report_upkeep_error(r.status());
    return print_report(*r, f.json, "nothing to prune in environment '" + env + "'");
  }
  auto meta = catalog->metadata(env, f.layer, f.version);
  if (!meta.is_ok()) return report_error(meta.status());
  std::printf("%s\n", meta->dump(2).c_str());
  return kExitOk;
}

}  // namespace kiln::cli
