// `kiln step submit|list|describe|cancel|logs|wait`: a client of kiln serve's
// native API (docs/cluster.md). Human output is tables and progress lines;
// --json prints the API's JSON as it came.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "ingest/definition.h"
#include "ingest/task.h"

namespace kiln::cli {
namespace {

using nlohmann::json;

struct StepFlags {
  ApiFlags api;
  IngestFlags ingest;  // submit: SOURCE... or --definition, as for kiln ingest
  std::string name;
  std::string action_on_failure = "CONTINUE";
  bool wait = false;
  std::string states;
  int limit = 50;
  std::string marker;
  std::string id;
  bool json = false;
  bool kill = false;
  bool follow = false;
  std::optional<double> timeout;
};

// --- reading step JSON -------------------------------------------------------

std::string str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

double num(const json& j, const char* key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0;
}

bool is_terminal(const std::string& state) {
  return state == "COMPLETED" || state == "CANCELLED" || state == "FAILED" ||
         state == "INTERRUPTED";
}

// "120/340 tiles (35%), 2/5 tasks, 1.2 MiB read, 300 KiB written, eta 4 s"
std::string progress_text(const json& step) {
  const json p = step.value("progress", json::object());
  const double tiles = num(p, "tiles_done"), tiles_total = num(p, "tiles_total");
  std::ostringstream out;
  if (tiles_total > 0) {
    out << static_cast<long long>(tiles) << "/" << static_cast<long long>(tiles_total) << " tiles ("
        << static_cast<int>(std::floor(100 * std::min(1.0, tiles / tiles_total))) << "%), ";
  }
  out << static_cast<long long>(num(p, "tasks_done")) << "/"
      << static_cast<long long>(num(p, "tasks_total")) << " tasks, "
      << human_bytes(num(p, "bytes_read")) << " read, " << human_bytes(num(p, "bytes_written"))
      << " written";
  if (p.contains("eta_seconds") && p["eta_seconds"].is_number()) {
    out << ", eta " << static_cast<long long>(std::ceil(p["eta_seconds"].get<double>())) << " s";
  }
  return out.str();
}

// "SOURCE_ERROR: cannot open /data/x.tif (log: /state/logs/s-....log)"
std::string failure_text(const json& step) {
  const json f = step.value("failure", json());
  if (!f.is_object()) return "";
  std::string out = str(f, "reason");
  const std::string message = str(f, "message");
  if (!message.empty()) out += (out.empty() ? "" : ": ") + message;
  const std::string log = str(f, "log_file");
  if (!log.empty()) out += " (log: " + log + ")";
  return out;
}

// One line saying how a step ended, for `wait` and `submit --wait`.
void print_outcome(const json& step) {
  const std::string state = str(step, "state");
  std::printf("%s %s", str(step, "id").c_str(), state.c_str());
  if (state == "COMPLETED") {
    std::printf(": layer %s version %s", str(step, "layer").c_str(), str(step, "version").c_str());
  }
  const std::string failure = failure_text(step);
  if (!failure.empty()) std::printf(": %s", failure.c_str());
  std::printf("\n");
}

// Exit code for how a step ended. A failed task reports the reason
// ingest::task_failure_reason() gives its Status code, which maps back to
// the exit code `kiln ingest` would have had; other reasons (a crashed task,
// a stopped worker) are internal.
int exit_code_for_step(const json& step) {
  const std::string state = str(step, "state");
  if (state == "COMPLETED") return kExitOk;
  if (state == "CANCELLED" || state == "INTERRUPTED") return kExitInterrupted;
  if (state != "FAILED") return kExitTimedOut;
  const std::string reason = str(step.value("failure", json()), "reason");
  for (StatusCode code : {StatusCode::kInvalidArgument, StatusCode::kInputError,
                          StatusCode::kNotFound, StatusCode::kEmpty, StatusCode::kIOError}) {
    if (reason == ingest::task_failure_reason(code)) return exit_code_for(Status(code, ""));
  }
  return kExitInternal;
}

// --- submit ------------------------------------------------------------------

// The server runs elsewhere, so a relative path that names a file here is
// made absolute; anything else (a GDAL /vsi name, a URL, a driver's
// "NETCDF:file:var" name) is left as written. A plain relative path that
// names no file here is refused now, as missing: the server could only say
// that it is relative.
Result<std::string> absolute_source(const std::string& uri) {
  std::error_code ec;
  if (uri.empty() || uri.front() == '/' || uri.find(':') != std::string::npos) return uri;
  if (!std::filesystem::exists(uri, ec)) {
    return input_error("source '" + uri + "' does not exist (looked for " +
                       std::filesystem::absolute(uri, ec).lexically_normal().string() + ")");
  }
  return std::filesystem::absolute(uri, ec).lexically_normal().string();
}

// The definitions a submit asks for, from --definition FILE or from SOURCE...
// and the same flags as `kiln ingest` (built as Kiln JSON by
// ingest_flags_to_json and parsed, so one validator checks both, locally,
// before anything is sent).
Result<std::vector<ingest::IngestDefinition>> submitted_definitions(const IngestFlags& f) {
  if (!f.catalog.empty() || !f.env.empty()) {
    return invalid_argument(
        "--catalog/--env: a step writes to the catalog and environment of its token's "
        "environment, set by the server");
  }
  if (f.threads != 0) {
    return invalid_argument("--threads: a step's tasks run on the cluster's workers");
  }
  std::vector<ingest::IngestDefinition> defs;
  if (!f.definition.empty()) {
    if (!f.sources.empty()) {
      return invalid_argument("give either --definition or SOURCE arguments, not both");
    }
    KILN_ASSIGN_OR_RETURN(defs, ingest::load_definition(f.definition));
  } else {
    if (f.sources.empty()) {
      return invalid_argument(
          "nothing to submit: give --definition DEF.json or SOURCE... --layer NAME "
          "(see kiln step submit --help)");
    }
    if (f.layer.empty()) return invalid_argument("--layer is required with SOURCE arguments");
    KILN_ASSIGN_OR_RETURN(json j, ingest_flags_to_json(f));
    KILN_ASSIGN_OR_RETURN(defs, ingest::parse_definition(j));
  }
  for (auto& d : defs) {
    for (auto& s : d.sources) {
      KILN_ASSIGN_OR_RETURN(s.uri, absolute_source(s.uri));
    }
  }
  return defs;
}

// Waits until the step has ended or `timeout` (none: for ever) has passed,
// through the API's long poll. While waiting: a progress line on stderr when
// it is a TTY, else one line per state change.
Result<json> wait_for(ApiClient& api, const std::string& id, std::optional<double> timeout) {
  using Clock = std::chrono::steady_clock;
  const bool show = isatty(STDERR_FILENO);
  const auto start = Clock::now();
  std::string last_state;
  bool drew = false;
  for (;;) {
    // Short polls when drawing progress; long ones otherwise (one request
    // per 20 s per waiting client).
    double chunk = show ? 2 : 20;
    if (timeout) {
      double left = *timeout - std::chrono::duration<double>(Clock::now() - start).count();
      chunk = std::clamp(std::ceil(left), 0.0, chunk);
    }
    const auto asked = Clock::now();
    KILN_ASSIGN_OR_RETURN(json step, api.get("/v1/steps/" + url_encode(id) + "/wait?timeout=" +
                                                 std::to_string(static_cast<int>(chunk)),
                                             static_cast<int>(chunk) + 30));
    const std::string state = str(step, "state");
    if (show) {
      std::fprintf(stderr, "\r\033[K%s %s %s", id.c_str(), state.c_str(),
                   progress_text(step).c_str());
      drew = true;
    } else if (state != last_state) {
      std::fprintf(stderr, "%s %s\n", id.c_str(), state.c_str());
    }
    last_state = state;
    const double waited = std::chrono::duration<double>(Clock::now() - start).count();
    if (is_terminal(state) || (timeout && waited >= *timeout)) {
      if (drew) std::fprintf(stderr, "\n");
      return step;
    }
    // A server that answered at once (no long poll) is not asked in a loop.
    if (Clock::now() - asked < std::chrono::milliseconds(200)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
}

int run_submit(const StepFlags& f) {
  auto defs = submitted_definitions(f.ingest);
  if (!defs.is_ok()) return report_error(defs.status());
  auto api = ApiClient::create(f.api);
  if (!api.is_ok()) return report_error(api.status());
  std::string on_failure = f.action_on_failure;
  for (char& c : on_failure) c = static_cast<char>(std::toupper(c));
  std::vector<json> steps;
  for (const auto& def : *defs) {
    json definition = ingest::to_json(def);
    // The server sets both from the token's environment (docs/cluster.md);
    // to_json always writes them, so leave them out of the request.
    definition["output"].erase("catalog");
    definition["output"].erase("environment");
    json body = {{"name", f.name.empty() ? def.layer : f.name},
                 {"action", {{"ingest", definition}}},
                 {"action_on_failure", on_failure}};
    auto step = (*api)->post("/v1/steps", body);
    if (!step.is_ok()) return report_error(step.status());
    if (!f.ingest.json) {
      std::printf("%s %s %s\n", str(*step, "id").c_str(), str(*step, "state").c_str(),
                  str(*step, "name").c_str());
      std::fflush(stdout);
    }
    steps.push_back(*step);
  }
  int rc = kExitOk;
  if (f.wait) {
    for (auto& step : steps) {
      auto done = wait_for(**api, str(step, "id"), std::nullopt);
      if (!done.is_ok()) return report_error(done.status());
      step = *done;
      if (!f.ingest.json) print_outcome(step);
      if (rc == kExitOk) rc = exit_code_for_step(step);
    }
  }
  if (f.ingest.json) {
    std::printf("%s\n", (steps.size() == 1 ? steps[0] : json(steps)).dump(2).c_str());
  }
  return rc;
}

// --- list, describe ----------------------------------------------------------

int run_list(const StepFlags& f) {
  auto api = ApiClient::create(f.api);
  if (!api.is_ok()) return report_error(api.status());
  std::string path = "/v1/steps?limit=" + std::to_string(f.limit);
  if (!f.states.empty()) {
    std::string states = f.states;
    for (char& c : states) c = static_cast<char>(std::toupper(c));
    path += "&state=" + url_encode(states);
  }
  if (!f.marker.empty()) path += "&marker=" + url_encode(f.marker);
  auto page = (*api)->get(path);
  if (!page.is_ok()) return report_error(page.status());
  if (f.json) {
    std::printf("%s\n", page->dump(2).c_str());
    return kExitOk;
  }
  std::printf("%-15s  %-14s  %-20s  %-26s  %-20s  %s\n", "ID", "STATE", "CREATED", "PROGRESS",
              "LAYER", "NAME");
  for (const json& s : page->value("steps", json::array())) {
    const json p = s.value("progress", json::object());
    char progress[64] = "-";
    if (num(p, "tiles_total") > 0) {
      std::snprintf(progress, sizeof progress, "%lld/%lld tiles",
                    static_cast<long long>(num(p, "tiles_done")),
                    static_cast<long long>(num(p, "tiles_total")));
    }
    std::string layer = str(s, "layer");
    if (!str(s, "version").empty()) layer += " v" + str(s, "version");
    std::printf("%-15s  %-14s  %-20s  %-26s  %-20s  %s\n", str(s, "id").c_str(),
                str(s, "state").c_str(), str(s, "created_at").c_str(), progress,
                layer.empty() ? "-" : layer.c_str(), str(s, "name").c_str());
  }
  const std::string next = str(*page, "next_marker");
  if (!next.empty()) std::printf("more: kiln step list --marker %s\n", next.c_str());
  return kExitOk;
}

void print_step(const json& s) {
  auto row = [](const char* key, const std::string& value) {
    std::printf("%-18s %s\n", key, value.empty() ? "-" : value.c_str());
  };
  row("id", str(s, "id"));
  row("name", str(s, "name"));
  row("environment", str(s, "environment"));
  row("state", str(s, "state"));
  row("action_on_failure", str(s, "action_on_failure"));
  row("created", str(s, "created_at"));
  row("started", str(s, "started_at"));
  row("ended", str(s, "ended_at"));
  row("progress", progress_text(s));
  std::string layer = str(s, "layer");
  if (!str(s, "version").empty()) layer += " version " + str(s, "version");
  row("layer", layer);
  const std::string failure = failure_text(s);
  if (!failure.empty()) row("failure", failure);
}

int run_describe(const StepFlags& f) {
  auto api = ApiClient::create(f.api);
  if (!api.is_ok()) return report_error(api.status());
  auto step = (*api)->get("/v1/steps/" + url_encode(f.id));
  if (!step.is_ok()) return report_error(step.status());
  if (f.json) {
    std::printf("%s\n", step->dump(2).c_str());
  } else {
    print_step(*step);
  }
  return kExitOk;
}

// --- cancel, logs, wait -------------------------------------------------------

int run_cancel(const StepFlags& f) {
  auto api = ApiClient::create(f.api);
  if (!api.is_ok()) return report_error(api.status());
  auto step = (*api)->post("/v1/steps/" + url_encode(f.id) + "/cancel",
                           {{"signal", f.kill ? "KILL" : "TERM"}});
  if (!step.is_ok()) return report_error(step.status());
  if (f.json) {
    std::printf("%s\n", step->dump(2).c_str());
  } else {
    std::printf("%s %s\n", str(*step, "id").c_str(), str(*step, "state").c_str());
  }
  return kExitOk;
}

int run_logs(const StepFlags& f) {
  auto api = ApiClient::create(f.api);
  if (!api.is_ok()) return report_error(api.status());
  const std::string base = "/v1/steps/" + url_encode(f.id);
  int64_t offset = 0;
  bool ended = false;
  for (;;) {
    auto text = (*api)->get_text(base + "/logs?offset=" + std::to_string(offset));
    if (!text.is_ok()) return report_error(text.status());
    std::fwrite(text->body.data(), 1, text->body.size(), stdout);
    std::fflush(stdout);
    offset = text->next_offset >= 0 ? text->next_offset
                                    : offset + static_cast<int64_t>(text->body.size());
    if (!f.follow || (ended && text->body.empty())) return kExitOk;
    if (!text->body.empty()) continue;
    // Nothing new: stop once the step has ended (after one more read, for
    // what was written between the two requests), else look again shortly.
    auto step = (*api)->get(base);
    if (!step.is_ok()) return report_error(step.status());
    ended = is_terminal(str(*step, "state"));
    if (!ended) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

int run_wait(const StepFlags& f) {
  if (f.timeout && *f.timeout < 0) return report_error(invalid_argument("--timeout: must be >= 0"));
  auto api = ApiClient::create(f.api);
  if (!api.is_ok()) return report_error(api.status());
  auto step = wait_for(**api, f.id, f.timeout);
  if (!step.is_ok()) return report_error(step.status());
  if (f.json) {
    std::printf("%s\n", step->dump(2).c_str());
  } else {
    print_outcome(*step);
  }
  int rc = exit_code_for_step(*step);
  if (rc == kExitTimedOut) {
    std::fprintf(stderr, "kiln: error: %s still %s after %g s\n", f.id.c_str(),
                 str(*step, "state").c_str(), *f.timeout);
  }
  return rc;
}

}  // namespace

Command add_step_command(CLI::App& app) {
  auto f = std::make_shared<StepFlags>();
  Command c;
  c.app = app.add_subcommand(
      "step",
      "Submit ingests to a running `kiln serve` and track them. The server is --server, else\n"
      "$KILN_SERVER, else " +
          std::string(kDefaultServer) +
          "; the token (--token or $KILN_TOKEN) chooses the environment,\n"
          "which only ever sees its own steps.");
  c.app->require_subcommand(1);

  CLI::App* submit = c.app->add_subcommand(
      "submit",
      "Submit an ingest as a step: --definition DEF.json, or SOURCE... --layer NAME with the\n"
      "flags of `kiln ingest`. The definition is checked here and by the server; the catalog\n"
      "and environment are the token's. Relative source paths are made absolute. Prints the\n"
      "step id and state (a Raster Foundry definition with several layers: one step each).\n"
      "Exit codes with --wait: as for `kiln step wait`.");
  add_ingest_flags(submit, &f->ingest, /*for_plan=*/true);
  submit->get_option("--json")->description("Print the submitted (with --wait: ended) step's JSON");
  submit->get_option("--catalog")->description("Not for steps: the token's environment decides");
  submit->get_option("--env")->description("Not for steps: the token's environment decides");
  submit->get_option("--threads")->description("Not for steps: tasks run on the cluster's workers");
  submit->add_option("--name", f->name, "Step name (default: the layer name)");
  submit->add_option("--action-on-failure", f->action_on_failure,
                     "CONTINUE (default: later steps still run) or CANCEL_AND_WAIT (a failure "
                     "cancels this environment's pending steps)");
  submit->add_flag("--wait", f->wait, "Wait until the step ends and print how it ended");
  add_api_flags(submit, &f->api);

  CLI::App* list = c.app->add_subcommand("list", "List steps, newest first");
  list->add_option("--state", f->states,
                   "Only these states, comma-separated: PENDING, RUNNING, COMPLETED, "
                   "CANCEL_PENDING, CANCELLED, FAILED, INTERRUPTED");
  list->add_option("--limit", f->limit, "Steps per page (1-1000)")->capture_default_str();
  list->add_option("--marker", f->marker, "Start after this page marker (printed as 'more:')");
  list->add_flag("--json", f->json, "Print the API's JSON ({\"steps\": [...], \"next_marker\"})");
  add_api_flags(list, &f->api);

  CLI::App* describe =
      c.app->add_subcommand("describe", "Show one step: state, times, progress, layer, failure");
  describe->add_option("ID", f->id, "Step id (s-...)")->required();
  describe->add_flag("--json", f->json, "Print the step's JSON");
  add_api_flags(describe, &f->api);

  CLI::App* cancel = c.app->add_subcommand(
      "cancel",
      "Cancel a step: a PENDING step is CANCELLED at once; a RUNNING one becomes\n"
      "CANCEL_PENDING until its tasks have stopped (SIGTERM, SIGKILL after the grace),\n"
      "then CANCELLED. Nothing it wrote is published.");
  cancel->add_option("ID", f->id, "Step id (s-...)")->required();
  cancel->add_flag("--kill", f->kill, "Stop the step's tasks with SIGKILL at once");
  cancel->add_flag("--json", f->json, "Print the step's JSON");
  add_api_flags(cancel, &f->api);

  CLI::App* logs = c.app->add_subcommand("logs", "Print a step's log (its tasks' stderr)");
  logs->add_option("ID", f->id, "Step id (s-...)")->required();
  logs->add_flag("--follow,-f", f->follow, "Keep printing new lines until the step ends");
  add_api_flags(logs, &f->api);

  CLI::App* wait = c.app->add_subcommand(
      "wait",
      "Wait until a step ends. Exit 0 if COMPLETED; FAILED: the exit code `kiln ingest`\n"
      "gives for the failure's reason (1 if unknown); CANCELLED or INTERRUPTED: 130;\n"
      "still running at --timeout: 124.");
  wait->add_option("ID", f->id, "Step id (s-...)")->required();
  wait->add_option("--timeout", f->timeout, "Give up after this many seconds (default: never)");
  wait->add_flag("--json", f->json, "Print the step's JSON");
  add_api_flags(wait, &f->api);

  c.run = [f, submit, list, describe, cancel, logs, wait]() -> int {
    if (*submit) return run_submit(*f);
    if (*list) return run_list(*f);
    if (*describe) return run_describe(*f);
    if (*cancel) return run_cancel(*f);
    if (*logs) return run_logs(*f);
    if (*wait) return run_wait(*f);
    return kExitUsage;
  };
  return c;
}

}  // namespace kiln::cli
