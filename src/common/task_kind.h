// What a task of a step does: warp and encode one partition of the plan, or
// commit (reduce the pyramid's top and publish the layer) once all partitions
// are done. One definition for the job store, which queues tasks, and the
// ingest engine, which runs them; neither depends on the other.
#pragma once

#include <optional>
#include <string_view>

namespace kiln {

enum class TaskKind { kPartition, kCommit };

// "partition" or "commit": the spelling in task specs, the job store's
// tasks table and the worker protocol.
constexpr const char* task_kind_name(TaskKind k) {
  return k == TaskKind::kPartition ? "partition" : "commit";
}

// The kind `name` spells (task_kind_name's names, exactly); nullopt for any
// other text.
constexpr std::optional<TaskKind> parse_task_kind(std::string_view name) {
  if (name == task_kind_name(TaskKind::kPartition)) return TaskKind::kPartition;
  if (name == task_kind_name(TaskKind::kCommit)) return TaskKind::kCommit;
  return std::nullopt;
}

}  // namespace kiln
