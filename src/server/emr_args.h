// What an EMR step may ask Kiln to run. An EMR client describes a step as a
// jar and its arguments (HadoopJarStep); Kiln runs only its own ingest, so
// this file recognises the few jar/argument forms that mean "ingest this
// definition" and turns them into a SubmitRequest. Everything else is
// refused with a message that lists what is accepted. Nothing here runs a
// program or reads a file: the arguments are data, never a command line.
//
// Accepted:
//  1. Jar "command-runner.jar", Args ["kiln", "ingest", "--definition", D]
//     (also "-d D" and "--definition=D").
//  2. Raster Foundry's ingest step, as its API submitted it:
//     Jar "s3://<region>.elasticmapreduce/libs/script-runner/script-runner.jar"
//     (or command-runner.jar), Args ["/usr/bin/spark-submit", <spark-submit
//     options>, "--class", "com.azavea.rf.batch.ingest.spark.Ingest", <jar>,
//     "-t", "--overwrite", "-s", <scene id>, "-j", D] in any option order.
// D is an absolute path or a file:// URI of the definition; other schemes
// (s3://, https://) are refused until Kiln can fetch them.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "server/core_names.h"

namespace kiln::server {

// A HadoopJarStepConfig as the client sent it.
struct HadoopJarStep {
  std::string jar;
  std::string main_class;
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> properties;  // Key, Value
};

// A StepConfig as the client sent it. `action_on_failure` empty: the
// client left it out.
struct EmrStepConfig {
  std::string name;
  std::string action_on_failure;
  HadoopJarStep jar_step;
};

// The SubmitRequest for one EMR step: name, action_on_failure,
// definition_uri (an absolute local path) and emr_request (the
// HadoopJarStep in DescribeStep's Config shape: {Jar, Args, Properties{}},
// plus MainClass when given) for DescribeStep to echo. kInvalidArgument
// with a message for the client when the step is not one Kiln runs.
// Pure: reads no file, so the definition is checked later, at submit.
Result<SubmitRequest> to_submit_request(const EmrStepConfig& step);

// The absolute path a definition location names: "/a/b.json",
// "file:///a/b.json" or "file://localhost/a/b.json" (percent-escapes
// decoded) -> "/a/b.json". kInvalidArgument for relative paths, remote
// hosts and other schemes, saying which are supported.
Result<std::string> local_definition_path(const std::string& location);

// The accepted forms in one paragraph, for error messages.
extern const char kAcceptedEmrSteps[];

}  // namespace kiln::server
