// Database, Query and Transaction: the only code in src/store that touches
// SQLite handles directly.
#include "store/sqlite.h"

#include <sqlite3.h>

#include <cassert>
#include <mutex>

#include "common/log.h"

namespace kiln::store::internal {
namespace {

// Failures a user can act on (disk full, permissions, a damaged or foreign
// file, another process holding the lock too long) are I/O errors; anything
// else means Kiln asked SQLite for something wrong.
StatusCode code_for(int rc) {
  switch (rc & 0xff) {  // primary code; extended codes keep it in the low byte
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_PERM:
      return StatusCode::kIOError;
    default:
      return StatusCode::kInternal;
  }
}

}  // namespace

// --- Query -----------------------------------------------------------------

Query::Query(Query&& other) noexcept
    : db_(other.db_), stmt_(other.stmt_), bind_rc_(other.bind_rc_) {
  other.stmt_ = nullptr;
}

Query::~Query() {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Query& Query::bind(int i, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, i, static_cast<sqlite3_int64>(value));
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Query& Query::bind_real(int i, double value) {
  int rc = sqlite3_bind_double(stmt_, i, value);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Query& Query::bind(int i, const std::string& value) {
  int rc =
      sqlite3_bind_text(stmt_, i, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Query& Query::bind_null(int i) {
  int rc = sqlite3_bind_null(stmt_, i);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Result<bool> Query::next() {
  if (bind_rc_ != SQLITE_OK) return db_->error(bind_rc_, "binding a value");
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->error(rc, "running a statement");
}

Status Query::run() {
  for (;;) {
    Result<bool> row = next();
    if (!row.is_ok()) return row.status();
    if (!*row) return Status::ok();
  }
}

int64_t Query::changes() const { return sqlite3_changes64(sqlite3_db_handle(stmt_)); }

int64_t Query::int64(int col) const { return sqlite3_column_int64(stmt_, col); }

double Query::real(int col) const { return sqlite3_column_double(stmt_, col); }

std::string Query::text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

bool Query::is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

// --- Database --------------------------------------------------------------

Result<std::unique_ptr<Database>> Database::open(const std::string& path) {
  // SQLite's memory statistics take one process-wide mutex on every
  // allocation, which serialises stores on different threads (the
  // simulator's strategies) and are read by nobody here. The setting is
  // accepted only before SQLite initialises; if something else in the
  // process (GDAL's GeoPackage driver) initialised it first, the call fails
  // harmlessly and the statistics stay on.
  static std::once_flag memstatus_off;
  std::call_once(memstatus_off, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
  sqlite3* db = nullptr;
  // NOMUTEX: JobStore's mutex already serialises the connection. SQLite's
  // unix VFS opens its files O_CLOEXEC, so task processes forked by a worker
  // in this process never inherit them.
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Status(code_for(rc), "cannot open job store '" + path + "': " + msg);
  }
  sqlite3_extended_result_codes(db, 1);
  return std::unique_ptr<Database>(new Database(db, path));
}

Database::~Database() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

Status Database::exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::ok();
  std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  return Status(code_for(rc), "job store '" + path_ + "': " + msg);
}

Result<Query> Database::query(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()) + 1,
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return error(rc, "preparing '" + sql + "'");
    it = cache_.emplace(sql, stmt).first;
  }
  // A Query left un-reset would hold its statement busy; Query's destructor
  // makes that impossible, so a cached statement is always idle here.
  assert(!sqlite3_stmt_busy(it->second));
  return Query(this, it->second);
}

Status Database::error(int rc, const std::string& what) const {
  std::string msg = sqlite3_errcode(db_) == rc ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  return Status(code_for(rc), "job store '" + path_ + "': " + what + ": " + msg);
}

// --- Transaction -----------------------------------------------------------

Result<Transaction> Transaction::begin(Database& db) {
  KILN_ASSIGN_OR_RETURN(Query q, db.query("BEGIN IMMEDIATE"));
  KILN_RETURN_IF_ERROR(q.run());
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_ == nullptr) return;
  // The caller is already returning an error; a failed ROLLBACK leaves
  // SQLite to roll back on the next open, and is logged.
  if (sqlite3_get_autocommit(db_->handle()) == 0) {
    Result<Query> q = db_->query("ROLLBACK");
    Status st = q.is_ok() ? q->run() : q.status();
    if (!st.is_ok()) log::warn("job store: ROLLBACK failed: " + st.message());
  }
}

Status Transaction::commit() {
  assert(db_ != nullptr);
  KILN_ASSIGN_OR_RETURN(Query q, db_->query("COMMIT"));
  KILN_RETURN_IF_ERROR(q.run());
  db_ = nullptr;
  return Status::ok();
}

// --- ReadSnapshot ----------------------------------------------------------

Result<ReadSnapshot> ReadSnapshot::begin(Database& db) {
  KILN_ASSIGN_OR_RETURN(Query q, db.query("BEGIN DEFERRED"));
  KILN_RETURN_IF_ERROR(q.run());
  return ReadSnapshot(&db);
}

ReadSnapshot::~ReadSnapshot() {
  if (db_ == nullptr || sqlite3_get_autocommit(db_->handle()) != 0) return;
  Result<Query> q = db_->query("COMMIT");
  Status st = q.is_ok() ? q->run() : q.status();
  if (!st.is_ok()) log::warn("job store: ending a read snapshot failed: " + st.message());
}

}  // namespace kiln::store::internal
