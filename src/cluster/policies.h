// Policies: each environment's concurrency and priority as they are now
// (the config's values, changed at run time by PUT /v1/environment or EMR's
// ModifyCluster). Thread-safe; readers get a snapshot.
#pragma once

#include <map>
#include <string>

#include "common/mutex.h"
#include "common/status.h"
#include "config/server_config.h"
#include "store/job_store.h"

namespace kiln::cluster {

class Policies {
 public:
  explicit Policies(const std::vector<config::EnvironmentConfig>& environments);

  std::map<std::string, store::EnvironmentPolicy> snapshot() const EXCLUDES(mu_);
  // kNotFound for an environment the config does not name.
  Result<store::EnvironmentPolicy> get(const std::string& environment) const EXCLUDES(mu_);
  // kInvalidArgument outside config::kMinConcurrency..kMaxConcurrency.
  Status set_concurrency(const std::string& environment, int64_t concurrency) EXCLUDES(mu_);

 private:
  mutable Mutex mu_;
  std::map<std::string, store::EnvironmentPolicy> policies_ GUARDED_BY(mu_);
};

}  // namespace kiln::cluster
