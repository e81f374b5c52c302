// Opaque list markers (GET /v1/steps' next_marker, EMR ListSteps' Marker):
// the store's cursor sealed with an HMAC over the environment and the
// cursor, under a key drawn when the server starts. A marker is valid only
// for the environment it was handed to, only on this server process, and
// only unaltered; anything else is kInvalidArgument "invalid marker". The
// store's cursor is the id of the page's last step, the tenant's own, so a
// marker tells nothing about other environments' steps (no global count).
#pragma once

#include <string>
#include <utility>

#include "common/status.h"

namespace kiln::server {

class ListMarkers {
 public:
  // A fresh random key (a restart invalidates every marker handed out).
  ListMarkers();
  // A given key, for tests.
  explicit ListMarkers(std::string key) : key_(std::move(key)) {}

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
