// AWS Signature Version 4 verification for the EMR-compatible endpoint, so
// that the aws CLI and boto3 authenticate to kiln serve unchanged.
//
// Only the Authorization-header form is accepted (what botocore sends for
// every JSON-protocol call); presigned URLs (X-Amz-Signature in the query)
// are rejected with IncompleteSignatureException. The canonical request is
// built the way botocore and aws-c-auth build it for services other than S3:
// the path as received is dot-segment-normalised, runs of '/' collapsed, and
// then percent-encoded once more (AWS's "double encoding"); the query is
// decoded, re-encoded and sorted; the payload is always hashed.
//
// Stricter than AWS (docs/emr.md lists it all): SignedHeaders must name every
// header the endpoint acts on (host, x-amz-date, x-amz-target and
// content-type for EMR), because an unsigned header can be rewritten by
// whoever relays the request: a ListSteps signed over host;x-amz-date was
// re-sent as CancelSteps (issue 14). The canonical request always carries
// the SHA-256 of the body received, and X-Amz-Content-Sha256, when sent,
// must be exactly that hash. Refusing a signature seen before is the
// caller's second step (server/sigv4_replay_cache.h), so that it can run
// after the caller's own admission checks.
//
// Errors carry the __type and message AWS JSON-protocol services send, and
// the HTTP status they answer with:
//   MissingAuthenticationTokenException 403  no Authorization header at all
//   IncompleteSignatureException        400  header malformed or missing parts
//   InvalidSignatureException           400  wrong scope, date, signed headers,
//                                            expired, or signature mismatch
//   UnrecognizedClientException         400  unknown access key id, or a
//                                            session token (Kiln issues none)
// The 400s are what EMR itself returns (a captured EMR response:
// aws/aws-sdk-ruby#431, "HTTP/1.1 400 ... InvalidSignatureException ...
// Credential should be scoped to correct service: 'elasticmapreduce'.");
// the generic "Common Errors" page lists MissingAuthenticationToken as 403.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "server/core_names.h"

namespace kiln::server {

// One access key the endpoint accepts, and the environment it opens.
struct SigV4Key {
  std::string access_key_id;
  std::string secret_access_key;
  std::string environment;
};

// An HTTP request as it arrived, before any decoding.
struct SigV4Request {
  std::string method;  // "POST"
  // Raw request-target path, still percent-encoded ("/"). With kiln::http
  // that is req.target up to '?', not req.path (that one is decoded, and the
  // signature covers the encoded form).
  std::string path;
  std::string query;  // raw query string without '?', may be empty
  std::vector<std::pair<std::string, std::string>> headers;  // names in any case, repeats kept
  std::string body;
};

// Why a request was refused: the JSON error body's "__type" and "message",
// and the HTTP status to answer with.
struct SigV4Error {
  std::string type;
  std::string message;
  int http_status = 0;
};

// A request whose signature verified: who signed it, the signature and
// when the client signed it (what a replay cache keys and expires on).
struct SigV4Accepted {
  SigV4Key key;
  std::string signature;  // 64 lower-case hex digits, as verified
  std::chrono::sys_seconds signed_at;
};

// Either the accepted signature or the reason the request was refused.
class SigV4Result {
 public:
  SigV4Result(SigV4Accepted accepted) : v_(std::move(accepted)) {}  // NOLINT: implicit by design
  SigV4Result(SigV4Error error) : v_(std::move(error)) {}           // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<SigV4Accepted>(v_); }
  // REQUIRES: ok().
  const SigV4Key& key() const { return std::get<SigV4Accepted>(v_).key; }
  const SigV4Accepted& accepted() const { return std::get<SigV4Accepted>(v_); }
  // REQUIRES: !ok().
  const SigV4Error& error() const { return std::get<SigV4Error>(v_); }

 private:
  std::variant<SigV4Accepted, SigV4Error> v_;
};

// The headers an EMR call must sign: what routes it (host, x-amz-target),
// dates it (x-amz-date; a request dated by a Date header alone signs "date"
// instead) and says how its body is read (content-type). Sorted, as in
// SignedHeaders. awscli and boto3 sign all four.
inline const std::vector<std::string>& emr_required_signed_headers() {
  static const std::vector<std::string> kHeaders = {"content-type", "host", "x-amz-date",
                                                    "x-amz-target"};
  return kHeaders;
}

class SigV4Verifier {
 public:
  // `allowed_regions` empty accepts any region in the credential scope.
  // `max_skew`: how far X-Amz-Date may be from the server clock either way
  // (AWS allows 15 minutes). `service` is the scope's service name; only
  // tests signed for another service (AWS's vectors use "service") change it.
  // `required_signed_headers`: lower-case names SignedHeaders must include;
  // "host" is always required, whatever the list says.
  explicit SigV4Verifier(
      std::vector<SigV4Key> keys, std::vector<std::string> allowed_regions = {},
      std::chrono::seconds max_skew = std::chrono::minutes(15),
      std::string service = "elasticmapreduce",
      std::vector<std::string> required_signed_headers = emr_required_signed_headers());

  // Checks the request's Authorization header against the known keys, with
  // `now` as the server clock. Returns the key, signature and signing time,
  // or the error to send. Remembers nothing: a replay verifies again (see
  // SigV4ReplayCache). Thread-safe (the verifier is immutable after
  // construction).
  SigV4Result verify(const SigV4Request& request, std::chrono::system_clock::time_point now) const;

  std::chrono::seconds max_skew() const { return max_skew_; }

 private:
  std::vector<SigV4Key> keys_;
  std::vector<std::string> allowed_regions_;
  std::chrono::seconds max_skew_;
  std::string service_;
  std::vector<std::string> required_signed_headers_;
};

// Every environment's aws_keys, tagged with the environment's name.
std::vector<SigV4Key> sigv4_keys(const ServerConfig& config);

// The canonical URI of a raw request path (non-S3 rules): "." and ".."
// segments and empty segments removed, each remaining byte outside RFC 3986's
// unreserved set percent-encoded (so "%20" becomes "%2520"), "/" kept.
// Always starts with "/": an empty path is "/", "a/b" is "/a/b".
std::string sigv4_canonical_uri(std::string_view raw_path);

// The canonical query string of a raw query: each name and value
// percent-decoded then encoded with upper-case hex outside the unreserved
// set, pairs sorted by name then value, "name=value" joined with '&'.
// A '+' is taken literally (SigV4 clients encode a space as %20).
std::string sigv4_canonical_query(std::string_view raw_query);

}  // namespace kiln::server
