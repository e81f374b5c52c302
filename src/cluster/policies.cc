#include "cluster/policies.h"

#include "config/limits.h"

namespace kiln::cluster {

Policies::Policies(const std::vector<config::EnvironmentConfig>& environments) {
  MutexLock lock(&mu_);
  for (const auto& e : environments) policies_[e.name] = {e.concurrency, e.priority};
}

std::map<std::string, store::EnvironmentPolicy> Policies::snapshot() const {
  MutexLock lock(&mu_);
  return policies_;
}

Result<store::EnvironmentPolicy> Policies::get(const std::string& environment) const {
  MutexLock lock(&mu_);
  auto it = policies_.find(environment);
  if (it == policies_.end())
    return not_found("environment '" + environment + "' is not configured");
  return it->second;
}

Status Policies::set_concurrency(const std::string& environment, int64_t concurrency) {
  if (concurrency < config::kMinConcurrency || concurrency > config::kMaxConcurrency) {
    return invalid_argument("concurrency: must be " + std::to_string(config::kMinConcurrency) +
                            "-" + std::to_string(config::kMaxConcurrency) + ", got " +
                            std::to_string(concurrency));
  }
  MutexLock lock(&mu_);
  auto it = policies_.find(environment);
  if (it == policies_.end())
    return not_found("environment '" + environment + "' is not configured");
  it->second.concurrency = static_cast<int>(concurrency);
  return Status::ok();
}

}  // namespace kiln::cluster
