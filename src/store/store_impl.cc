// JobStore::Impl's helpers: reading steps and tasks from rows, and the
// transitions several public operations share.
#include "store/store_impl.h"

#include <unordered_map>

namespace kiln::store {
namespace {

using internal::Query;

Result<TaskState> parse_task_state(const std::string& name) {
  for (TaskState s : {TaskState::kPending, TaskState::kLeased, TaskState::kDone, TaskState::kFailed,
                      TaskState::kCancelled}) {
    if (name == task_state_name(s)) return s;
  }
  return internal_error("job store holds an unknown task state '" + name + "'");
}

// One row of select_steps(), without progress.
Result<Step> step_from_row(const Query& q, bool parse_action) {
  Step s;
  s.seq = q.int64(0);
  s.id = q.text(1);
  s.environment = q.text(2);
  s.name = q.text(3);
  Result<StepState> state = parse_step_state(q.text(4));
  if (!state.is_ok()) return internal_error("step " + s.id + ": " + state.status().message());
  s.state = *state;
  s.action_on_failure = q.text(5);
  if (parse_action) {
    s.action = nlohmann::json::parse(q.text(6), nullptr, /*allow_exceptions=*/false);
    if (s.action.is_discarded())
      return internal_error("step " + s.id + ": stored action is not JSON");
  }
  s.layer = q.text(7);
  s.version = static_cast<int>(q.int64(8));
  s.progress.tiles_total = q.int64(9);
  s.created_ms = q.int64(10);
  s.started_ms = q.int64(11);
  s.ended_ms = q.int64(12);
  if (!q.is_null(13)) s.failure = Failure{q.text(13), q.text(14), q.text(15)};
  s.cancel_signal = q.text(16);
  s.slot_seconds = q.real(22);
  s.cost = q.real(23);
  if (is_terminal(s.state)) {
    s.progress.tasks_total = q.int64(17);
    s.progress.tasks_done = q.int64(18);
    s.progress.tiles_done = q.int64(19);
    s.progress.bytes_read = static_cast<uint64_t>(q.int64(20));
    s.progress.bytes_written = static_cast<uint64_t>(q.int64(21));
  }
  return s;
}

Result<Task> task_from_row(const Query& q) {
  Task t;
  t.id = q.int64(0);
  t.step_id = q.text(1);
  t.kind = parse_task_kind(q.text(2)).value_or(TaskKind::kPartition);
  t.index = q.int64(3);
  KILN_ASSIGN_OR_RETURN(t.state, parse_task_state(q.text(4)));
  t.attempt = static_cast<int>(q.int64(5));
  t.max_attempts = static_cast<int>(q.int64(6));
  t.worker_id = q.text(7);
  t.lease_expires_ms = q.int64(8);
  t.not_before_ms = q.int64(9);
  t.queued_ms = q.int64(10);
  t.last_error = q.text(11);
  return t;
}

}  // namespace

std::string select_steps(const std::string& rest) {
  return std::string("SELECT ") + kStepColumns + " FROM steps " + rest;
}

std::string select_tasks(const std::string& rest) {
  return std::string("SELECT ") + kTaskColumns + " FROM tasks " + rest;
}

Result<std::optional<Step>> JobStore::Impl::find_step(const std::string& id, bool with_progress) {
  KILN_ASSIGN_OR_RETURN(Query q, db->query(select_steps("WHERE id = ?1")));
  q.bind(1, id);
  KILN_ASSIGN_OR_RETURN(std::vector<Step> steps, read_steps(q, true, with_progress));
  if (steps.empty()) return std::optional<Step>();
  return std::optional<Step>(std::move(steps.front()));
}

Result<Step> JobStore::Impl::step_in(const std::string& environment, const std::string& id) {
  KILN_ASSIGN_OR_RETURN(Query q, db->query(select_steps("WHERE id = ?1 AND environment = ?2")));
  q.bind(1, id).bind(2, environment);
  KILN_ASSIGN_OR_RETURN(std::vector<Step> steps, read_steps(q));
  // The same words whether the id never existed or is another
  // environment's: a caller must not learn which.
  if (steps.empty()) return not_found("step '" + id + "' does not exist");
  return std::move(steps.front());
}

Result<int64_t> JobStore::Impl::count_steps(const std::string& environment, StepState state) {
  KILN_ASSIGN_OR_RETURN(
      Query q, db->query("SELECT COUNT(*) FROM steps WHERE state = ?1 AND environment = ?2"));
  q.bind(1, std::string(step_state_name(state))).bind(2, environment);
  KILN_ASSIGN_OR_RETURN(bool row, q.next());
  return row ? q.int64(0) : 0;
}

Result<std::vector<Step>> JobStore::Impl::read_steps(Query& q, bool parse_action,
                                                     bool with_progress) {
  std::vector<Step> steps;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, q.next());
    if (!row) break;
    KILN_ASSIGN_OR_RETURN(Step s, step_from_row(q, parse_action));
    steps.push_back(std::move(s));
  }
  if (with_progress) KILN_RETURN_IF_ERROR(fill_progress(steps));
  return steps;
}

// A step's progress from its tasks: a LEASED task counts its current
// attempt's heartbeat figures, a DONE task its final ones; a task that goes
// back to PENDING drops to zero, as its re-run starts again from its first
// tile. Selects, per step_id, tasks_total, tasks_done, tiles_done,
// bytes_read, bytes_written.
constexpr const char* kProgressColumns =
    "COUNT(*), COALESCE(SUM(state = 'DONE'), 0), "
    "COALESCE(SUM(CASE WHEN state IN ('DONE', 'LEASED') THEN tiles_done END), 0), "
    "COALESCE(SUM(CASE WHEN state IN ('DONE', 'LEASED') THEN bytes_read END), 0), "
    "COALESCE(SUM(CASE WHEN state IN ('DONE', 'LEASED') THEN bytes_written END), 0)";

Status JobStore::Impl::fill_progress(std::vector<Step>& steps) {
  // The ids travel as one JSON array, so one cached statement serves pages
  // of any size; step ids are "s-" and [0-9A-Z] and need no escaping.
  std::string ids;
  std::unordered_map<std::string, Step*> by_id;
  for (Step& s : steps) {
    if (is_terminal(s.state)) continue;
    ids += (ids.empty() ? "[\"" : ",\"") + s.id + "\"";
    by_id.emplace(s.id, &s);
  }
  if (ids.empty()) return Status::ok();
  ids += "]";
  static const std::string sql = std::string("SELECT step_id, ") + kProgressColumns +
                                 " FROM tasks WHERE step_id IN (SELECT value FROM json_each(?1))"
                                 " GROUP BY step_id";
  KILN_ASSIGN_OR_RETURN(Query q, db->query(sql));
  q.bind(1, ids);
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, q.next());
    if (!row) break;
    auto it = by_id.find(q.text(0));
    if (it == by_id.end()) continue;
    StepProgress& p = it->second->progress;
    p.tasks_total = q.int64(1);
    p.tasks_done = q.int64(2);
    p.tiles_done = q.int64(3);
    p.bytes_read = static_cast<uint64_t>(q.int64(4));
    p.bytes_written = static_cast<uint64_t>(q.int64(5));
  }
  return Status::ok();
}

Status JobStore::Impl::freeze_progress(const std::string& step_id) {
  static const std::string sql =
      std::string(
          "UPDATE steps SET (final_tasks_total, final_tasks_done, final_tiles_done,"
          " final_bytes_read, final_bytes_written) = (SELECT ") +
      kProgressColumns + " FROM tasks WHERE step_id = ?1) WHERE id = ?1";
  KILN_ASSIGN_OR_RETURN(Query q, db->query(sql));
  q.bind(1, step_id);
  return q.run();
}

Result<Task> JobStore::Impl::task(int64_t id) {
  KILN_ASSIGN_OR_RETURN(Query q, db->query(select_tasks("WHERE id = ?1")));
  q.bind(1, id);
  KILN_ASSIGN_OR_RETURN(std::vector<Task> tasks, read_tasks(q));
  if (tasks.empty()) return not_found("task " + std::to_string(id) + " does not exist");
  return std::move(tasks.front());
}

Result<std::vector<Task>> JobStore::Impl::read_tasks(Query& q) {
  std::vector<Task> tasks;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, q.next());
    if (!row) break;
    KILN_ASSIGN_OR_RETURN(Task t, task_from_row(q));
    tasks.push_back(std::move(t));
  }
  return tasks;
}

Status JobStore::Impl::end_step(const std::string& step_id, StepState state, const Failure* failure,
                                int64_t now_ms) {
  {
    KILN_ASSIGN_OR_RETURN(Query q, db->query(R"sql(
UPDATE steps SET state = ?2, ended_ms = ?3,
                 failure_reason = ?4, failure_message = ?5, failure_log_file = ?6
 WHERE id = ?1)sql"));
    q.bind(1, step_id).bind(2, std::string(step_state_name(state))).bind(3, now_ms);
    if (failure != nullptr) {
      q.bind(4, failure->reason).bind(5, failure->message).bind(6, failure->log_file);
    } else {
      q.bind_null(4).bind(5, std::string()).bind(6, std::string());
    }
    KILN_RETURN_IF_ERROR(q.run());
  }
  {
    KILN_ASSIGN_OR_RETURN(
        Query q,
        db->query("UPDATE tasks SET state = 'CANCELLED' WHERE step_id = ?1 AND state = 'PENDING'"));
    q.bind(1, step_id);
    KILN_RETURN_IF_ERROR(q.run());
  }
  return freeze_progress(step_id);
}

Status JobStore::Impl::release_lease(const Task& t, int64_t now_ms) {
  KILN_ASSIGN_OR_RETURN(Query q, db->query(R"sql(
UPDATE tasks
   SET state = CASE (SELECT state FROM steps WHERE id = tasks.step_id)
                 WHEN 'RUNNING' THEN 'PENDING' ELSE 'CANCELLED' END,
       worker_id = '', lease_expires_ms = 0, queued_ms = ?2,
       tiles_done = 0, bytes_read = 0, bytes_written = 0
 WHERE id = ?1 AND state = 'LEASED')sql"));
  q.bind(1, t.id).bind(2, now_ms);
  return q.run();
}

Status JobStore::Impl::add_to_counter(const char* name, int64_t delta) {
  KILN_ASSIGN_OR_RETURN(Query q,
                        db->query("UPDATE counters SET value = value + ?2 WHERE name = ?1"));
  q.bind(1, std::string(name)).bind(2, delta);
  return q.run();
}

Status JobStore::Impl::check_live_worker(const std::string& worker_id, int64_t now_ms) {
  {
    KILN_ASSIGN_OR_RETURN(Query q, db->query("SELECT alive FROM workers WHERE id = ?1"));
    q.bind(1, worker_id);
    KILN_ASSIGN_OR_RETURN(bool row, q.next());
    if (!row) return not_found("worker '" + worker_id + "' is not registered");
    if (q.int64(0) == 0) return not_found("worker '" + worker_id + "' was declared gone");
  }
  KILN_ASSIGN_OR_RETURN(Query q, db->query("UPDATE workers SET last_seen_ms = ?2 WHERE id = ?1"));
  q.bind(1, worker_id).bind(2, now_ms);
  return q.run();
}

Status JobStore::Impl::start_attempt(int64_t task_id, const std::string& worker_id,
                                     int64_t expires_ms) {
  KILN_ASSIGN_OR_RETURN(Query q, db->query(R"sql(
UPDATE tasks SET state = 'LEASED', attempt = attempt + 1, worker_id = ?2,
                 lease_expires_ms = ?3, tiles_done = 0, bytes_read = 0, bytes_written = 0
 WHERE id = ?1)sql"));
  q.bind(1, task_id).bind(2, worker_id).bind(3, expires_ms);
  return q.run();
}

}  // namespace kiln::store
