// kiln: the command-line entry point. Each subcommand lives in its own file;
// this one wires them to CLI11 and maps failures to exit codes.
#include <csignal>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/did_you_mean.h"
#include "cli/exit_codes.h"
#include "common/log.h"

#ifndef KILN_VERSION
#define KILN_VERSION "0.0.0"
#endif

namespace kiln::cli {

int report_error(const Status& s) {
  std::fprintf(stderr, "kiln: error: %s\n", s.message().c_str());
  return exit_code_for(s);
}

}  // namespace kiln::cli

int main(int argc, char** argv) {
  using namespace kiln::cli;
  CLI::App app{
      "Kiln ingests satellite and aerial imagery (anything GDAL reads) into a tiled, pyramided,\n"
      "versioned layer catalog.\n\n"
      "Exit codes: 0 ok, 1 internal error, 2 invalid usage or definition, 3 input error\n"
      "(source missing/unreadable/corrupt/not georeferenced), 4 nothing to ingest,\n"
      "5 catalog/output error, 6 not found, 7 layer busy (an ingest of it runs), 130 interrupted.",
      "kiln"};
  app.set_version_flag("--version", KILN_VERSION);
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "debug, info, warn, error or off")
      ->capture_default_str();

  IngestFlags ingest_flags;
  CLI::App* ingest = app.add_subcommand(
      "ingest",
      "Ingest sources into a layer: plan, tile, pyramid and publish a new version atomically.\n"
      "Either --definition DEF.json, or SOURCE... --layer NAME --catalog DIR [options].");
  add_ingest_flags(ingest, &ingest_flags, /*for_plan=*/false);

  IngestFlags plan_flags;
  CLI::App* plan = app.add_subcommand(
      "plan",
      "Print what an ingest would do (tiles per zoom, partitions, bytes to read); "
      "writes nothing. Takes the same arguments as ingest.");
  add_ingest_flags(plan, &plan_flags, /*for_plan=*/true);
  add_plan_server_flags(plan, &plan_flags);

  CatalogFlags catalog_flags;
  CLI::App* catalog =
      app.add_subcommand("catalog", "Inspect and tend a catalog: ls, info, rm, rollback, prune.");
  add_catalog_commands(catalog, &catalog_flags);

  std::vector<Command> commands = {add_serve_command(app),      add_step_command(app),
                                   add_cluster_command(app),    add_token_command(app),
                                   add_worker_command(app),     add_task_command(app),
                                   add_slurm_task_command(app), add_simulate_command(app)};
  commands.push_back(add_render_command(app));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() != 0) {
      const std::string hint = did_you_mean(app);
      if (!hint.empty()) {
        std::fprintf(stderr, "kiln: error: %s\nRun with --help for more information.\n",
                     hint.c_str());
        return kExitUsage;
      }
    }
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  kiln::log::Level level;
  if (!kiln::log::parse_level(log_level, &level)) {
    return report_error(kiln::invalid_argument("--log-level: unknown level '" + log_level + "'"));
  }
  kiln::log::set_level(level);

  if (*ingest) return run_ingest_command(ingest_flags);
  if (*plan) return run_plan_command(plan_flags);
  if (*catalog) return run_catalog_command(catalog, catalog_flags);
  for (const Command& c : commands)
    if (*c.app) return c.run();
  return kExitUsage;
}
