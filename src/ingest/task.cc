#include "ingest/task.h"

#include <algorithm>
#include <cassert>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <optional>
#include <sstream>
#include <vector>

#include "catalog/catalog.h"
#include "common/log.h"
#include "ingest/checksum.h"
#include "ingest/json_fields.h"
#include "ingest/metadata.h"
#include "ingest/plan.h"
#include "ingest/reduce.h"
#include "raster/gdal_env.h"

namespace kiln::ingest {
namespace {

namespace fs = std::filesystem;
using json_fields::Got;
using nlohmann::json;

// The commit task writes the finished metadata into staging under the name
// commit() gives it, before it removes _results/ and _partials/. A later
// attempt that finds it resumes at the publish: the partition results may be
// gone by then, but they are no longer needed. commit() rewrites the file
// with version and created_at added, so nothing extra lands in the version.
constexpr char kPendingMetadata[] = "metadata.json";
constexpr char kResultsDir[] = "_results";
constexpr char kPartialsDir[] = "_partials";

// The string member `key` of `j`, or "" when absent or not a string.
std::string string_member(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Status read_int64(const json& v, const std::string& path, int64_t* out) {
  if (!v.is_number_integer())
    return json_fields::wrong_type(path, "an integer", v, Got::kKindAndValue);
  *out = v.get<int64_t>();
  return Status::ok();
}

// run_reduce removes the partials once it has read them; the commit task
// needs them until the version is published, so that an attempt that dies
// between the reduce and the publish can be run again. This writer passes
// everything through but that one removal, which the commit task does itself
// right before commit().
class KeepPartials final : public catalog::LayerWriter {
 public:
  explicit KeepPartials(catalog::LayerWriter* inner) : inner_(inner) {}
  const std::string& staging_dir() const override { return inner_->staging_dir(); }
  Status write_tile(int z, int64_t x, int64_t y, std::string_view ext,
                    std::string_view bytes) override {
    return inner_->write_tile(z, x, y, ext, bytes);
  }
  Status write_file(std::string_view relpath, std::string_view bytes) override {
    return inner_->write_file(relpath, bytes);
  }
  Result<std::string> read_file(std::string_view relpath) const override {
    return inner_->read_file(relpath);
  }
  Status remove(std::string_view relpath) override {
    if (relpath == kPartialsDir) return Status::ok();
    return inner_->remove(relpath);
  }
  Result<int> commit(nlohmann::json) override {
    return internal_error("the reduce must not publish the version");
  }
  void abort() override { inner_->abort(); }

 private:
  catalog::LayerWriter* inner_;
};

Result<Plan> plan_for(const TaskSpec& spec) {
  init_gdal();
  return make_plan(spec.definition, PlanOptions{spec.plan_threads});
}

CommitResult commit_result_from_metadata(const json& m, bool already_committed) {
  CommitResult r;
  r.layer = string_member(m, "layer");
  if (auto it = m.find("version"); it != m.end() && it->is_number_integer()) {
    r.version = it->get<int>();
  }
  r.already_committed = already_committed;
  if (auto it = m.find("levels"); it != m.end() && it->is_array()) {
    for (const json& l : *it) {
      if (!l.is_object()) continue;
      if (auto t = l.find("tiles"); t != l.end() && t->is_number_integer()) {
        r.tiles += t->get<int64_t>();
      }
      if (auto b = l.find("bytes"); b != l.end() && b->is_number_integer()) {
        r.bytes += b->get<uint64_t>();
      }
    }
  }
  return r;
}

// The published version whose metadata names `step_id`, newest first;
// nullopt if there is none. Versions are read from <layer>/versions/vNNNNNN
// (catalog.h's layout); one whose metadata cannot be read is skipped.
Result<std::optional<CommitResult>> find_committed(const catalog::Catalog& catalog,
                                                   const std::string& env, const std::string& layer,
                                                   const std::string& step_id) {
  const fs::path dir = fs::path(catalog.layer_dir(env, layer)) / "versions";
  std::vector<int> versions;
  std::error_code ec;
  if (fs::is_directory(dir, ec)) {
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.size() < 2 || name.size() > 10 || name[0] != 'v' ||
          name.find_first_not_of("0123456789", 1) != std::string::npos) {
        continue;
      }
      versions.push_back(std::stoi(name.substr(1)));
    }
    if (ec) return io_error("cannot list '" + dir.string() + "': " + ec.message());
  }
  std::sort(versions.rbegin(), versions.rend());
  for (int v : versions) {
    auto m = catalog.metadata(env, layer, v);
    if (!m.is_ok()) {
      log::warn("skipping version " + std::to_string(v) + " of layer '" + layer +
                "' while looking for step " + step_id + ": " + m.status().message());
      continue;
    }
    if (string_member(*m, "step_id") == step_id) {
      return std::optional<CommitResult>(commit_result_from_metadata(*m, true));
    }
  }
  return std::optional<CommitResult>();
}

Result<std::vector<PartitionResult>> read_partition_results(const Plan& plan,
                                                            const catalog::LayerWriter& writer) {
  std::vector<PartitionResult> results;
  results.reserve(plan.partitions.size());
  for (size_t i = 0; i < plan.partitions.size(); ++i) {
    const int64_t index = static_cast<int64_t>(i);
    const std::string rel = partition_result_path(index);
    auto bytes = writer.read_file(rel);
    if (!bytes.is_ok()) {
      if (bytes.status().code() == StatusCode::kNotFound) {
        return internal_error("partition " + std::to_string(index) + " of " +
                              std::to_string(plan.partitions.size()) + " has no result in '" +
                              writer.staging_dir() + "/" + rel +
                              "': the commit task ran before that partition task completed");
      }
      return bytes.status();
    }
    json doc = json::parse(*bytes, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) {
      return internal_error("the result of partition " + std::to_string(index) + " ('" +
                            writer.staging_dir() + "/" + rel + "') is not valid JSON");
    }
    auto r = partition_result_from_json(doc);
    if (!r.is_ok()) return r.status().with_context("partition " + std::to_string(index));
    if (r->index != index) {
      return internal_error("'" + writer.staging_dir() + "/" + rel + "' holds the result of " +
                            "partition " + std::to_string(r->index) + ", not " +
                            std::to_string(index));
    }
    results.push_back(std::move(r).value());
  }
  return results;
}

// Reduce, layer.xml and the metadata of the version; leaves the metadata in
// staging as kPendingMetadata and returns it.
Result<json> build_version(const TaskSpec& spec, const Plan& plan,
                           const std::vector<PartitionResult>& results,
                           const std::string& layer_dir, catalog::LayerWriter* writer,
                           Progress* progress, const CancelToken& cancel) {
  int64_t planned = 0;
  for (const auto& l : plan.levels)
    if (l.zoom < plan.top_zoom) planned += l.tiles;
  progress->tiles_total.store(planned);

  // Checksums read the sources once more; do it beside the reduce (as
  // run_ingest does).
  auto checksums = std::async(std::launch::async, [&plan] {
    std::vector<std::optional<std::string>> out;
    for (const auto& s : plan.sources) out.push_back(source_sha256(s.info.uri));
    return out;
  });
  KeepPartials keep(writer);
  auto reduced = run_reduce(plan, results, &keep, progress, cancel);
  auto sums = checksums.get();
  if (!reduced.is_ok()) return reduced.status();

  std::map<int, LevelResult> levels = std::move(reduced).value();
  for (const auto& r : results)
    for (const auto& [z, l] : r.levels) levels[z].merge(l);
  int64_t tiles = 0;
  for (const auto& [z, l] : levels) tiles += l.tiles;
  if (tiles == 0) {
    return empty_error("no tile has data: every source pixel in the layer's area is nodata");
  }

  json metadata = build_metadata(plan, results, levels, sums);
  metadata["step_id"] = spec.step_id;
  KILN_RETURN_IF_ERROR(writer->write_file("layer.xml", gdal_wms_xml(plan, layer_dir + "/current")));
  KILN_RETURN_IF_ERROR(writer->write_file(kPendingMetadata, metadata.dump(2) + "\n"));
  return metadata;
}

}  // namespace

bool task_failure_is_permanent(StatusCode code, const IngestDefinition& def) {
  if (code != StatusCode::kInputError) return false;
  return std::none_of(def.sources.begin(), def.sources.end(),
                      [](const SourceDef& s) { return is_remote_name(s.uri); });
}

const char* task_failure_reason(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kInvalidArgument:
      return "INVALID_DEFINITION";
    case StatusCode::kInputError:
      return "SOURCE_ERROR";
    case StatusCode::kNotFound:
      return "NOT_FOUND";
    case StatusCode::kEmpty:
      return "NOTHING_TO_INGEST";
    case StatusCode::kIOError:
      return "CATALOG_ERROR";
    case StatusCode::kCancelled:
      return "CANCELLED";
    case StatusCode::kInternal:
    case StatusCode::kUnavailable:
    case StatusCode::kResourceExhausted:
      return "INTERNAL_ERROR";
  }
  return "INTERNAL_ERROR";
}

Result<TaskSpec> parse_task_spec(const json& j) {
  if (!j.is_object()) return json_fields::wrong_type("spec", "an object", j, Got::kKindAndValue);
  TaskSpec spec;
  auto required = [&j](const char* key) -> Result<const json*> {
    const json* v = json_fields::member(j, key);
    if (!v) return invalid_argument(std::string(key) + ": is required");
    return v;
  };
  KILN_ASSIGN_OR_RETURN(const json* step_id, required("step_id"));
  KILN_RETURN_IF_ERROR(
      json_fields::read_string(*step_id, "step_id", &spec.step_id, Got::kKindAndValue));
  KILN_RETURN_IF_ERROR(catalog::validate_name("step_id", spec.step_id));
  KILN_ASSIGN_OR_RETURN(const json* task_id, required("task_id"));
  KILN_RETURN_IF_ERROR(read_int64(*task_id, "task_id", &spec.task_id));
  KILN_ASSIGN_OR_RETURN(const json* attempt, required("attempt"));
  KILN_RETURN_IF_ERROR(
      json_fields::read_int(*attempt, "attempt", &spec.attempt, Got::kKindAndValue));

  KILN_ASSIGN_OR_RETURN(const json* kind, required("kind"));
  std::string kind_text;
  KILN_RETURN_IF_ERROR(json_fields::read_string(*kind, "kind", &kind_text, Got::kKindAndValue));
  const std::optional<TaskKind> parsed_kind = parse_task_kind(kind_text);
  if (!parsed_kind) {
    return invalid_argument("kind: must be \"partition\" or \"commit\", got \"" + kind_text + "\"");
  }
  spec.kind = *parsed_kind;
  if (spec.kind == TaskKind::kPartition) {
    KILN_ASSIGN_OR_RETURN(const json* index, required("index"));
    KILN_RETURN_IF_ERROR(read_int64(*index, "index", &spec.index));
    if (spec.index < 0) return invalid_argument("index: a partition index is >= 0");
  } else {
    spec.index = -1;
    if (const json* index = json_fields::member(j, "index")) {
      KILN_RETURN_IF_ERROR(read_int64(*index, "index", &spec.index));
      if (spec.index != -1) return invalid_argument("index: the commit task's index is -1");
    }
  }

  KILN_ASSIGN_OR_RETURN(const json* definition, required("definition"));
  auto defs = parse_definition(*definition);
  if (!defs.is_ok()) return defs.status().with_context("definition");
  if (defs->size() != 1) {
    return invalid_argument("definition: a task runs one layer, the definition has " +
                            std::to_string(defs->size()));
  }
  spec.definition = std::move(defs->front());

  if (const json* plan = json_fields::member(j, "plan")) {
    if (!plan->is_object()) {
      return json_fields::wrong_type("plan", "an object", *plan, Got::kKindAndValue);
    }
    if (const json* threads = json_fields::member(*plan, "threads")) {
      KILN_RETURN_IF_ERROR(
          json_fields::read_int(*threads, "plan.threads", &spec.plan_threads, Got::kKindAndValue));
      if (spec.plan_threads < 1) return invalid_argument("plan.threads: must be >= 1");
    }
  }
  return spec;
}

Result<TaskSpec> load_task_spec(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("task spec '" + path + "' cannot be opened");
  std::stringstream text;
  text << in.rdbuf();
  json doc = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return invalid_argument("task spec '" + path + "' is not valid JSON");
  auto spec = parse_task_spec(doc);
  if (!spec.is_ok()) return spec.status().with_context("task spec '" + path + "'");
  return spec;
}

json task_spec_to_json(const TaskSpec& spec) {
  return {{"step_id", spec.step_id},
          {"task_id", spec.task_id},
          {"attempt", spec.attempt},
          {"kind", task_kind_name(spec.kind)},
          {"index", spec.index},
          {"definition", to_json(spec.definition)},
          {"plan", {{"threads", spec.plan_threads}}}};
}

json to_json(const CommitResult& r) {
  return {{"layer", r.layer},
          {"version", r.version},
          {"tiles", r.tiles},
          {"bytes", r.bytes},
          {"already_committed", r.already_committed}};
}

std::string partition_result_path(int64_t index) {
  return std::string(kResultsDir) + "/" + std::to_string(index) + ".json";
}

Result<PartitionResult> run_partition_task(const TaskSpec& spec, Progress* progress,
                                           const CancelToken& cancel) {
  assert(spec.kind == TaskKind::kPartition);
  const IngestDefinition& def = spec.definition;
  KILN_ASSIGN_OR_RETURN(Plan plan, plan_for(spec));
  const int64_t n = static_cast<int64_t>(plan.partitions.size());
  if (spec.index < 0 || spec.index >= n) {
    return invalid_argument("partition " + std::to_string(spec.index) +
                            " does not exist: the plan has " + std::to_string(n) +
                            " partitions (did the sources change since the step was planned?)");
  }
  progress->tiles_total.store(plan.partitions[spec.index].tiles);
  progress->partitions_total.store(1);

  auto catalog = catalog::Catalog::open(def.output.catalog, /*create=*/true);
  if (!catalog.is_ok()) return catalog.status();
  KILN_ASSIGN_OR_RETURN(auto writer,
                        catalog->begin(def.output.environment, def.layer, spec.step_id));
  SourceCache sources(plan);
  KILN_ASSIGN_OR_RETURN(PartitionResult result,
                        run_partition(plan, spec.index, writer.get(), &sources, progress, cancel));
  // Last, so that a result file means the partition's tiles are all written.
  KILN_RETURN_IF_ERROR(
      writer->write_file(partition_result_path(spec.index), to_json(result).dump() + "\n"));
  progress->partitions_done.store(1);
  return result;
}

Result<CommitResult> run_commit_task(const TaskSpec& spec, Progress* progress,
                                     const CancelToken& cancel) {
  assert(spec.kind == TaskKind::kCommit);
  const IngestDefinition& def = spec.definition;
  const std::string& env = def.output.environment;
  KILN_ASSIGN_OR_RETURN(Plan plan, plan_for(spec));
  auto catalog = catalog::Catalog::open(def.output.catalog, /*create=*/true);
  if (!catalog.is_ok()) return catalog.status();
  const std::string layer_dir = catalog->layer_dir(env, def.layer);

  // commit() renames the staging directory into versions/: if it is gone, an
  // earlier attempt may have published already. Checked before begin(),
  // which would create it anew.
  const fs::path staging = fs::path(layer_dir) / ".staging" / spec.step_id;
  std::error_code ec;
  if (!fs::is_directory(staging, ec)) {
    KILN_ASSIGN_OR_RETURN(auto found, find_committed(*catalog, env, def.layer, spec.step_id));
    if (found) {
      log::info("step " + spec.step_id + " already committed version " +
                std::to_string(found->version) + " of layer '" + def.layer + "'");
      return *found;
    }
    return not_found("staging directory '" + staging.string() + "' of step " + spec.step_id +
                     " does not exist and no version of layer '" + def.layer +
                     "' was committed by it: its partitions must run again");
  }

  KILN_ASSIGN_OR_RETURN(auto writer, catalog->begin(env, def.layer, spec.step_id));
  json metadata;
  auto pending = writer->read_file(kPendingMetadata);
  if (pending.is_ok()) {
    metadata = json::parse(*pending, nullptr, /*allow_exceptions=*/false);
    if (!metadata.is_object() || string_member(metadata, "step_id") != spec.step_id) {
      return internal_error("'" + writer->staging_dir() + "/" + kPendingMetadata +
                            "' is not the metadata of step " + spec.step_id);
    }
    log::info("step " + spec.step_id + ": publishing the version an earlier attempt prepared");
  } else if (pending.status().code() != StatusCode::kNotFound) {
    return pending.status();
  } else {
    auto results = read_partition_results(plan, *writer);
    if (!results.is_ok()) {
      // A partition task that outlived the commit (a lapsed lease) may have
      // made the staging directory again; the version is what counts.
      KILN_ASSIGN_OR_RETURN(auto found, find_committed(*catalog, env, def.layer, spec.step_id));
      if (!found) return results.status();
      log::warn("step " + spec.step_id + " already committed version " +
                std::to_string(found->version) + "; removing the stray staging directory '" +
                writer->staging_dir() + "'");
      writer->abort();
      return *found;
    }
    KILN_ASSIGN_OR_RETURN(
        metadata, build_version(spec, plan, *results, layer_dir, writer.get(), progress, cancel));
  }

  if (cancel.cancelled()) return cancelled("interrupted; nothing was published");
  KILN_RETURN_IF_ERROR(writer->remove(kPartialsDir));
  KILN_RETURN_IF_ERROR(writer->remove(kResultsDir));
  KILN_ASSIGN_OR_RETURN(int version, writer->commit(metadata));
  metadata["version"] = version;
  log::info("step " + spec.step_id + " committed version " + std::to_string(version) +
            " of layer '" + def.layer + "'");
  return commit_result_from_metadata(metadata, /*already_committed=*/false);
}

Result<json> run_task(const TaskSpec& spec, Progress* progress, const CancelToken& cancel) {
  if (spec.kind == TaskKind::kPartition) {
    KILN_ASSIGN_OR_RETURN(PartitionResult r, run_partition_task(spec, progress, cancel));
    return to_json(r);
  }
  KILN_ASSIGN_OR_RETURN(CommitResult r, run_commit_task(spec, progress, cancel));
  return to_json(r);
}

}  // namespace kiln::ingest
