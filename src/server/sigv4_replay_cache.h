// Refuses a SigV4 signature seen before (issue 14: re-sending the exact
// bytes of a signed AddJobFlowSteps created a second step).
//
// A signature verifies only while its signing time is within the verifier's
// clock skew of the server clock, so a signature need be remembered only
// until signed_at + max_skew: after that the verifier refuses it as expired.
// Entries are evicted at that time, so the cache holds at most what its keys
// signed in one window.
//
// Bounded per access key. When one key's share is full of signatures still
// within the window, that key's new requests are refused (ThrottlingException)
// until the oldest expire; the cache never forgets a live signature to make
// room. Forgetting would reopen exactly the replay the cache exists to stop
// (whoever can make a key sign many requests could flush a captured one out),
// and one shared bound would let one tenant's flood lock out every other
// environment. Per key, a flood refuses only the flooder.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "common/mutex.h"
#include "server/sigv4.h"

namespace kiln::server {

class SigV4ReplayCache {
 public:
  // EMR calls that change state, per key, within one window (30 minutes at
  // most: signed up to max_skew ahead, kept max_skew after): 50,000 is 28 a
  // second sustained, far beyond a tenant's steps, and about 7 MB per key
  // when full (two tree nodes of a 32-byte signature and a time each).
  static constexpr size_t kDefaultMaxPerKey = 50'000;

  // `max_skew`: the verifier's (SigV4Verifier::max_skew()).
  explicit SigV4ReplayCache(std::chrono::seconds max_skew, size_t max_per_key = kDefaultMaxPerKey);

  // Claims the accepted request's signature: nullopt when it was not seen
  // within the window (it is remembered from now on), else the error to
  // answer (InvalidSignatureException for a replay, ThrottlingException when
  // the key's share is full). First evicts what expired by `now`.
  // Thread-safe; two identical requests at once: exactly one claims.
  std::optional<SigV4Error> claim(const SigV4Accepted& accepted,
                                  std::chrono::system_clock::time_point now) EXCLUDES(mu_);

  // Forgets a claimed signature whose request was then not carried out
  // (throttled), so that the client may send it again. Thread-safe.
  void release(const SigV4Accepted& accepted) EXCLUDES(mu_);

  // Signatures remembered for `access_key_id` (for tests). Thread-safe.
  size_t size(const std::string& access_key_id) const EXCLUDES(mu_);

 private:
  using Signature = std::array<unsigned char, 32>;
  using Time = std::chrono::sys_seconds;
  struct Partition {
    std::map<Signature, Time> expiry_of;             // signature -> when it may go
    std::set<std::pair<Time, Signature>> by_expiry;  // the same, oldest first
  };

  void evict_expired(Partition& p, Time now) REQUIRES(mu_);

  const std::chrono::seconds max_skew_;
  const size_t max_per_key_;
  mutable Mutex mu_;
  std::map<std::string, Partition> partitions_ GUARDED_BY(mu_);  // by access key id
};

}  // namespace kiln::server
