// One task of a cluster step (docs/cluster.md, "Task processes"): a
// partition, or the final reduce + commit. Each runs in its own process
// (`kiln task run`), possibly several times: a worker may die or a lease
// lapse, so both kinds are idempotent.
//
// The processes of one step share the staging directory named by the step id
// (<catalog>/<env>/<layer>/.staging/<step id>/). A partition task writes its
// tiles there and its PartitionResult as _results/<index>.json; the commit
// task reads those, builds the levels below the partitions, writes metadata
// and publishes the version.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "common/cancel.h"
#include "common/status.h"
#include "common/task_kind.h"
#include "ingest/definition.h"
#include "ingest/partition.h"
#include "ingest/progress.h"

namespace kiln::ingest {

using TaskKind = ::kiln::TaskKind;  // defined once, in common/task_kind.h

// What `kiln task run --spec FILE` reads.
struct TaskSpec {
  std::string step_id;  // also the staging id
  int64_t task_id = 0;
  int attempt = 0;
  TaskKind kind = TaskKind::kPartition;
  int64_t index = 0;  // partition index; -1 for the commit task
  IngestDefinition definition;
  // make_plan's PlanOptions::threads. Every task of a step must use the same
  // value, or their plans (partition cuts) differ.
  int plan_threads = 1;
};

// Parses a spec; kInvalidArgument naming the field on any defect.
Result<TaskSpec> parse_task_spec(const nlohmann::json& j);
// Reads and parses a spec file.
Result<TaskSpec> load_task_spec(const std::string& path);
// The spec's JSON form: parse_task_spec(task_spec_to_json(s)) == s.
nlohmann::json task_spec_to_json(const TaskSpec& spec);

// What the commit task reports (its JSON form is the task's result).
struct CommitResult {
  std::string layer;
  int version = 0;
  int64_t tiles = 0;   // all levels
  uint64_t bytes = 0;  // all levels
  // True when an earlier attempt had already committed this step's version
  // and this run only found it.
  bool already_committed = false;
};
nlohmann::json to_json(const CommitResult& r);

// Where a partition task leaves its result in staging: "_results/<index>.json".
std::string partition_result_path(int64_t index);

// Runs partition spec.index: plans, joins the step's staging directory,
// writes the partition's tiles and partial, then its result file. A re-run
// rewrites the same files. Progress counts this partition's tiles;
// kCancelled once `cancel` fires (checked between tiles).
// REQUIRES: spec.kind == kPartition.
Result<PartitionResult> run_partition_task(const TaskSpec& spec, Progress* progress,
                                           const CancelToken& cancel);

// Reduces, writes layer.xml and metadata (with "step_id"), and publishes the
// staged version. If this step's version was already published (an earlier
// attempt died after its commit), returns that version without writing
// anything. Errors: a missing partition result names its index; a staging
// directory that is gone with no version of this step is kNotFound.
// REQUIRES: spec.kind == kCommit.
Result<CommitResult> run_commit_task(const TaskSpec& spec, Progress* progress,
                                     const CancelToken& cancel);

// Runs whichever task the spec names and returns its result JSON (the
// PartitionResult's, or the CommitResult's).
Result<nlohmann::json> run_task(const TaskSpec& spec, Progress* progress,
                                const CancelToken& cancel);

// The stable "reason" a failed task reports for a Status code
// ("SOURCE_ERROR", "CATALOG_ERROR", ...); the server records it as the
// step's failure reason.
const char* task_failure_reason(StatusCode code);

// Whether a task of `def` that failed with `code` would fail the same way on
// every attempt, so the server should not retry it: true for kInputError (a
// corrupt block, a missing or unreadable source, no georeference) when
// every source is a local file; a source read over the network may fail
// once and not the next time. Crashes, signals and lost leases never reach
// here and stay retried.
bool task_failure_is_permanent(StatusCode code, const IngestDefinition& def);

}  // namespace kiln::ingest
