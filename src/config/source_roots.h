// Source roots: the prefixes an environment's steps may read from
// ([[environment]] source_roots in kiln.toml; docs/security.md). Every
// source of a definition, and every definition file a step names, is
// canonicalised and prefix-matched against them before anything opens it.
//
// A location is one of:
// - a local path ("/srv/imagery/x.tif"), canonicalised with realpath(3), so
//   `..` and symlinks that leave a root are seen for what they are;
// - a URL, "http(s)://host[:port]/path" or the same behind "/vsicurl/"
//   (one spelling: both match the same roots and reach GDAL as /vsicurl/);
// - an object store key behind "/vsis3/", "/vsigs/", "/vsiaz/", "/vsiadls/".
// Everything else GDAL would also accept is refused: connection strings
// (MEM:::, vrt://), inline XML (<VRTDataset>), driver-prefixed subdataset
// names (NETCDF:, HDF5:, GTIFF_DIR:, ...), and the other virtual file
// systems (/vsimem/, /vsistdin/, /vsisubfile/, /vsizip/, ...).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::config {

// The canonical form of one configured root, ending in '/': a local
// directory (absolute, or relative to `base_dir`; lexically normal, since it
// may not exist yet) or a recognised remote prefix. kInvalidArgument naming
// `key` otherwise. Does no I/O.
Result<std::string> canonical_root(const std::string& root, const std::string& base_dir,
                                   const std::string& key);

// The check a step's input passes before anything opens it.
//
// `roots` are canonical_root() forms; `env` names the environment in
// messages; `what` names the field ("sources[0].uri"). On success returns
// the canonical location, the name that must then be opened (a local
// file's real path; "/vsicurl/<normalised URL>" for a URL; the key as
// given behind /vsis3/...). `local_only` refuses remote locations (for
// definition files). Local locations must be regular files.
//
// Errors are kInvalidArgument. A location outside the roots gets one
// message whether or not it exists (it names the location and the roots);
// only inside a root may a message say that something does not exist or
// is not a regular file. Thread-safe; the only I/O is realpath/stat on
// local paths (nothing is opened or connected).
Result<std::string> check_source(const std::vector<std::string>& roots, const std::string& env,
                                 const std::string& what, const std::string& location,
                                 bool local_only = false);

}  // namespace kiln::config
