#include "server/sigv4_replay_cache.h"

#include <cassert>

namespace kiln::server {
namespace {

constexpr int kReplayStatus = 400;  // EMR answers every signature error with 400 (sigv4.h)

int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// The 32 bytes of a verified signature (64 lower-case hex digits, which the
// verifier guarantees: it compares against its own hex).
std::array<unsigned char, 32> decode(const std::string& hex) {
  std::array<unsigned char, 32> out{};
  assert(hex.size() == 64);
  for (size_t i = 0; i < out.size() && 2 * i + 1 < hex.size(); ++i) {
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    assert(hi >= 0 && lo >= 0);
    out[i] = static_cast<unsigned char>((hi < 0 ? 0 : hi) * 16 + (lo < 0 ? 0 : lo));
  }
  return out;
}

std::string minutes_text(std::chrono::seconds s) {
  if (s.count() % 60 == 0) return std::to_string(s.count() / 60) + " min.";
  return std::to_string(s.count()) + " sec.";
}

}  // namespace

SigV4ReplayCache::SigV4ReplayCache(std::chrono::seconds max_skew, size_t max_per_key)
    : max_skew_(max_skew), max_per_key_(max_per_key) {}

void SigV4ReplayCache::evict_expired(Partition& p, Time now) {
  while (!p.by_expiry.empty() && p.by_expiry.begin()->first < now) {
    p.expiry_of.erase(p.by_expiry.begin()->second);
    p.by_expiry.erase(p.by_expiry.begin());
  }
}

std::optional<SigV4Error> SigV4ReplayCache::claim(const SigV4Accepted& accepted,
                                                  std::chrono::system_clock::time_point now) {
  const Time now_s = std::chrono::floor<std::chrono::seconds>(now);
  // The verifier refuses this signature once now > signed_at + max_skew.
  const Time expiry = accepted.signed_at + max_skew_;
  const Signature sig = decode(accepted.signature);
  MutexLock lock(&mu_);
  Partition& p = partitions_[accepted.key.access_key_id];
  evict_expired(p, now_s);
  if (p.expiry_of.count(sig) != 0) {
    return SigV4Error{"InvalidSignatureException",
                      "This request's signature was already used: the endpoint carries out a "
                      "signed request that changes state once (a signature stays valid for " +
                          minutes_text(max_skew_) +
                          " either way of its X-Amz-Date). To repeat the call, sign it again.",
                      kReplayStatus};
  }
  if (p.expiry_of.size() >= max_per_key_) {
    return SigV4Error{"ThrottlingException",
                      "Rate exceeded: this access key signed " + std::to_string(max_per_key_) +
                          " state-changing requests within " + minutes_text(max_skew_) +
                          "; retry when the oldest expire.",
                      kReplayStatus};
  }
  p.expiry_of.emplace(sig, expiry);
  p.by_expiry.emplace(expiry, sig);
  return std::nullopt;
}

void SigV4ReplayCache::release(const SigV4Accepted& accepted) {
  const Signature sig = decode(accepted.signature);
  MutexLock lock(&mu_);
  const auto part = partitions_.find(accepted.key.access_key_id);
  if (part == partitions_.end()) return;
  Partition& p = part->second;
  const auto it = p.expiry_of.find(sig);
  if (it == p.expiry_of.end()) return;
  p.by_expiry.erase({it->second, sig});
  p.expiry_of.erase(it);
}

size_t SigV4ReplayCache::size(const std::string& access_key_id) const {
  MutexLock lock(&mu_);
  const auto part = partitions_.find(access_key_id);
  return part == partitions_.end() ? 0 : part->second.expiry_of.size();
}

}  // namespace kiln::server
