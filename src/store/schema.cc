// The job store's tables, as an ordered list of migrations. A migration is
// never edited once released: a change to the schema is a new entry at the
// end, and existing databases pick it up on their next open.
#include "store/schema.h"

#include <iterator>
#include <string>

namespace kiln::store::internal {
namespace {

struct Migration {
  int version;
  const char* sql;
};

// States and kinds are stored as their names (step_state_name() and so on),
// so the database reads well in the sqlite3 shell when a cluster misbehaves.
// Times are milliseconds since the epoch; 0 means "not yet".
constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE steps (
  -- AUTOINCREMENT: a seq is never reused, so list markers stay valid.
  seq               INTEGER PRIMARY KEY AUTOINCREMENT,
  id                TEXT NOT NULL UNIQUE,
  environment       TEXT NOT NULL,
  name              TEXT NOT NULL,
  state             TEXT NOT NULL,
  action_on_failure TEXT NOT NULL,
  action            TEXT NOT NULL,  -- JSON, as submitted
  layer             TEXT NOT NULL,
  version           INTEGER NOT NULL DEFAULT 0,
  tiles_total       INTEGER NOT NULL DEFAULT 0,
  created_ms        INTEGER NOT NULL,
  started_ms        INTEGER NOT NULL DEFAULT 0,
  ended_ms          INTEGER NOT NULL DEFAULT 0,
  failure_reason    TEXT,           -- NULL: no failure
  failure_message   TEXT NOT NULL DEFAULT '',
  failure_log_file  TEXT NOT NULL DEFAULT '',
  cancel_signal     TEXT NOT NULL DEFAULT '',
  cleaned           INTEGER NOT NULL DEFAULT 0  -- staging removed after FAILED/CANCELLED
);
CREATE INDEX steps_by_environment ON steps (environment, seq);
CREATE INDEX steps_by_state ON steps (state, environment, seq);
-- Keeps steps_to_clean() from scanning every step that ever ended.
CREATE INDEX steps_to_clean ON steps (cleaned, state);

CREATE TABLE tasks (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  step_id          TEXT NOT NULL REFERENCES steps (id),
  kind             TEXT NOT NULL CHECK (kind IN ('partition', 'commit')),
  idx              INTEGER NOT NULL,  -- partition index; -1 for the commit task
  state            TEXT NOT NULL,
  attempt          INTEGER NOT NULL DEFAULT 0,
  max_attempts     INTEGER NOT NULL,
  worker_id        TEXT NOT NULL DEFAULT '',
  lease_expires_ms INTEGER NOT NULL DEFAULT 0,
  not_before_ms    INTEGER NOT NULL DEFAULT 0,
  queued_ms        INTEGER NOT NULL,
  last_error       TEXT NOT NULL DEFAULT '',
  -- Progress of the current (LEASED) or final (DONE) attempt.
  tiles_done       INTEGER NOT NULL DEFAULT 0,
  bytes_read       INTEGER NOT NULL DEFAULT 0,
  bytes_written    INTEGER NOT NULL DEFAULT 0,
  UNIQUE (step_id, kind, idx)
);
CREATE INDEX tasks_by_state ON tasks (state, step_id);
CREATE INDEX tasks_by_worker ON tasks (worker_id, state);

CREATE TABLE workers (
  id            TEXT PRIMARY KEY,
  pid           INTEGER NOT NULL,
  host          TEXT NOT NULL,
  slots         INTEGER NOT NULL,
  registered_ms INTEGER NOT NULL,
  last_seen_ms  INTEGER NOT NULL,
  alive         INTEGER NOT NULL DEFAULT 1
);

-- Totals that must survive restarts (Prometheus counters never go down).
CREATE TABLE counters (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES ('lease_expiries', 0), ('task_retries', 0);
)sql"},
    // A step's progress as of its end, so reading a finished step (most of
    // any listing) needs no pass over its tasks. Steps that ended before
    // this migration get theirs from their tasks now.
    {2, R"sql(
ALTER TABLE steps ADD COLUMN final_tasks_total   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN final_tasks_done    INTEGER NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN final_tiles_done    INTEGER NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN final_bytes_read    INTEGER NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN final_bytes_written INTEGER NOT NULL DEFAULT 0;
UPDATE steps
   SET (final_tasks_total, final_tasks_done, final_tiles_done, final_bytes_read,
        final_bytes_written) =
       (SELECT COUNT(*),
               COALESCE(SUM(state = 'DONE'), 0),
               COALESCE(SUM(CASE WHEN state IN ('DONE', 'LEASED') THEN tiles_done END), 0),
               COALESCE(SUM(CASE WHEN state IN ('DONE', 'LEASED') THEN bytes_read END), 0),
               COALESCE(SUM(CASE WHEN state IN ('DONE', 'LEASED') THEN bytes_written END), 0)
          FROM tasks WHERE tasks.step_id = steps.id)
 WHERE state IN ('COMPLETED', 'CANCELLED', 'FAILED', 'INTERRUPTED');
)sql"},
    // What a step's tasks ran on: slot-seconds and their price (the node's
    // market price over its slots), added as each task attempt ends.
    {3, R"sql(
ALTER TABLE steps ADD COLUMN slot_seconds REAL NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN cost         REAL NOT NULL DEFAULT 0;
)sql"},
    // Jobs a batch system (Slurm) runs for a step's tasks, so a restarted
    // server finds the jobs it submitted instead of submitting them again.
    // job_id is the batch system's; `indexes` the partition indexes the job
    // covers as submitted ("0-7", "3,5"; '' for the commit job).
    {4, R"sql(
CREATE TABLE batch_jobs (
  job_id       TEXT PRIMARY KEY,
  step_id      TEXT NOT NULL REFERENCES steps (id),
  kind         TEXT NOT NULL,
  indexes      TEXT NOT NULL,
  submitted_ms INTEGER NOT NULL,
  ended        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX batch_jobs_open ON batch_jobs (ended, step_id);
)sql"},
    // A worker draws a key per process and sends it with every attempt to
    // register, so an attempt whose answer it never got (its read timed
    // out) and the retry that follows name one worker, not two (issue 14:
    // 500 local nodes left 176 duplicate live workers behind).
    {5, R"sql(
ALTER TABLE workers ADD COLUMN registration_key TEXT NOT NULL DEFAULT '';
CREATE INDEX workers_by_registration_key ON workers (registration_key, alive)
  WHERE registration_key <> '';
)sql"},
};

Result<int> user_version(Database& db) {
  KILN_ASSIGN_OR_RETURN(Query q, db.query("PRAGMA user_version"));
  KILN_ASSIGN_OR_RETURN(bool row, q.next());
  if (!row) return internal_error("job store '" + db.path() + "': PRAGMA user_version: no row");
  return static_cast<int>(q.int64(0));
}

}  // namespace

int latest_schema_version() { return std::end(kMigrations)[-1].version; }

Status migrate(Database& db) {
  for (const Migration& m : kMigrations) {
    KILN_ASSIGN_OR_RETURN(Transaction txn, Transaction::begin(db));
    KILN_ASSIGN_OR_RETURN(int current, user_version(db));
    if (current > latest_schema_version()) {
      return io_error("job store '" + db.path() + "' has schema version " +
                      std::to_string(current) + ", newer than this kiln's " +
                      std::to_string(latest_schema_version()) + ": use a newer kiln");
    }
    if (current >= m.version) continue;  // applied before (maybe by another process)
    Status st = db.exec(m.sql);
    if (!st.is_ok()) return st.with_context("schema migration " + std::to_string(m.version));
    // PRAGMA user_version is written in the database header inside this
    // transaction, so the tables and their version commit together.
    KILN_RETURN_IF_ERROR(db.exec("PRAGMA user_version = " + std::to_string(m.version)));
    KILN_RETURN_IF_ERROR(txn.commit());
  }
  return Status::ok();
}

}  // namespace kiln::store::internal
