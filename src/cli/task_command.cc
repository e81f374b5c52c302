// `kiln task run --spec FILE`: one task of a cluster step in its own process
// (docs/cluster.md, "Task processes"). It talks to the worker that started it
// through stdout, one JSON object per line: progress, then a result or an
// error. Logs go to stderr, which the worker appends to the step's log.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/render_serve.h"
#include "common/cancel.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/process.h"
#include "common/sandbox.h"
#include "ingest/definition.h"
#include "ingest/plan.h"
#include "ingest/task.h"

namespace kiln::cli {
namespace {

using nlohmann::json;

CancelToken g_task_cancel;

extern "C" void on_task_signal(int) { g_task_cancel.cancel(); }

// The worker reads the latest progress with each heartbeat (every 2 s by
// default), so a few lines a second are plenty and keep the pipe quiet.
constexpr std::chrono::milliseconds kProgressPeriod{250};

// One JSON object per line on stdout, whole lines only: the progress thread
// and the final line share it.
class LineWriter {
 public:
  void write(const json& j) EXCLUDES(mu_) {
    const std::string line = j.dump() + "\n";
    MutexLock lock(&mu_);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
  }

 private:
  Mutex mu_;
};

// Prints progress lines while a task runs, when the counters moved.
class ProgressLines {
 public:
  ProgressLines(const ingest::Progress& progress, LineWriter* out)
      : progress_(progress), out_(out), thread_([this] { loop(); }) {}
  ~ProgressLines() { stop(); }

  // Prints the last state (if it changed) and joins the thread. Idempotent.
  void stop() EXCLUDES(mu_) {
    {
      MutexLock lock(&mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    wake_.notify_all();
    thread_.join();
    emit_if_changed();
  }

 private:
  void loop() EXCLUDES(mu_) {
    for (;;) {
      {
        MutexLock lock(&mu_);
        if (wait_for_stop()) return;
      }
      emit_if_changed();
    }
  }

  // True once stop() is called; false when kProgressPeriod passed first.
  bool wait_for_stop() REQUIRES(mu_) {
    const auto deadline = std::chrono::steady_clock::now() + kProgressPeriod;
    while (!stopped_) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left <= std::chrono::milliseconds::zero()) return false;
      wake_.wait_for(&mu_, left);
    }
    return true;
  }

  void emit_if_changed() {
    json j = {{"tiles_done", progress_.tiles_done.load()},
              {"bytes_read", progress_.bytes_read.load()},
              {"bytes_written", progress_.bytes_written.load()}};
    if (j == last_) return;
    out_->write(j);
    last_ = std::move(j);
  }

  const ingest::Progress& progress_;
  LineWriter* out_;
  // Touched by the thread, then by stop() after the join. Starts at zero:
  // a task that never got going prints no progress.
  json last_ = {{"tiles_done", 0}, {"bytes_read", 0}, {"bytes_written", 0}};
  Mutex mu_;
  CondVar wake_;
  bool stopped_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// `spec`: null when it could not be read (nothing is then known to repeat).
int fail(LineWriter* out, const Status& s, const ingest::TaskSpec* spec) {
  log::error(s.message());
  const bool permanent =
      spec != nullptr && ingest::task_failure_is_permanent(s.code(), spec->definition);
  out->write({{"error",
               {{"reason", ingest::task_failure_reason(s.code())},
                {"message", s.message()},
                {"permanent", permanent}}}});
  return exit_code_for(s);
}

int run_task(const std::string& spec_path) {
  // A task outliving its worker would keep writing into the step's staging
  // while the task is leased again elsewhere: die with the worker.
  os::stop_with_parent_or_signal(on_task_signal);

  LineWriter out;
  auto spec = ingest::load_task_spec(spec_path);
  if (!spec.is_ok()) return fail(&out, spec.status(), nullptr);
  const std::string what = spec->kind == ingest::TaskKind::kPartition
                               ? "partition " + std::to_string(spec->index)
                               : std::string("commit");
  log::info("step " + spec->step_id + ": task " + std::to_string(spec->task_id) + " (" + what +
            "), attempt " + std::to_string(spec->attempt) + ", pid " + std::to_string(::getpid()));

  ingest::Progress progress;
  ProgressLines lines(progress, &out);
  auto result = ingest::run_task(*spec, &progress, g_task_cancel);
  lines.stop();
  if (!result.is_ok()) return fail(&out, result.status(), &*spec);
  out.write({{"result", *result}});
  log::info("step " + spec->step_id + ": task " + std::to_string(spec->task_id) + " (" + what +
            ") done");
  return kExitOk;
}

// `kiln task plan`: what the server's SandboxPlanner runs in the sandbox
// (cluster/sandbox_planner.h). One JSON line on stdout: the plan's size, or
// the error with its status code's name.
int plan_definition(const std::string& path, int threads) {
  // Planning must not outlive the server request that waits for it.
  os::stop_with_parent_or_signal(on_task_signal);
  LineWriter out;
  auto fail_with = [&out](const Status& s) {
    out.write({{"error", {{"code", status_code_name(s.code())}, {"message", s.message()}}}});
    return exit_code_for(s);
  };
  if (threads < 1) return fail_with(invalid_argument("--threads: must be >= 1"));
  auto defs = ingest::load_definition(path);
  if (!defs.is_ok()) return fail_with(defs.status());
  if (defs->size() != 1) return fail_with(invalid_argument("the definition must hold one layer"));
  auto plan = ingest::make_plan(defs->front(), ingest::PlanOptions{threads});
  if (!plan.is_ok()) return fail_with(plan.status());
  out.write({{"plan",
              {{"partitions", static_cast<int64_t>(plan->partitions.size())},
               {"tiles_total", plan->total_tiles()}}}});
  return kExitOk;
}

// `kiln task sandbox-argv`: the argv, rlimits and environment a task would
// get (default [sandbox] policy), for benchmarks and for operators checking
// what a view holds. Prints {"argv": [...], "rlimits": {"RLIMIT_AS": n,
// ...}, "seccomp_fd": 5, "seccomp_program": [bytes], "env": [...]}: whoever
// spawns the argv sets the rlimits and hands the program on as that fd.
int print_sandbox_argv(const std::vector<std::string>& ro, const std::vector<std::string>& rw,
                       const std::vector<std::string>& roots,
                       const std::vector<std::string>& command) {
  if (command.empty() || command[0].empty() || command[0][0] != '/') {
    return report_error(invalid_argument("give the command last, its program as an absolute path"));
  }
  sandbox::View view;
  view.read_only = ro;
  view.read_only.push_back(command[0]);
  view.read_write = rw;
  sandbox::add_source_roots(roots, &view);
  sandbox::Policy policy;
  auto wrapped = sandbox::wrap(view, policy.limits, command, ::geteuid() == 0);
  if (!wrapped.is_ok()) return report_error(wrapped.status());
  const sandbox::Wrapped& w = *wrapped;
  // The seccomp program's bytes, for whoever spawns the argv: it hands them
  // on as descriptor seccomp_fd.
  std::string program;
  char buf[512];
  for (ssize_t n; (n = ::read(w.seccomp.get(), buf, sizeof buf)) > 0;) program.append(buf, n);
  nlohmann::json bpf = nlohmann::json::array();
  for (unsigned char c : program) bpf.push_back(c);
  nlohmann::json limits = nlohmann::json::object();
  for (const os::ResourceLimit& l : w.rlimits) {
    const char* name = l.resource == RLIMIT_AS      ? "RLIMIT_AS"
                       : l.resource == RLIMIT_CPU   ? "RLIMIT_CPU"
                       : l.resource == RLIMIT_FSIZE ? "RLIMIT_FSIZE"
                       : l.resource == RLIMIT_CORE  ? "RLIMIT_CORE"
                                                    : nullptr;
    if (name) limits[name] = l.value;
  }
  nlohmann::json j = {{"argv", w.argv},
                      {"rlimits", limits},
                      {"seccomp_fd", sandbox::kSeccompFd},
                      {"seccomp_program", bpf},
                      {"env", sandbox::scrub_env(policy, sandbox::current_env())}};
  std::printf("%s\n", j.dump().c_str());
  return kExitOk;
}

}  // namespace

Command add_task_command(CLI::App& app) {
  Command c;
  c.app = app.add_subcommand("task", "Run one task of a cluster step (what `kiln worker` starts).");
  c.app->require_subcommand(1);
  CLI::App* run = c.app->add_subcommand(
      "run",
      "Run the task a spec file describes (docs/cluster.md): JSON lines on stdout (progress, then "
      "a result or an error), logs on stderr. SIGTERM stops it at the next tile with exit 130.");
  auto spec = std::make_shared<std::string>();
  run->add_option("--spec", *spec, "The task spec (JSON)")->required();
  CLI::App* plan = c.app->add_subcommand(
      "plan",
      "Plan a definition file and print {\"plan\": {\"partitions\", \"tiles_total\"}} or "
      "{\"error\": {...}} as one JSON line (what `kiln serve` runs, sandboxed, at submit).");
  auto definition = std::make_shared<std::string>();
  auto threads = std::make_shared<int>(1);
  plan->add_option("--definition", *definition, "The ingest definition (JSON)")->required();
  plan->add_option("--threads", *threads, "Plan threads (the server's plan_threads)");
  CLI::App* render = c.app->add_subcommand(
      "render",
      "Serve tile renders for `kiln serve` (its tile endpoint's renderer process): a JSON "
      "request per line on stdin, a header line and the image for each on stdout.");
  auto max_requests = std::make_shared<int>(0);
  render->add_option("--max-requests", *max_requests,
                     "Exit after answering this many (0: until stdin ends)");
  CLI::App* sb = c.app->add_subcommand(
      "sandbox-argv",
      "Print the bubblewrap argv, rlimits and environment a task with this view would run under, "
      "as JSON "
      "(for benchmarks and checks; runs nothing).");
  struct SbFlags {
    std::vector<std::string> ro, rw, roots, command;
  };
  auto sbf = std::make_shared<SbFlags>();
  sb->add_option("--ro", sbf->ro, "A path bound read-only");
  sb->add_option("--rw", sbf->rw, "A directory bound read-write");
  sb->add_option("--root", sbf->roots, "A source root (as in [[environment]] source_roots)");
  sb->prefix_command();  // everything after the first positional is the command
  c.run = [run, spec, plan, definition, threads, render, max_requests, sb, sbf]() -> int {
    if (*run) return run_task(*spec);
    if (*plan) return plan_definition(*definition, *threads);
    if (*render) return serve_renders(*max_requests);
    if (*sb) {
      sbf->command = sb->remaining();
      if (!sbf->command.empty() && sbf->command[0] == "--")
        sbf->command.erase(sbf->command.begin());
      return print_sandbox_argv(sbf->ro, sbf->rw, sbf->roots, sbf->command);
    }
    return kExitUsage;
  };
  return c;
}

}  // namespace kiln::cli
