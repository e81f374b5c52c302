// RAII owners of SQLite's C handles for the job store: Database (one
// connection plus its cache of prepared statements), Query (a borrowed cached
// statement, reset when it goes out of scope) and Transaction (BEGIN
// IMMEDIATE ... COMMIT, rolled back unless committed). Internal to src/store.
//
// None of these lock: JobStore serialises every use of a Database with its
// mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace kiln::store::internal {

class Database;

// A prepared statement borrowed from Database's cache for one use: bind,
// step through the rows, and on destruction the statement is reset and its
// bindings cleared, so it holds no read snapshot and no stale value for the
// next user. Move-only.
class Query {
 public:
  Query(Query&& other) noexcept;
  Query& operator=(Query&&) = delete;
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  ~Query();

  // Binds parameter `i` (1-based). A failure (out of memory, bad index) is
  // kept and reported by the next next()/run().
  Query& bind(int i, int64_t value);
  Query& bind(int i, const std::string& value);
  Query& bind_real(int i, double value);
  Query& bind_null(int i);

  // Steps once: true when a row is ready to read, false when done.
  Result<bool> next();
  // Steps until done, ignoring rows; for INSERT/UPDATE/DELETE.
  Status run();
  // Rows changed by the last run() (sqlite3_changes).
  int64_t changes() const;

  // Columns of the current row (0-based). NULL reads as 0 / "".
  int64_t int64(int col) const;
  double real(int col) const;
  std::string text(int col) const;
  bool is_null(int col) const;

 private:
  friend class Database;
  Query(Database* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}

  Database* db_;
  sqlite3_stmt* stmt_;
  int bind_rc_ = 0;  // SQLITE_OK
};

// One connection to a database file. Not thread-safe (see file comment).
class Database {
 public:
  // Opens (creating if needed) the file at `path` read-write.
  static Result<std::unique_ptr<Database>> open(const std::string& path);
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  // Runs one or more statements that return no rows we need (pragmas, DDL).
  Status exec(const std::string& sql);
  // The cached prepared statement for `sql`, prepared on first use. The
  // cache is keyed by the text, so callers pass fixed SQL and bind values.
  Result<Query> query(const std::string& sql);

  // A Status for SQLite result code `rc`, naming the database file and
  // what we were doing; carries sqlite3_errmsg when the code is the last
  // error of this connection.
  Status error(int rc, const std::string& what) const;

  const std::string& path() const { return path_; }
  sqlite3* handle() const { return db_; }

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  sqlite3* db_;
  std::string path_;
  // Finalised in ~Database before the connection closes.
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

// BEGIN IMMEDIATE on construction (taking the write lock up front, so a
// transaction that reads then writes never fails half way with SQLITE_BUSY
// after busy_timeout would have waited), ROLLBACK on destruction unless
// commit() succeeded. Move-only.
class Transaction {
 public:
  static Result<Transaction> begin(Database& db);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  Status commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;  // null once committed or moved from
};

// A read transaction (BEGIN DEFERRED ... COMMIT): every query inside sees
// one snapshot, and the connection takes SQLite's file locks once instead of
// once per statement (a list page reads the steps and their progress).
// Nothing is written through it, so ending it cannot lose anything; an
// error while ending it is dropped. Move-only.
class ReadSnapshot {
 public:
  static Result<ReadSnapshot> begin(Database& db);
  ReadSnapshot(ReadSnapshot&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  ReadSnapshot& operator=(ReadSnapshot&&) = delete;
  ReadSnapshot(const ReadSnapshot&) = delete;
  ReadSnapshot& operator=(const ReadSnapshot&) = delete;
  ~ReadSnapshot();

 private:
  explicit ReadSnapshot(Database* db) : db_(db) {}
  Database* db_;  // null once moved from
};

}  // namespace kiln::store::internal
