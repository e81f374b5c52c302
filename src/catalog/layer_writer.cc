// The directory-backed LayerWriter: staging, stale-staging cleanup and the
// atomic publish of a version (see catalog.h for the layout).
#include "catalog/layer_writer.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <system_error>
#include <unordered_set>
#include <utility>

#include <nlohmann/json.hpp>

#include "catalog/file_lock.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/thread_annotations.h"

namespace kiln::catalog::internal {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string errno_text() { return std::strerror(errno); }

Status fs_error(const std::string& action, const fs::path& path, const std::error_code& ec) {
  return io_error("cannot " + action + " '" + path.string() + "': " + ec.message());
}

// Writes `bytes` to `path`, replacing it. With `durable`, fsyncs the file
// before closing so that a following rename publishes complete content.
Status write_whole_file(const fs::path& path, std::string_view bytes, bool durable) {
  const std::string name = path.string();
  os::Fd fd(::open(name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return io_error("cannot create '" + name + "': " + errno_text());
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd.get(), p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot write '" + name + "': " + errno_text());
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (durable && ::fsync(fd.get()) != 0) {
    return io_error("cannot fsync '" + name + "': " + errno_text());
  }
  return fd.close(name);
}

// Flushes the whole filesystem that holds `dir`. Tiles are written without
// fsync (one per tile would dominate an ingest of small tiles), so one syncfs
// before publishing keeps a power loss from leaving `current` pointing at
// tiles that never reached the disk.
Status sync_filesystem(const fs::path& dir) {
  const std::string name = dir.string();
  os::Fd fd(::open(name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return io_error("cannot open directory '" + name + "': " + errno_text());
  if (::syncfs(fd.get()) != 0) {
    return io_error("cannot flush the filesystem of '" + name + "': " + errno_text());
  }
  return Status::ok();
}

// Writes `bytes` to a temporary file beside `path`, then renames it over
// `path`: a reader sees the old file or the whole new one.
Status replace_file(const fs::path& path, std::string_view bytes, bool durable) {
  static std::atomic<uint64_t> counter{0};
  fs::path tmp = path;
  tmp += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  Status st = write_whole_file(tmp, bytes, durable);
  if (st.is_ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    st = io_error("cannot rename '" + tmp.string() + "' to '" + path.string() +
                  "': " + errno_text());
  }
  if (!st.is_ok()) ::unlink(tmp.c_str());
  return st;
}

std::string this_host() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "";
  return buf;
}

bool pid_alive(long pid) {
  if (pid <= 0) return true;  // unreadable owner: keep the directory
  // EPERM: the pid exists but belongs to another user.
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

fs::path owner_path(const fs::path& staging_root, const std::string& id) {
  return staging_root / ("." + id + ".owner");
}

struct Owner {
  long pid = 0;
  std::string host;
  bool shared = true;
};

// Reads an owner file; nullopt if it is unreadable or malformed (written by
// something else: leave its directory alone).
std::optional<Owner> read_owner(const fs::path& path) {
  json doc = json::parse(std::ifstream(path), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return std::nullopt;
  auto pid = doc.find("pid");
  auto host = doc.find("host");
  auto shared = doc.find("shared");
  if (pid == doc.end() || !pid->is_number_integer() || host == doc.end() || !host->is_string() ||
      shared == doc.end() || !shared->is_boolean()) {
    return std::nullopt;
  }
  return Owner{pid->get<long>(), host->get<std::string>(), shared->get<bool>()};
}

// Removes private staging directories whose owner process on this host is
// gone. Never touches `keep_id`, shared directories, directories of other
// hosts or of live processes, nor ones whose owner file cannot be read
// (scan_staging's `live`).
void remove_stale_staging(const fs::path& layer_dir, const std::string& keep_id) {
  auto entries = scan_staging(layer_dir);
  if (!entries.is_ok()) {
    log::warn("cannot scan for stale staging: " + entries.status().message());
    return;
  }
  const fs::path staging_root = layer_dir / kStagingDirName;
  for (const StagingEntry& e : *entries) {
    if (e.live || e.id == keep_id) continue;
    if (Status st = remove_staging(layer_dir, e.id); !st.is_ok()) {
      log::warn("cannot remove stale staging directory: " + st.message());
      continue;
    }
    log::info("removed stale staging directory '" + (staging_root / e.id).string() + "': " + e.why);
  }
}

class DirLayerWriter final : public LayerWriter {
 public:
  DirLayerWriter(fs::path layer_dir, std::string id, bool shared)
      : layer_dir_(std::move(layer_dir)),
        staging_root_(layer_dir_ / kStagingDirName),
        staging_(staging_root_ / id),
        staging_str_(staging_.string()),
        id_(std::move(id)),
        shared_(shared) {}

  // A shared staging directory outlives this writer: other processes may
  // still be writing it (see open_layer_writer).
  ~DirLayerWriter() override {
    if (!shared_) abort();
  }

  const std::string& staging_dir() const override { return staging_str_; }

  Status write_tile(int z, int64_t x, int64_t y, std::string_view ext,
                    std::string_view bytes) override;
  Status write_file(std::string_view relpath, std::string_view bytes) override;
  Result<std::string> read_file(std::string_view relpath) const override;
  Status remove(std::string_view relpath) override EXCLUDES(dirs_mu_);
  Result<int> commit(nlohmann::json metadata) override;
  void abort() override;

 private:
  enum class State { kOpen, kCommitted, kAborted };

  Status check_open() const;
  // create_directories for a tile column, remembered so that the thousands
  // of tiles of one column cost one stat, not one per tile.
  Status ensure_tile_dir(const fs::path& dir, const std::string& key) EXCLUDES(dirs_mu_);
  // Points `current` at `version` by renaming a new symlink over it.
  Status swap_current(int version);

  const fs::path layer_dir_;
  const fs::path staging_root_;
  const fs::path staging_;
  const std::string staging_str_;
  const std::string id_;
  const bool shared_;
  std::atomic<State> state_{State::kOpen};
  Mutex dirs_mu_;
  std::unordered_set<std::string> created_dirs_ GUARDED_BY(dirs_mu_);
};

Status DirLayerWriter::check_open() const {
  switch (state_.load()) {
    case State::kOpen:
      return Status::ok();
    case State::kCommitted:
      return internal_error("staging '" + staging_str_ + "' is already committed");
    case State::kAborted:
      return cancelled("staging '" + staging_str_ + "' was aborted");
  }
  return Status::ok();
}

Status DirLayerWriter::ensure_tile_dir(const fs::path& dir, const std::string& key) {
  {
    MutexLock lock(&dirs_mu_);
    if (created_dirs_.count(key) != 0) return Status::ok();
  }
  // Outside the lock: two threads may both create it, which
  // create_directories tolerates (an existing directory is not an error).
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fs_error("create directory", dir, ec);
  MutexLock lock(&dirs_mu_);
  created_dirs_.insert(key);
  return Status::ok();
}

Status DirLayerWriter::write_tile(int z, int64_t x, int64_t y, std::string_view ext,
                                  std::string_view bytes) {
  KILN_RETURN_IF_ERROR(check_open());
  if (z < 0 || x < 0 || y < 0) {
    return invalid_argument("tile " + std::to_string(z) + "/" + std::to_string(x) + "/" +
                            std::to_string(y) + " has a negative coordinate");
  }
  bool ext_ok = !ext.empty() && ext.size() <= 16 && std::all_of(ext.begin(), ext.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  });
  if (!ext_ok) {
    return invalid_argument("tile extension '" + std::string(ext) +
                            "' is not allowed: use 1-16 letters or digits");
  }
  const std::string key = std::to_string(z) + "/" + std::to_string(x);
  const fs::path dir = staging_ / key;
  KILN_RETURN_IF_ERROR(ensure_tile_dir(dir, key));
  // Written in place: staging is invisible to readers, and a retried
  // partition rewrites the same bytes.
  return write_whole_file(dir / (std::to_string(y) + "." + std::string(ext)), bytes,
                          /*durable=*/false);
}

Status DirLayerWriter::write_file(std::string_view relpath, std::string_view bytes) {
  KILN_RETURN_IF_ERROR(check_open());
  KILN_RETURN_IF_ERROR(validate_relpath(relpath));
  const fs::path path = staging_ / relpath;
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return fs_error("create directory", path.parent_path(), ec);
  // Through a rename: another process (a reduce task) may read it while a
  // retried partition rewrites it.
  return replace_file(path, bytes, /*durable=*/false);
}

Result<std::string> DirLayerWriter::read_file(std::string_view relpath) const {
  KILN_RETURN_IF_ERROR(validate_relpath(relpath));
  const std::string path = (staging_ / relpath).string();
  os::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return not_found("file '" + path + "' does not exist");
    return io_error("cannot open '" + path + "': " + errno_text());
  }
  std::string out;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot read '" + path + "': " + errno_text());
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status DirLayerWriter::remove(std::string_view relpath) {
  KILN_RETURN_IF_ERROR(check_open());
  KILN_RETURN_IF_ERROR(validate_relpath(relpath));
  const fs::path path = staging_ / relpath;
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) return fs_error("remove", path, ec);
  // Tile directories under `path` may be gone now.
  MutexLock lock(&dirs_mu_);
  created_dirs_.clear();
  return Status::ok();
}

Status DirLayerWriter::swap_current(int version) { return point_current(layer_dir_, version); }

Result<int> DirLayerWriter::commit(nlohmann::json metadata) {
  KILN_RETURN_IF_ERROR(check_open());
  if (metadata.is_null()) metadata = json::object();
  if (!metadata.is_object()) {
    return invalid_argument("metadata for '" + staging_str_ + "' must be a JSON object, not " +
                            metadata.type_name());
  }
  std::error_code ec;
  if (!fs::is_directory(staging_, ec)) {
    return not_found("staging directory '" + staging_str_ +
                     "' does not exist (committed or aborted by another writer?)");
  }

  // Before the lock: flushing can take a while and needs no exclusion.
  KILN_RETURN_IF_ERROR(sync_filesystem(staging_));

  KILN_ASSIGN_OR_RETURN(FileLock lock, FileLock::acquire((layer_dir_ / kLockFileName).string()));
  KILN_ASSIGN_OR_RETURN(const int version, next_version(layer_dir_));
  metadata["version"] = version;
  metadata["created_at"] = utc_now_iso8601();

  const fs::path meta_path = staging_ / kMetadataFileName;
  KILN_RETURN_IF_ERROR(replace_file(meta_path, metadata.dump(2) + "\n", /*durable=*/true));
  const fs::path versions_dir = layer_dir_ / kVersionsDirName;
  fs::create_directories(versions_dir, ec);
  if (ec) {
    Status st = fs_error("create directory", versions_dir, ec);
    fs::remove(meta_path, ec);
    return st;
  }
  const fs::path version_dir = versions_dir / version_name(version);
  if (::rename(staging_.c_str(), version_dir.c_str()) != 0) {
    Status st = io_error("cannot rename '" + staging_str_ + "' to '" + version_dir.string() +
                         "': " + errno_text());
    fs::remove(meta_path, ec);
    return st;
  }

  // Until `current` moves, a failure puts the staging directory back, so the
  // previous version stays current and the caller can retry or abort.
  Status st = sync_dir(versions_dir);
  if (st.is_ok()) st = sync_dir(staging_root_);
  if (st.is_ok()) st = swap_current(version);
  if (!st.is_ok()) {
    if (::rename(version_dir.c_str(), staging_.c_str()) != 0) {
      log::error("cannot move '" + version_dir.string() + "' back to '" + staging_str_ +
                 "': " + errno_text() + "; remove it by hand");
    } else {
      fs::remove(meta_path, ec);
    }
    return st;
  }
  state_ = State::kCommitted;

  // Published: readers see the new version already, so later failures only
  // weaken durability or leave bookkeeping behind; they do not fail the commit.
  if (Status s = sync_dir(layer_dir_); !s.is_ok()) log::warn(s.message());
  fs::remove(owner_path(staging_root_, id_), ec);
  return version;
}

void DirLayerWriter::abort() {
  State expected = State::kOpen;
  if (!state_.compare_exchange_strong(expected, State::kAborted)) return;
  std::error_code ec;
  fs::remove_all(staging_, ec);
  if (ec) {
    log::warn("cannot remove staging directory '" + staging_str_ + "': " + ec.message());
    return;  // keep the owner file, so a later begin() retries the cleanup
  }
  fs::remove(owner_path(staging_root_, id_), ec);
}

// Records who writes `id`, so that a later begin() can tell a crashed
// writer's directory from a live one.
Status write_owner(const fs::path& staging_root, const std::string& id, bool shared) {
  json owner = {{"pid", static_cast<long>(::getpid())},
                {"host", this_host()},
                {"shared", shared},
                {"created_at", utc_now_iso8601()}};
  return replace_file(owner_path(staging_root, id), owner.dump() + "\n", /*durable=*/false);
}

}  // namespace

Status sync_dir(const fs::path& dir) {
  const std::string name = dir.string();
  os::Fd fd(::open(name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return io_error("cannot open directory '" + name + "': " + errno_text());
  if (::fsync(fd.get()) != 0) return io_error("cannot fsync '" + name + "': " + errno_text());
  return Status::ok();
}

std::optional<int> current_version(const fs::path& layer_dir) {
  std::error_code ec;
  fs::path target = fs::read_symlink(layer_dir / kCurrentLinkName, ec);
  if (ec) return std::nullopt;
  return parse_version_name(target.string());
}

Status point_current(const fs::path& layer_dir, int version) {
  const fs::path tmp =
      layer_dir / (std::string(kCurrentLinkName) + ".tmp-" + std::to_string(::getpid()));
  const fs::path link = layer_dir / kCurrentLinkName;
  // Left behind by a crashed commit of an earlier process with this pid.
  ::unlink(tmp.c_str());
  // Relative target: the layer directory can be moved or mounted elsewhere.
  const std::string target = std::string(kVersionsDirName) + "/" + version_name(version);
  if (::symlink(target.c_str(), tmp.c_str()) != 0) {
    return io_error("cannot create symlink '" + tmp.string() + "': " + errno_text());
  }
  if (::rename(tmp.c_str(), link.c_str()) != 0) {
    Status st = io_error("cannot rename '" + tmp.string() + "' to '" + link.string() +
                         "': " + errno_text());
    ::unlink(tmp.c_str());
    return st;
  }
  return Status::ok();
}

Result<std::vector<StagingEntry>> scan_staging(const fs::path& layer_dir) {
  constexpr std::string_view kSuffix = ".owner";
  const fs::path staging_root = layer_dir / kStagingDirName;
  std::vector<StagingEntry> out;
  std::error_code ec;
  if (!fs::exists(staging_root, ec)) return out;
  // Ids of directories and of owner files: a writer creates one, then the
  // other, so either may be alone for a moment.
  std::set<std::string> ids;
  for (fs::directory_iterator it(staging_root, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.front() != '.') {
      std::error_code type_ec;
      if (it->is_directory(type_ec)) ids.insert(name);
      continue;
    }
    // ".<id>.owner"; ".<id>.owner.tmp-..." (a replace in flight) is not one.
    if (name.size() > 1 + kSuffix.size() &&
        name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0) {
      ids.insert(name.substr(1, name.size() - 1 - kSuffix.size()));
    }
  }
  if (ec) return fs_error("list", staging_root, ec);

  const std::string host = this_host();
  for (const std::string& id : ids) {
    StagingEntry e;
    e.id = id;
    std::optional<Owner> owner;
    if (fs::exists(owner_path(staging_root, id), ec)) {
      owner = read_owner(owner_path(staging_root, id));
    }
    const std::string pid = owner ? std::to_string(owner->pid) : "";
    if (!owner) {
      e.why = "it has no readable owner file, so whose it is cannot be told";
    } else if (owner->shared) {
      e.why = "it is shared by the tasks of a cluster step";
    } else if (owner->host != host) {
      e.why = "process " + pid + " on host '" + owner->host +
              "' writes it (a process of another host cannot be checked from here)";
    } else if (pid_alive(owner->pid)) {
      e.why = "process " + pid + " on this host is writing it";
    } else {
      e.live = false;
      e.why = "process " + pid + " on this host, which wrote it, is gone";
    }
    out.push_back(std::move(e));
  }
  return out;
}

Status remove_staging(const fs::path& layer_dir, const std::string& id) {
  const fs::path staging_root = layer_dir / kStagingDirName;
  std::error_code ec;
  fs::remove_all(staging_root / id, ec);
  if (ec) return fs_error("remove", staging_root / id, ec);
  // After the directory: an owner file without its directory is still
  // recognised as this id's, so a failure here is retried by the next scan.
  fs::remove(owner_path(staging_root, id), ec);
  if (ec) return fs_error("remove", owner_path(staging_root, id), ec);
  return Status::ok();
}

// Subdirectories of `dir` that can be environments or layers: valid names
// only, which also skips '.staging', '.lock' and the like.
Result<std::vector<std::string>> child_names(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    std::error_code type_ec;
    if (!validate_name("", name).is_ok() || !it->is_directory(type_ec)) continue;
    names.push_back(std::move(name));
  }
  if (ec) return io_error("cannot list '" + dir.string() + "': " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

Result<int> next_version(const fs::path& layer_dir) {
  KILN_ASSIGN_OR_RETURN(std::vector<int> versions, scan_versions(layer_dir));
  int highest = versions.empty() ? 0 : versions.back();
  const fs::path record = layer_dir / kHighestVersionFileName;
  std::error_code ec;
  if (fs::exists(record, ec)) {
    std::ifstream in(record);
    long recorded = -1;
    if (!(in >> recorded) || recorded < 0 || recorded >= std::numeric_limits<int>::max()) {
      return io_error("'" + record.string() +
                      "' does not hold a version number; it records the highest version "
                      "ever published (write it back, or the highest number you know)");
    }
    highest = std::max(highest, static_cast<int>(recorded));
  }
  return highest + 1;
}

Status record_highest_version(const fs::path& layer_dir, int version) {
  return replace_file(layer_dir / kHighestVersionFileName, std::to_string(version) + "\n",
                      /*durable=*/true);
}

Result<std::vector<int>> scan_versions(const fs::path& layer_dir) {
  const fs::path dir = layer_dir / kVersionsDirName;
  std::vector<int> versions;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return versions;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::optional<int> v = parse_version_name(it->path().filename().string());
    std::error_code type_ec;
    if (v && it->is_directory(type_ec)) versions.push_back(*v);
  }
  if (ec) return fs_error("list", dir, ec);
  std::sort(versions.begin(), versions.end());
  return versions;
}

Result<std::unique_ptr<LayerWriter>> open_layer_writer(const fs::path& layer_dir,
                                                       const std::string& staging_id) {
  const fs::path staging_root = layer_dir / kStagingDirName;
  std::error_code ec;
  fs::create_directories(staging_root, ec);
  if (ec) return fs_error("create directory", staging_root, ec);

  const bool shared = !staging_id.empty();
  remove_stale_staging(layer_dir, staging_id);

  if (shared) {
    const fs::path dir = staging_root / staging_id;
    // Joined by several processes: the first one records itself as owner.
    if (!fs::exists(owner_path(staging_root, staging_id), ec)) {
      KILN_RETURN_IF_ERROR(write_owner(staging_root, staging_id, /*shared=*/true));
    }
    fs::create_directories(dir, ec);
    if (ec) return fs_error("create directory", dir, ec);
    return std::unique_ptr<LayerWriter>(
        std::make_unique<DirLayerWriter>(layer_dir, staging_id, /*shared=*/true));
  }

  // mkdir (not create_directories) detects the improbable id collision. The
  // owner file follows; a crash in between leaves a directory without one,
  // which cleanup never touches (it cannot tell whose it is).
  for (int attempt = 0; attempt < 8; ++attempt) {
    const std::string id = fresh_staging_id();
    const fs::path dir = staging_root / id;
    if (::mkdir(dir.c_str(), 0755) != 0) {
      if (errno == EEXIST) continue;
      return io_error("cannot create directory '" + dir.string() + "': " + errno_text());
    }
    if (Status st = write_owner(staging_root, id, /*shared=*/false); !st.is_ok()) {
      ::rmdir(dir.c_str());
      return st;
    }
    return std::unique_ptr<LayerWriter>(
        std::make_unique<DirLayerWriter>(layer_dir, id, /*shared=*/false));
  }
  return io_error("cannot find a free staging directory name in '" + staging_root.string() + "'");
}

}  // namespace kiln::catalog::internal
