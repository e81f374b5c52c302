// What `kiln worker` and the lean `kiln-worker` executable share: their
// flags and the run itself. kiln-worker (src/cli/kiln_worker/) is the same
// worker without GDAL linked in, which `kiln serve` starts by the hundred
// (issue 14: a `kiln` process spends ~110 ms of CPU resolving GDAL's
// dependencies before main(); kiln-worker ~10 ms).
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace kiln::cli {

struct WorkerFlags {
  std::string server;
  int slots = 1;
  int nice = 0;
  std::string node;
};

// --server, --slots, --node, --nice.
void add_worker_flags(CLI::App* app, WorkerFlags* flags);

// Runs the worker until it is stopped (SIGTERM/SIGINT, or its parent going)
// or gives up; returns the exit code. `task_command`: how it starts a task
// ("... task run", to which "--spec FILE" is appended); empty: this
// executable's "task run".
int run_worker(const WorkerFlags& flags, const std::vector<std::string>& task_command);

}  // namespace kiln::cli
