// Catalog: opening a catalog root, starting writers, and the read side
// (listing layers, reading a version's metadata).
#include "catalog/catalog.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "catalog/layer_writer.h"

namespace kiln::catalog {

namespace fs = std::filesystem;

Result<Catalog> Catalog::open(const std::string& root, bool create) {
  if (root.empty()) return invalid_argument("catalog root is empty: name a directory");
  std::error_code ec;
  fs::path path = fs::absolute(root, ec);
  if (ec) return io_error("cannot resolve catalog '" + root + "': " + ec.message());
  path = path.lexically_normal();
  // "/data/cat/" normalises to "/data/cat/"; drop the empty last component so
  // that paths built from root() have no "//".
  if (!path.has_filename() && path != path.root_path()) path = path.parent_path();
  const std::string abs = path.string();

  fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) {
    if (!create) return not_found("catalog '" + abs + "' does not exist");
    fs::create_directories(path, ec);
    if (ec) return io_error("cannot create catalog '" + abs + "': " + ec.message());
    return Catalog(abs);
  }
  if (ec) return io_error("cannot open catalog '" + abs + "': " + ec.message());
  if (st.type() != fs::file_type::directory) {
    return io_error("catalog '" + abs + "' is not a directory");
  }
  return Catalog(abs);
}

std::string Catalog::layer_dir(const std::string& env, const std::string& layer) const {
  return (fs::path(root_) / env / layer).string();
}

std::string Catalog::version_dir(const std::string& env, const std::string& layer,
                                 int version) const {
  return (fs::path(layer_dir(env, layer)) / internal::kVersionsDirName /
          internal::version_name(version))
      .string();
}

Result<std::unique_ptr<LayerWriter>> Catalog::begin(const std::string& env,
                                                    const std::string& layer,
                                                    const std::string& staging_id) const {
  KILN_RETURN_IF_ERROR(validate_name("environment", env));
  KILN_RETURN_IF_ERROR(validate_name("layer", layer));
  if (!staging_id.empty()) KILN_RETURN_IF_ERROR(validate_name("staging id", staging_id));
  return internal::open_layer_writer(layer_dir(env, layer), staging_id);
}

Result<std::vector<LayerSummary>> Catalog::list(const std::optional<std::string>& env) const {
  if (env) KILN_RETURN_IF_ERROR(validate_name("environment", *env));
  std::error_code ec;
  if (!fs::is_directory(root_, ec)) return not_found("catalog '" + root_ + "' does not exist");

  std::vector<std::string> envs;
  if (env) {
    if (fs::is_directory(fs::path(root_) / *env, ec)) envs.push_back(*env);
  } else {
    KILN_ASSIGN_OR_RETURN(envs, internal::child_names(root_));
  }
  std::vector<LayerSummary> out;
  for (const std::string& e : envs) {
    KILN_ASSIGN_OR_RETURN(std::vector<std::string> layers,
                          internal::child_names(fs::path(root_) / e));
    for (const std::string& layer : layers) {
      const fs::path dir = layer_dir(e, layer);
      KILN_ASSIGN_OR_RETURN(std::vector<int> versions, internal::scan_versions(dir));
      LayerSummary summary;
      summary.environment = e;
      summary.layer = layer;
      summary.current_version = internal::current_version(dir).value_or(0);
      summary.version_count = static_cast<int>(versions.size());
      out.push_back(std::move(summary));
    }
  }
  // envs and layers come sorted, so `out` is sorted by (environment, layer).
  return out;
}

Result<nlohmann::json> Catalog::metadata(const std::string& env, const std::string& layer,
                                         std::optional<int> version) const {
  KILN_RETURN_IF_ERROR(validate_name("environment", env));
  KILN_RETURN_IF_ERROR(validate_name("layer", layer));
  const fs::path dir = layer_dir(env, layer);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return not_found("layer '" + layer + "' not found in environment '" + env + "' of catalog '" +
                     root_ + "'");
  }
  if (!version) {
    version = internal::current_version(dir);
    if (!version) {
      return not_found("layer '" + layer + "' in environment '" + env + "' of catalog '" + root_ +
                       "' has no published version");
    }
  }
  const fs::path vdir = version_dir(env, layer, *version);
  if (*version < 1 || !fs::is_directory(vdir, ec)) {
    KILN_ASSIGN_OR_RETURN(std::vector<int> versions, internal::scan_versions(dir));
    return not_found("version " + std::to_string(*version) + " of layer '" + layer +
                     "' not found (versions: " + internal::format_ranges(versions) + ")");
  }

  const std::string file = (vdir / internal::kMetadataFileName).string();
  std::ifstream in(file, std::ios::binary);
  if (!in) return io_error("cannot read '" + file + "': " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  try {
    nlohmann::json doc = nlohmann::json::parse(text.str());
    if (!doc.is_object()) return io_error("'" + file + "' is not a JSON object");
    return doc;
  } catch (const nlohmann::json::parse_error& e) {
    return io_error("cannot parse '" + file + "': " + e.what());
  }
}

}  // namespace kiln::catalog
