#include "server/emr_args.h"

#include <array>
#include <cctype>
#include <string_view>

namespace kiln::server {
namespace {

using json = nlohmann::json;

constexpr std::string_view kCommandRunner = "command-runner.jar";
// The one Spark application Kiln stands in for. Strict on purpose: a step
// naming another class expects some other program to run.
constexpr std::string_view kRasterFoundryIngest = "com.azavea.rf.batch.ingest.spark.Ingest";
// spark-submit options that only size or place a Spark job. Kiln has no
// Spark: it accepts them (Raster Foundry's steps carry --master, --deploy-mode
// and --conf) and ignores their values.
constexpr std::array<std::string_view, 10> kIgnoredSparkOptions = {
    "--master",          "--deploy-mode",   "--conf",         "--name",
    "--queue",           "--driver-memory", "--driver-cores", "--num-executors",
    "--executor-memory", "--executor-cores"};

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}
bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

Status refuse(const std::string& message) { return invalid_argument(message); }

// "HadoopJarStep.Args[3] '--max-zoom'", for messages.
std::string arg_ref(const std::vector<std::string>& args, size_t i) {
  return "HadoopJarStep.Args[" + std::to_string(i) + "] '" + args[i] + "'";
}

// EMR's script-runner: s3://elasticmapreduce/libs/script-runner/script-runner.jar
// or the same under s3://<region>.elasticmapreduce/ (the form awscli and
// Raster Foundry wrote; any region, since Kiln fetches nothing from it).
bool is_script_runner(std::string_view jar) {
  constexpr std::string_view kScheme = "s3://";
  constexpr std::string_view kPath = "elasticmapreduce/libs/script-runner/script-runner.jar";
  if (!starts_with(jar, kScheme) || !ends_with(jar, kPath)) return false;
  std::string_view region = jar.substr(kScheme.size(), jar.size() - kScheme.size() - kPath.size());
  if (region.empty()) return true;
  if (region.back() != '.') return false;
  region.remove_suffix(1);
  if (region.empty()) return false;
  for (char c : region) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-')) {
      return false;
    }
  }
  return true;
}

bool is_spark_submit(std::string_view program) {
  return program == "/usr/bin/spark-submit" || program == "spark-submit";
}

// One "--name value" or "--name=value" option at args[*i]. On a match sets
// *value, advances *i past the value and returns true; a missing value is
// an error. No match: returns false and leaves *i alone.
Result<bool> take_option(const std::vector<std::string>& args, size_t* i,
                         std::initializer_list<std::string_view> names, std::string* value) {
  const std::string& a = args[*i];
  for (std::string_view name : names) {
    if (a == name) {
      if (*i + 1 >= args.size()) return refuse(arg_ref(args, *i) + ": needs a value after it");
      *value = args[*i + 1];
      *i += 2;
      return true;
    }
    // The "=" form exists for long options only, as in spark-submit and scopt.
    if (starts_with(name, "--") && starts_with(a, name) && a.size() > name.size() &&
        a[name.size()] == '=') {
      *value = a.substr(name.size() + 1);
      *i += 1;
      return true;
    }
  }
  return false;
}

// ["kiln", "ingest", "--definition", D] -> D as an absolute path.
Result<std::string> parse_kiln_ingest(const std::vector<std::string>& args) {
  if (args.size() < 2 || args[1] != "ingest") {
    return refuse(std::string("HadoopJarStep.Args: after \"kiln\" the only command accepted is ") +
                  "\"ingest\" (Args [\"kiln\", \"ingest\", \"--definition\", <absolute path or " +
                  "file:// URI>])" + (args.size() < 2 ? "" : ", not '" + args[1] + "'"));
  }
  std::string definition;
  size_t i = 2;
  while (i < args.size()) {
    const size_t at = i;
    std::string value;
    KILN_ASSIGN_OR_RETURN(bool matched, take_option(args, &i, {"--definition", "-d"}, &value));
    if (matched) {
      if (!definition.empty()) return refuse(arg_ref(args, at) + ": --definition given twice");
      if (value.empty()) return refuse(arg_ref(args, at) + ": the definition location is empty");
      auto path = local_definition_path(value);
      if (!path.is_ok()) return refuse(arg_ref(args, at) + ": " + path.status().message());
      definition = *path;
      continue;
    }
    const std::string& a = args[i];
    const std::string name = a.substr(0, a.find('='));
    if (name == "--catalog" || name == "-c" || name == "--env") {
      return refuse(arg_ref(args, i) +
                    ": a step always writes to its environment's catalog, which the "
                    "credentials choose; leave it out");
    }
    if (starts_with(a, "-")) {
      return refuse(arg_ref(args, i) +
                    ": the EMR endpoint takes only --definition; put other ingest settings in "
                    "the definition file");
    }
    return refuse(arg_ref(args, i) +
                  ": unexpected argument; sources are listed in the definition file, given "
                  "with --definition");
  }
  if (definition.empty()) {
    return refuse(
        "HadoopJarStep.Args: `kiln ingest` needs --definition <absolute path or file:// URI>");
  }
  return definition;
}

// Raster Foundry's step: [spark-submit, <spark options>, --class RF, <jar>,
// <RF ingest options>] -> the -j definition as an absolute path. Option
// order is free on both sides of the jar, as spark-submit and RF's scopt
// parser allowed.
Result<std::string> parse_raster_foundry_ingest(const std::vector<std::string>& args) {
  std::string main_class;
  size_t i = 1;
  while (i < args.size() && starts_with(args[i], "-")) {
    const size_t at = i;
    std::string value;
    KILN_ASSIGN_OR_RETURN(bool is_class, take_option(args, &i, {"--class"}, &value));
    if (is_class) {
      if (value != kRasterFoundryIngest) {
        return refuse(arg_ref(args, at) + ": the only Spark application Kiln runs is Raster " +
                      "Foundry's ingest, --class " + std::string(kRasterFoundryIngest) + ", not '" +
                      value + "'");
      }
      main_class = value;
      continue;
    }
    bool ignored = false;
    for (std::string_view option : kIgnoredSparkOptions) {
      KILN_ASSIGN_OR_RETURN(ignored, take_option(args, &i, {option}, &value));
      if (ignored) break;
    }
    if (ignored) continue;
    std::string accepted;
    for (std::string_view option : kIgnoredSparkOptions) {
      accepted += std::string(accepted.empty() ? "" : ", ") + std::string(option);
    }
    return refuse(arg_ref(args, i) + ": spark-submit option not accepted (accepted: --class, " +
                  accepted + "; Kiln ignores all but --class)");
  }
  if (main_class.empty()) {
    return refuse("HadoopJarStep.Args: spark-submit needs --class " +
                  std::string(kRasterFoundryIngest) +
                  " before the application jar: Raster Foundry's ingest is the only Spark "
                  "application Kiln runs");
  }
  if (i >= args.size()) {
    return refuse(
        "HadoopJarStep.Args: the application jar and Raster Foundry's ingest "
        "options (-s <scene id> -j <definition>) are missing after --class");
  }
  ++i;  // The application jar: Kiln runs its own ingest in its place.

  std::string scene, definition;
  while (i < args.size()) {
    const size_t at = i;
    const std::string& a = args[i];
    if (a == "-t" || a == "--test" || a == "--overwrite") {
      // --test (verify the output) and --overwrite (replace a layer) are
      // what Kiln does anyway: every commit is checked, and a step
      // publishes a new version of its layer.
      ++i;
      continue;
    }
    std::string value;
    KILN_ASSIGN_OR_RETURN(bool is_scene, take_option(args, &i, {"-s", "--sceneId"}, &value));
    if (is_scene) {
      if (!scene.empty()) return refuse(arg_ref(args, at) + ": the scene id is given twice");
      if (value.empty()) return refuse(arg_ref(args, at) + ": the scene id is empty");
      scene = value;
      continue;
    }
    KILN_ASSIGN_OR_RETURN(bool is_def, take_option(args, &i, {"-j", "--jobDefinition"}, &value));
    if (is_def) {
      if (!definition.empty()) return refuse(arg_ref(args, at) + ": -j given twice");
      auto path = local_definition_path(value);
      if (!path.is_ok()) return refuse(arg_ref(args, at) + ": " + path.status().message());
      definition = *path;
      continue;
    }
    // Raster Foundry's parser marked these [UNUSED]; they tune Spark reads.
    KILN_ASSIGN_OR_RETURN(
        bool is_tuning,
        take_option(args, &i,
                    {"-w", "--windowSize", "-p", "--partitionsPerFile", "-z", "--partitionsSize"},
                    &value));
    if (is_tuning) {
      const bool is_number = !value.empty() && value.size() <= 9 &&
                             value.find_first_not_of("0123456789") == std::string::npos;
      if (!is_number) {
        return refuse(arg_ref(args, at) + ": needs a whole number, not '" + value + "'");
      }
      continue;
    }
    const std::string name = a.substr(0, a.find('='));
    if (name == "-b" || name == "--statusBucket") {
      return refuse(arg_ref(args, i) +
                    ": Kiln writes no ingest status files to S3; poll DescribeStep for the "
                    "outcome instead");
    }
    return refuse(arg_ref(args, i) +
                  ": not one of Raster Foundry's ingest options that Kiln accepts (-t, "
                  "--overwrite, -s <scene id>, -j <definition>)");
  }
  if (scene.empty()) {
    return refuse("HadoopJarStep.Args: Raster Foundry's ingest needs -s <scene id>");
  }
  if (definition.empty()) {
    return refuse(
        "HadoopJarStep.Args: Raster Foundry's ingest needs -j <absolute path or "
        "file:// URI of the ingest definition>");
  }
  return definition;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 percent-decoding of a URI path; false on a malformed escape or
// an encoded NUL (no path can hold one).
bool percent_decode(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

Result<std::string> action_on_failure(const std::string& value) {
  if (value.empty()) return std::string("CONTINUE");  // EMR's default for added steps
  if (value == "CONTINUE" || value == "CANCEL_AND_WAIT") return value;
  if (value == "TERMINATE_CLUSTER" || value == "TERMINATE_JOB_FLOW") {
    return refuse("ActionOnFailure " + value +
                  " is refused: the cluster is shared by every environment and stays up "
                  "when a step fails; use CONTINUE or CANCEL_AND_WAIT");
  }
  return refuse("ActionOnFailure '" + value +
                "' is not one of CONTINUE, CANCEL_AND_WAIT (TERMINATE_CLUSTER and "
                "TERMINATE_JOB_FLOW are refused: the cluster is shared)");
}

}  // namespace

const char kAcceptedEmrSteps[] =
    "Kiln runs only its own ingest. Accepted steps: (1) Jar command-runner.jar with Args "
    "[\"kiln\", \"ingest\", \"--definition\", <absolute path or file:// URI>]; (2) Raster "
    "Foundry's ingest: Jar s3://<region>.elasticmapreduce/libs/script-runner/script-runner.jar "
    "(or command-runner.jar) with Args [\"/usr/bin/spark-submit\", <spark-submit options such as "
    "--master, --deploy-mode, --conf>, \"--class\", \"com.azavea.rf.batch.ingest.spark.Ingest\", "
    "<jar>, <ingest options: -s <scene id> and -j <absolute path or file:// URI> required; -t, "
    "--overwrite and the rest optional>].";

Result<std::string> local_definition_path(const std::string& location) {
  const std::string supported =
      "give an absolute path or a file:///absolute/path URI (only files on the server are "
      "supported for now)";
  if (location.empty()) return refuse("the definition location is empty; " + supported);
  if (location.find('\0') != std::string::npos) {
    return refuse("the definition location holds a NUL character");
  }
  std::string_view loc = location;
  if (starts_with(loc, "file:")) {
    std::string_view rest = loc.substr(5);
    std::string_view encoded_path;
    if (starts_with(rest, "//")) {
      rest.remove_prefix(2);
      const size_t slash = rest.find('/');
      const std::string_view host = rest.substr(0, slash);
      if (!host.empty() && host != "localhost") {
        return refuse("'" + location + "' names the host '" + std::string(host) +
                      "'; only files on the server are supported: use file:///absolute/path");
      }
      if (slash == std::string_view::npos) {
        return refuse("'" + location + "' has no path; " + supported);
      }
      encoded_path = rest.substr(slash);
    } else {
      encoded_path = rest;  // Hadoop's "file:/a/b.json"
    }
    std::string path;
    if (!percent_decode(encoded_path, &path)) {
      return refuse("'" + location + "' has a malformed %-escape");
    }
    if (path.empty() || path[0] != '/') {
      return refuse("'" + location + "' is not an absolute file URI; " + supported);
    }
    return path;
  }
  const size_t scheme_end = loc.find("://");
  if (scheme_end != std::string_view::npos && scheme_end > 0 &&
      loc.substr(0, scheme_end).find('/') == std::string_view::npos) {
    return refuse("'" + location + "': " + std::string(loc.substr(0, scheme_end)) +
                  ":// is not supported yet; " + supported);
  }
  if (loc[0] != '/') {
    return refuse(
        "'" + location +
        "' is relative; the server does not share the client's working directory: " + supported);
  }
  return location;
}

Result<SubmitRequest> to_submit_request(const EmrStepConfig& step) {
  SubmitRequest req;
  req.name = step.name;
  KILN_ASSIGN_OR_RETURN(req.action_on_failure, action_on_failure(step.action_on_failure));

  const HadoopJarStep& j = step.jar_step;
  if (!j.main_class.empty()) {
    return refuse("HadoopJarStep.MainClass '" + j.main_class +
                  "': the accepted steps take no main class; leave it out. " + kAcceptedEmrSteps);
  }
  if (!j.properties.empty()) {
    return refuse("HadoopJarStep.Properties: Kiln's ingest takes no Java properties ('" +
                  j.properties.front().first + "' given); leave them out");
  }
  const bool command_runner = j.jar == kCommandRunner;
  if (!command_runner && !is_script_runner(j.jar)) {
    return refuse("HadoopJarStep.Jar '" + j.jar + "' is not accepted. " + kAcceptedEmrSteps);
  }
  if (j.args.empty()) {
    return refuse("HadoopJarStep.Args: " + j.jar + " needs arguments. " + kAcceptedEmrSteps);
  }
  std::string definition;
  if (command_runner && j.args[0] == "kiln") {
    KILN_ASSIGN_OR_RETURN(definition, parse_kiln_ingest(j.args));
  } else if (is_spark_submit(j.args[0])) {
    KILN_ASSIGN_OR_RETURN(definition, parse_raster_foundry_ingest(j.args));
  } else {
    return refuse(arg_ref(j.args, 0) + ": " + j.jar +
                  (command_runner ? " runs only `kiln` or spark-submit here. "
                                  : " runs only spark-submit (Raster Foundry's ingest) here. ") +
                  kAcceptedEmrSteps);
  }
  req.definition_uri = definition;
  req.emr_request = {{"Jar", j.jar}, {"Args", j.args}, {"Properties", json::object()}};
  return req;
}

}  // namespace kiln::server
