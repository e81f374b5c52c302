// Source fingerprints recorded in layer metadata.
#pragma once

#include <optional>
#include <string>

namespace kiln::ingest {

// SHA-256 (hex) of the file behind a GDAL name, read through GDAL's virtual
// file layer; nullopt for remote names (/vsicurl/, /vsis3/, ...) where
// reading the whole object again would cost a download, or on read errors.
std::optional<std::string> source_sha256(const std::string& uri);

// Whether a GDAL name reads over the network (/vsicurl/, /vsis3/, ...),
// where a read may fail once and succeed the next time.
bool is_remote_name(const std::string& uri);

}  // namespace kiln::ingest
