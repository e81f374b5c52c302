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
  // Raw request-target path, still percent-encoded ("/"). With cpp-httplib
  // that is req.target up to '?', not req.path (httplib decodes it, and the
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

// Either the key that signed the request or the reason it was refused.
class SigV4Result {
 public:
  SigV4Result(SigV4Key key) : v_(std::move(key)) {}        // NOLINT: implicit by design
  SigV4Result(SigV4Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<SigV4Key>(v_); }
  // REQUIRES: ok().
  const SigV4Key& key() const { return std::get<SigV4Key>(v_); }
  // REQUIRES: !ok().
  const SigV4Error& error() const { return std::get<SigV4Error>(v_); }

 private:
  std::variant<SigV4Key, SigV4Error> v_;
};

class SigV4Verifier {
 public:
  // `allowed_regions` empty accepts any region in the credential scope.
  // `max_skew`: how far X-Amz-Date may be from the server clock either way
  // (AWS allows 15 minutes). `service` is the scope's service name; only
  // tests signed for another service (AWS's vectors use "service") change it.
  explicit SigV4Verifier(std::vector<SigV4Key> keys, std::vector<std::string> allowed_regions = {},
                         std::chrono::seconds max_skew = std::chrono::minutes(15),
                         std::string service = "elasticmapreduce");

  // Checks the request's Authorization header against the known keys, with
  // `now` as the server clock. Returns the matching key, or the error to send.
  // Thread-safe (the verifier is immutable after construction).
  SigV4Result verify(const SigV4Request& request, std::chrono::system_clock::time_point now) const;

 private:
  std::vector<SigV4Key> keys_;
  std::vector<std::string> allowed_regions_;
  std::chrono::seconds max_skew_;
  std::string service_;
};

// Every environment's aws_keys, tagged with the environment's name.
std::vector<SigV4Key> sigv4_keys(const ServerConfig& config);

// The canonical URI of a raw request path (non-S3 rules): "." and ".."
// segments and empty segments removed, each remaining byte outside RFC 3986's
// unreserved set percent-encoded (so "%20" becomes "%2520"), "/" kept;
// an empty path is "/".
std::string sigv4_canonical_uri(std::string_view raw_path);

// The canonical query string of a raw query: each name and value
// percent-decoded then encoded with upper-case hex outside the unreserved
// set, pairs sorted by name then value, "name=value" joined with '&'.
// A '+' is taken literally (SigV4 clients encode a space as %20).
std::string sigv4_canonical_query(std::string_view raw_query);

}  // namespace kiln::server
