// Opaque list markers (GET /v1/steps' next_marker, EMR ListSteps' Marker):
// the store's cursor sealed with an HMAC over the environment and the
// cursor, under the server's marker key (drawn once and kept in its state
// directory, so markers survive a restart as the steps they point at do).
// A marker is valid only for the environment it was handed to and only
// unaltered; anything else is kInvalidArgument "invalid marker". The
// store's cursor is the id of the page's last step, the tenant's own, so a
// marker tells nothing about other environments' steps (no global count).
#pragma once

#include <string>
#include <utility>

#include "common/status.h"

namespace kiln::server {

class ListMarkers {
 public:
  // A fresh random key: markers valid for this object's life only.
  ListMarkers();
  // A given key (load_marker_key's, or a test's).
  explicit ListMarkers(std::string key) : key_(std::move(key)) {}

  // The key kept at `path`: read when the file exists (it must hold 64 hex
  // digits), else drawn and written there, mode 0600, created exclusively.
  // kIOError naming the file (as `what`) when it cannot be read or
  // written. The session key (session.h) is kept the same way.
  static Result<std::string> load_or_create_key(const std::string& path,
                                                const std::string& what = "list marker key");

  // The marker for `cursor` (a store next_marker) handed to `environment`;
  // "" for "" (no next page). Thread-safe.
  std::string seal(const std::string& environment, const std::string& cursor) const;
  // The cursor sealed in `marker`, or kInvalidArgument "invalid marker: ..."
  // when this server did not hand it to `environment` or it was altered.
  // Thread-safe.
  Result<std::string> open(const std::string& environment, const std::string& marker) const;

 private:
  std::string mac_hex(const std::string& environment, const std::string& cursor) const;

  const std::string key_;
};

}  // namespace kiln::server
