// kiln-worker: `kiln worker` as an executable of its own, without GDAL and
// the ~110 libraries it pulls in (cli/worker_run.h). `kiln serve` starts it
// for each local node when it sits next to `kiln`; it runs each task as the
// `kiln` next to it (`kiln task run`), which is the one that needs GDAL.
//
//   kiln-worker --server URL [--slots N] [--node ID] [--nice N]
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include <CLI/CLI.hpp>

#include "cli/exit_codes.h"
#include "cli/worker_run.h"
#include "common/log.h"
#include "common/process.h"

#ifndef KILN_VERSION
#define KILN_VERSION "0.0.0"
#endif

namespace kiln::cli {

int report_error(const Status& s) {
  std::fprintf(stderr, "kiln-worker: error: %s\n", s.message().c_str());
  return exit_code_for(s);
}

}  // namespace kiln::cli

int main(int argc, char** argv) {
  using namespace kiln::cli;
  CLI::App app{
      "A worker of a `kiln serve` cluster, as `kiln worker` (same flags): lease tasks, run each "
      "as `kiln task run` with the kiln executable next to this one, report back. The worker "
      "token is read from KILN_WORKER_TOKEN.",
      "kiln-worker"};
  app.set_version_flag("--version", KILN_VERSION);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "debug, info, warn, error or off")
      ->capture_default_str();
  WorkerFlags flags;
  add_worker_flags(&app, &flags);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  kiln::log::Level level;
  if (!kiln::log::parse_level(log_level, &level)) {
    return report_error(kiln::invalid_argument("--log-level: unknown level '" + log_level + "'"));
  }
  kiln::log::set_level(level);

  auto self = kiln::os::self_executable();
  if (!self.is_ok()) return report_error(self.status());
  const std::string kiln = (std::filesystem::path(*self).parent_path() / "kiln").string();
  if (::access(kiln.c_str(), X_OK) != 0) {
    return report_error(kiln::not_found("'" + kiln +
                                        "' is missing or not executable: kiln-worker runs its "
                                        "tasks with the kiln executable next to it"));
  }
  return run_worker(flags, {kiln, "task", "run"});
}
