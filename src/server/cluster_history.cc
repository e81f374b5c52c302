#include "server/cluster_history.h"

#include "common/log.h"

namespace kiln::server {

void ClusterHistory::tick(int64_t now_ms) {
  {
    MutexLock lock(&mu_);
    if (last_ms_ >= 0 && now_ms - last_ms_ < kSampleMs) return;
    last_ms_ = now_ms;
  }
  // Read outside the lock: the store may take a while, and to_json must not wait on it.
  Sample s;
  s.t_ms = now_ms;
  for (size_t i = 0; i < config_.environments.size(); ++i) {
    auto c = source_(config_.environments[i]);
    if (!c.is_ok()) {
      log::warn("cluster history: " + c.status().message());
      return;
    }
    if (i == 0) {
      s.slots_total = c->slots_total;
      s.slots_busy = c->slots_busy;
    }
    s.queued.push_back(c->queued_tasks);
  }
  MutexLock lock(&mu_);
  samples_.push_back(std::move(s));
  while (samples_.size() > kKeepSamples) samples_.pop_front();
}

nlohmann::json ClusterHistory::to_json(const EnvironmentConfig& env) const {
  size_t index = config_.environments.size();
  for (size_t i = 0; i < config_.environments.size(); ++i) {
    if (config_.environments[i].name == env.name) index = i;
  }
  nlohmann::json rows = nlohmann::json::array();
  MutexLock lock(&mu_);
  for (const Sample& s : samples_) {
    const int64_t queued = index < s.queued.size() ? s.queued[index] : 0;
    rows.push_back({s.t_ms, s.slots_total, s.slots_busy, queued});
  }
  return {{"interval_seconds", kSampleMs / 1000}, {"samples", std::move(rows)}};
}

}  // namespace kiln::server
