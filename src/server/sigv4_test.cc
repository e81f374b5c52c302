#include "server/sigv4.h"

#include <gtest/gtest.h>

#include <strings.h>

#include <cctype>
#include <chrono>

namespace kiln::server {
namespace {

using namespace std::chrono;
using Headers = std::vector<std::pair<std::string, std::string>>;

system_clock::time_point utc(int y, unsigned mo, unsigned d, int h, int mi, int s = 0) {
  return sys_days(year_month_day{year{y}, month{mo}, day{d}}) + hours(h) + minutes(mi) + seconds(s);
}

SigV4Request make_request(std::string method, std::string path, std::string query, Headers headers,
                          std::string body = "") {
  return {std::move(method), std::move(path), std::move(query), std::move(headers),
          std::move(body)};
}

// Replaces every header named `name` (any case) with one `value`, or adds it.
SigV4Request with_header(SigV4Request r, const std::string& name, const std::string& value) {
  std::erase_if(r.headers,
                [&](const auto& h) { return strcasecmp(h.first.c_str(), name.c_str()) == 0; });
  r.headers.emplace_back(name, value);
  return r;
}

SigV4Request without_header(SigV4Request r, const std::string& name) {
  std::erase_if(r.headers,
                [&](const auto& h) { return strcasecmp(h.first.c_str(), name.c_str()) == 0; });
  return r;
}

std::string header(const SigV4Request& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
  return {};
}

// Replaces the first `from` in the Authorization header with `to`.
SigV4Request edit_authorization(SigV4Request r, const std::string& from, const std::string& to) {
  std::string auth = header(r, "Authorization");
  const size_t at = auth.find(from);
  EXPECT_NE(at, std::string::npos) << from << " not in " << auth;
  if (at != std::string::npos) auth.replace(at, from.size(), to);
  return with_header(std::move(r), "Authorization", auth);
}

// Flips the last hex digit of the signature.
SigV4Request corrupt_signature(SigV4Request r) {
  std::string auth = header(r, "Authorization");
  auth.back() = auth.back() == '0' ? '1' : '0';
  return with_header(std::move(r), "Authorization", auth);
}

::testing::AssertionResult accepted(const SigV4Result& r) {
  if (r.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << r.error().type << " (" << r.error().http_status << "): " << r.error().message;
}

::testing::AssertionResult refused(const SigV4Result& r, const std::string& type, int status,
                                   const std::string& message_part) {
  if (r.ok())
    return ::testing::AssertionFailure() << "accepted, signed by " << r.key().access_key_id;
  const SigV4Error& e = r.error();
  if (e.type != type || e.http_status != status ||
      e.message.find(message_part) == std::string::npos) {
    return ::testing::AssertionFailure()
           << "got " << e.type << " (" << e.http_status << "): " << e.message;
  }
  return ::testing::AssertionSuccess();
}

const std::string kSignatureMismatch =
    "The request signature we calculated does not match the signature you provided.";

// ---------------------------------------------------------------------------
// AWS's published Signature Version 4 test suite: credentials AKIDEXAMPLE /
// wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, region us-east-1, service
// "service", 20150830T123600Z. Requests and signatures as published in
// awslabs/aws-c-auth tests/aws-signing-test-suite/v4/<name>/
// header-signed-request.txt (the suite AWS's SigV4 documentation points to).

struct SuiteCase {
  const char* name;
  const char* method;
  const char* path;   // as on the request line
  const char* query;  // after '?'
  Headers extra_headers;
  const char* signed_headers;
  const char* signature;
  const char* body = "";
};

SigV4Request suite_request(const SuiteCase& c) {
  Headers h = {{"Host", "example.amazonaws.com"}};
  for (const auto& e : c.extra_headers) h.push_back(e);
  h.emplace_back("X-Amz-Date", "20150830T123600Z");
  h.emplace_back("Authorization",
                 std::string("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                             "aws4_request, SignedHeaders=") +
                     c.signed_headers + ", Signature=" + c.signature);
  return make_request(c.method, c.path, c.query, std::move(h), c.body);
}

// The suite signs only what each case needs (often host;x-amz-date), so
// its verifier requires only Host, as AWS does.
SigV4Verifier suite_verifier() {
  return SigV4Verifier({{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "example"}}, {},
                       minutes(15), "service", {"host"});
}

const system_clock::time_point kSuiteTime = utc(2015, 8, 30, 12, 36);

const std::vector<SuiteCase>& suite_cases() {
  static const std::vector<SuiteCase> cases = {
      {"get-vanilla",
       "GET",
       "/",
       "",
       {},
       "host;x-amz-date",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-vanilla-query-order-key-case",
       "GET",
       "/",
       "Param2=value2&Param1=value1",
       {},
       "host;x-amz-date",
       "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
      {"get-vanilla-empty-query-key",
       "GET",
       "/",
       "Param1=value1",
       {},
       "host;x-amz-date",
       "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
      {"get-vanilla-query-unreserved",
       "GET",
       "/",
       "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz="
       "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
       {},
       "host;x-amz-date",
       "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
      {"get-vanilla-utf8-query",
       "GET",
       "/",
       "\xE1\x88\xB4=bar",
       {},
       "host;x-amz-date",
       "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
      {"get-utf8",
       "GET",
       "/\xE1\x88\xB4",
       "",
       {},
       "host;x-amz-date",
       "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
      {"get-unreserved",
       "GET",
       "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
       "",
       {},
       "host;x-amz-date",
       "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
      {"get-space-normalized",
       "GET",
       "/example space/",
       "",
       {},
       "host;x-amz-date",
       "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
      {"get-slashes-normalized",
       "GET",
       "//example//",
       "",
       {},
       "host;x-amz-date",
       "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"},
      {"get-relative-relative-normalized",
       "GET",
       "/example1/example2/../..",
       "",
       {},
       "host;x-amz-date",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-header-value-trim",
       "GET",
       "/",
       "",
       {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}},
       "host;my-header1;my-header2;x-amz-date",
       "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
      {"get-header-key-duplicate",
       "GET",
       "/",
       "",
       {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}},
       "host;my-header1;x-amz-date",
       "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
      {"get-header-value-order",
       "GET",
       "/",
       "",
       {{"My-Header1", "value4"},
        {"My-Header1", "value1"},
        {"My-Header1", "value3"},
        {"My-Header1", "value2"}},
       "host;my-header1;x-amz-date",
       "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
      {"post-vanilla",
       "POST",
       "/",
       "",
       {},
       "host;x-amz-date",
       "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
      {"post-x-www-form-urlencoded",
       "POST",
       "/",
       "",
       {{"Content-Type", "application/x-www-form-urlencoded"},
        {"Content-Length", "13"},
        {"x-amz-content-sha256",
         "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"}},
       "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
       "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
       "Param1=value1"},
  };
  return cases;
}

TEST(SigV4AwsSuite, EveryPublishedSignatureVerifies) {
  const SigV4Verifier v = suite_verifier();
  for (const SuiteCase& c : suite_cases()) {
    SCOPED_TRACE(c.name);
    const SigV4Result r = v.verify(suite_request(c), kSuiteTime);
    ASSERT_TRUE(accepted(r));
    EXPECT_EQ(r.key().access_key_id, "AKIDEXAMPLE");
    EXPECT_EQ(r.key().environment, "example");
  }
}

TEST(SigV4AwsSuite, AnyOtherSignatureIsRefused) {
  const SigV4Verifier v = suite_verifier();
  for (const SuiteCase& c : suite_cases()) {
    SCOPED_TRACE(c.name);
    EXPECT_TRUE(refused(v.verify(corrupt_signature(suite_request(c)), kSuiteTime),
                        "InvalidSignatureException", 400, kSignatureMismatch));
  }
}

TEST(SigV4AwsSuite, MismatchShowsTheDocumentedCanonicalRequestAndStringToSign) {
  const SigV4Result r =
      suite_verifier().verify(corrupt_signature(suite_request(suite_cases()[0])), kSuiteTime);
  ASSERT_FALSE(r.ok());
  // get-vanilla's canonical request and string to sign, as published.
  EXPECT_NE(
      r.error().message.find("'GET\n/\n\nhost:example.amazonaws.com\n"
                             "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
                             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'"),
      std::string::npos)
      << r.error().message;
  EXPECT_NE(
      r.error().message.find("'AWS4-HMAC-SHA256\n20150830T123600Z\n"
                             "20150830/us-east-1/service/aws4_request\n"
                             "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63'"),
      std::string::npos)
      << r.error().message;
}

TEST(SigV4AwsSuite, TheSuiteSignatureIsRefusedForAnotherService) {
  // The same request against the real endpoint's verifier: scoped to "service".
  const SigV4Verifier emr({{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "example"}});
  EXPECT_TRUE(refused(emr.verify(suite_request(suite_cases()[0]), kSuiteTime),
                      "InvalidSignatureException", 400,
                      "Credential should be scoped to correct service: 'elasticmapreduce'."));
}

// ---------------------------------------------------------------------------
// Requests signed by the botocore installed with Debian's python3-botocore
// 1.29.27 (boto3 1.26.27), the way `aws emr` and boto3 send them to
// endpoint_url http://127.0.0.1:8470, with the clock frozen at
// 2024-03-01T12:00:00Z. See the end of this file for how they were made.
// botocore's pure-Python SigV4Auth and its awscrt signer (used by default
// when awscrt is installed) produced identical signatures for every one.

constexpr char kBotoKeyId[] = "AKIAKILNEXAMPLE00001";
constexpr char kBotoSecret[] = "kiln/Secret+Example/0123456789abcdefghij";
const system_clock::time_point kBotoTime = utc(2024, 3, 1, 12, 0);

SigV4Verifier boto_verifier(std::vector<std::string> regions = {}) {
  return SigV4Verifier({{"AKIAOTHERKEY00000002", "another secret", "staging"},
                        {kBotoKeyId, kBotoSecret, "production"}},
                       std::move(regions));
}

// `aws emr describe-cluster --cluster-id j-KILNTEST0001` (client.describe_cluster).
SigV4Request botocore_describe_cluster() {
  return make_request(
      "POST", "/", "",
      {{"X-Amz-Target", "ElasticMapReduce.DescribeCluster"},
       {"Content-Type", "application/x-amz-json-1.1"},
       {"User-Agent", "Botocore/1.29.27 Python/3.11.2 Linux/6.18.44-fc-v782 awscrt/1.0.0.dev0"},
       {"host", "127.0.0.1:8470"},
       {"X-Amz-Date", "20240301T120000Z"},
       {"Authorization",
        "AWS4-HMAC-SHA256 "
        "Credential=AKIAKILNEXAMPLE00001/20240301/us-east-1/elasticmapreduce/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
        "Signature=308c09d2b9c0c22806b42810becc6ea69403483ab00bdabffa07a5282e234ba3"},
       {"amz-sdk-invocation-id", "150eff1c-acde-4c95-9ebf-228c5178ed8f"},
       {"amz-sdk-request", "attempt=1"},
       {"Content-Length", "31"}},
      R"({"ClusterId": "j-KILNTEST0001"})");
}

// client.add_job_flow_steps: the call this endpoint exists for.
SigV4Request botocore_add_job_flow_steps() {
  return make_request(
      "POST", "/", "",
      {{"X-Amz-Target", "ElasticMapReduce.AddJobFlowSteps"},
       {"Content-Type", "application/x-amz-json-1.1"},
       {"User-Agent", "Botocore/1.29.27 Python/3.11.2 Linux/6.18.44-fc-v782"},
       {"Host", "127.0.0.1:8470"},
       {"X-Amz-Date", "20240301T120000Z"},
       {"Authorization",
        "AWS4-HMAC-SHA256 "
        "Credential=AKIAKILNEXAMPLE00001/20240301/us-east-1/elasticmapreduce/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
        "Signature=5c089914769cd2fa539a2098577da960cdf8a3b118a561da8adcc6746790916d"},
       {"amz-sdk-invocation-id", "74c2ba1c-d2f7-4714-9536-bc89e76ef992"},
       {"amz-sdk-request", "attempt=1"},
       {"Content-Length", "245"}},
      R"({"JobFlowId": "j-KILNTEST0001", "Steps": [{"Name": "ingest sentinel-2 tile 31UFU", )"
      R"("ActionOnFailure": "CONTINUE", "HadoopJarStep": {"Jar": "command-runner.jar", "Args": )"
      R"(["kiln", "ingest", "--layer", "S2 \u00e9t\u00e9", "s3://bucket/a b.tif"]}}]})");
}

TEST(SigV4Botocore, DescribeClusterIsAcceptedAndNamesItsEnvironment) {
  const SigV4Result r = boto_verifier().verify(botocore_describe_cluster(), kBotoTime);
  ASSERT_TRUE(accepted(r));
  EXPECT_EQ(r.key().access_key_id, kBotoKeyId);
  EXPECT_EQ(r.key().environment, "production");
}

TEST(SigV4Botocore, AddJobFlowStepsIsAccepted) {
  EXPECT_TRUE(accepted(boto_verifier().verify(botocore_add_job_flow_steps(), kBotoTime)));
}

TEST(SigV4Botocore, HeaderNamesInAnyCaseAreTheSameHeaders) {
  SigV4Request r = botocore_describe_cluster();
  for (auto& [name, value] : r.headers)
    for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(accepted(boto_verifier().verify(r, kBotoTime)));
}

TEST(SigV4Botocore, OneChangedBodyByteIsRefused) {
  SigV4Request r = botocore_add_job_flow_steps();
  r.body[r.body.find("CONTINUE")] = 'X';  // "XONTINUE"
  EXPECT_TRUE(refused(boto_verifier().verify(r, kBotoTime), "InvalidSignatureException", 400,
                      kSignatureMismatch));
  SigV4Request d = botocore_describe_cluster();
  d.body.back() = ']';
  EXPECT_TRUE(refused(boto_verifier().verify(d, kBotoTime), "InvalidSignatureException", 400,
                      kSignatureMismatch));
}

TEST(SigV4Botocore, AChangedSignedHeaderIsRefusedAnUnsignedOneIsNot) {
  const SigV4Request r = botocore_describe_cluster();
  EXPECT_TRUE(
      refused(boto_verifier().verify(
                  with_header(r, "X-Amz-Target", "ElasticMapReduce.TerminateJobFlows"), kBotoTime),
              "InvalidSignatureException", 400, kSignatureMismatch));
  EXPECT_TRUE(refused(boto_verifier().verify(with_header(r, "Host", "kiln.example.com"), kBotoTime),
                      "InvalidSignatureException", 400, kSignatureMismatch));
  EXPECT_TRUE(
      accepted(boto_verifier().verify(with_header(r, "User-Agent", "something else"), kBotoTime)));
}

TEST(SigV4Botocore, TheWrongSecretIsRefused) {
  const SigV4Verifier v({{kBotoKeyId, "kiln/Secret+Example/0123456789abcdefghiJ", "production"}});
  EXPECT_TRUE(refused(v.verify(botocore_describe_cluster(), kBotoTime), "InvalidSignatureException",
                      400, kSignatureMismatch));
}

TEST(SigV4Botocore, AnUnknownAccessKeyIsUnrecognized) {
  const SigV4Verifier v({{"AKIAOTHERKEY00000002", kBotoSecret, "staging"}});
  EXPECT_TRUE(refused(v.verify(botocore_describe_cluster(), kBotoTime),
                      "UnrecognizedClientException", 400,
                      "The security token included in the request is invalid."));
  const SigV4Verifier none({});
  EXPECT_TRUE(refused(none.verify(botocore_describe_cluster(), kBotoTime),
                      "UnrecognizedClientException", 400, "security token"));
}

TEST(SigV4Botocore, FifteenMinutesOfSkewEitherWayAndNoMore) {
  const SigV4Verifier v = boto_verifier();
  const SigV4Request r = botocore_describe_cluster();
  EXPECT_TRUE(accepted(v.verify(r, kBotoTime + minutes(15))));
  EXPECT_TRUE(accepted(v.verify(r, kBotoTime - minutes(15))));
  EXPECT_TRUE(refused(v.verify(r, kBotoTime + minutes(16)), "InvalidSignatureException", 400,
                      "Signature expired: 20240301T120000Z is now earlier than 20240301T120100Z "
                      "(20240301T121600Z - 15 min.)"));
  EXPECT_TRUE(refused(v.verify(r, kBotoTime - minutes(16)), "InvalidSignatureException", 400,
                      "Signature not yet current: 20240301T120000Z is still later than "
                      "20240301T115900Z (20240301T114400Z + 15 min.)"));
  // A tighter server setting is honoured.
  const SigV4Verifier strict({{kBotoKeyId, kBotoSecret, "production"}}, {}, seconds(90));
  EXPECT_TRUE(refused(strict.verify(r, kBotoTime + seconds(91)), "InvalidSignatureException", 400,
                      "(20240301T120131Z - 90 sec.)"));
}

TEST(SigV4Botocore, RegionsAreCheckedOnlyWhenConfigured) {
  const SigV4Request r = botocore_describe_cluster();
  EXPECT_TRUE(accepted(boto_verifier({"eu-west-1", "us-east-1"}).verify(r, kBotoTime)));
  EXPECT_TRUE(refused(boto_verifier({"eu-west-1"}).verify(r, kBotoTime),
                      "InvalidSignatureException", 400,
                      "Credential should be scoped to a valid region, not 'us-east-1'. This "
                      "endpoint accepts: eu-west-1."));
}

TEST(SigV4Botocore, ADateHeaderMayStandInForXAmzDate) {
  // botocore's own signer, when the request carries a Date header: it
  // rewrites it in email.utils.formatdate's "-0000" form and signs it
  // instead of adding X-Amz-Date.
  const SigV4Request python_signed = make_request(
      "POST", "/", "",
      {{"X-Amz-Target", "ElasticMapReduce.DescribeCluster"},
       {"Content-Type", "application/x-amz-json-1.1"},
       {"User-Agent", "Botocore/1.29.27 Python/3.11.2 Linux/6.18.44-fc-v782"},
       {"Date", "Fri, 01 Mar 2024 12:00:00 -0000"},
       {"Host", "127.0.0.1:8470"},
       {"Authorization",
        "AWS4-HMAC-SHA256 "
        "Credential=AKIAKILNEXAMPLE00001/20240301/us-east-1/elasticmapreduce/aws4_request, "
        "SignedHeaders=content-type;date;host;x-amz-target, "
        "Signature=68053400d5297b37fdd8041de6e292edc7691874e06a60b7ebc8199d362ed1e9"},
       {"Content-Length", "31"}},
      R"({"ClusterId": "j-KILNTEST0001"})");
  EXPECT_TRUE(accepted(boto_verifier().verify(python_signed, kBotoTime)));
  EXPECT_TRUE(refused(boto_verifier().verify(python_signed, kBotoTime + minutes(16)),
                      "InvalidSignatureException", 400, "Signature expired: 20240301T120000Z"));
  // The awscrt signer keeps the Date header as it was, signs it, and adds
  // X-Amz-Date, which then decides the time.
  const SigV4Request crt_signed = make_request(
      "POST", "/", "",
      {{"X-Amz-Target", "ElasticMapReduce.DescribeCluster"},
       {"Content-Type", "application/x-amz-json-1.1"},
       {"Date", "placeholder"},
       {"host", "127.0.0.1:8470"},
       {"X-Amz-Date", "20240301T120000Z"},
       {"Authorization",
        "AWS4-HMAC-SHA256 "
        "Credential=AKIAKILNEXAMPLE00001/20240301/us-east-1/elasticmapreduce/aws4_request, "
        "SignedHeaders=content-type;date;host;x-amz-date;x-amz-target, "
        "Signature=abc9c17e82d72aa3a32697cbf23f2a9c9f16879b330e5ce7fb687e8f7431f8cc"}},
      R"({"ClusterId": "j-KILNTEST0001"})");
  EXPECT_TRUE(accepted(boto_verifier().verify(crt_signed, kBotoTime)));
}

TEST(SigV4Botocore, PathsAreNormalisedAndDoubleEncodedLikeBotocore) {
  // Signed for http://127.0.0.1:8470/kiln/a%20b/./c//%E1%88%B4/..//d~e/
  // ?b=2&a=%20x&a=1&c: botocore signs the canonical URI
  // /kiln/a%2520b/c/d~e/ and the query a=%20x&a=1&b=2&c=.
  SigV4Request r = make_request(
      "POST", "/kiln/a%20b/./c//%E1%88%B4/..//d~e/", "b=2&a=%20x&a=1&c",
      {{"Content-Type", "application/x-amz-json-1.1"},
       {"X-Amz-Target", "ElasticMapReduce.ListSteps"},
       {"host", "127.0.0.1:8470"},
       {"X-Amz-Date", "20240301T120000Z"},
       {"Authorization",
        "AWS4-HMAC-SHA256 "
        "Credential=AKIAKILNEXAMPLE00001/20240301/us-east-1/elasticmapreduce/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
        "Signature=2e6cfddb2d15ca748646fb833c9ab33968618380bab62d8c28959bb8046c0b57"}},
      R"({"ClusterId": "j-KILNTEST0001"})");
  EXPECT_TRUE(accepted(boto_verifier().verify(r, kBotoTime)));
  // What urllib3 1.26 actually puts on the request line for that URL: it
  // resolves the dot segments itself but keeps the empty ones.
  r.path = "/kiln/a%20b/c///d~e/";
  EXPECT_TRUE(accepted(boto_verifier().verify(r, kBotoTime)));
  // Decoding the path before verifying (as httplib's req.path does) breaks it.
  r.path = "/kiln/a b/c/\xE1\x88\xB4/../d~e/";
  EXPECT_TRUE(refused(boto_verifier().verify(r, kBotoTime), "InvalidSignatureException", 400,
                      kSignatureMismatch));
}

// Signed with an explicit X-Amz-Content-SHA256 (both botocore signers agree).
SigV4Request botocore_with_content_sha256() {
  return make_request(
      "POST", "/", "",
      {{"Content-Type", "application/x-amz-json-1.1"},
       {"X-Amz-Target", "ElasticMapReduce.DescribeCluster"},
       {"X-Amz-Content-SHA256", "c73795ece751ae845ccbe54265f0f4ef47b250da475e7af7635214c7aee0903f"},
       {"Host", "127.0.0.1:8470"},
       {"X-Amz-Date", "20240301T120000Z"},
       {"Authorization",
        "AWS4-HMAC-SHA256 "
        "Credential=AKIAKILNEXAMPLE00001/20240301/us-east-1/elasticmapreduce/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-target, "
        "Signature=46944a97e031d82e300a244f9e221802c3d771b0e356e89b4a2ef538f0334836"}},
      R"({"ClusterId": "j-KILNTEST0001"})");
}

TEST(SigV4Botocore, AStatedPayloadHashMustBeTheBodys) {
  SigV4Request r = botocore_with_content_sha256();
  EXPECT_TRUE(accepted(boto_verifier().verify(r, kBotoTime)));
  r.body = R"({"ClusterId": "j-KILNTEST0002"})";
  EXPECT_TRUE(refused(boto_verifier().verify(r, kBotoTime), "InvalidSignatureException", 400,
                      "The provided 'x-amz-content-sha256' header does not match what was "
                      "computed."));
}

TEST(SigV4Botocore, AStatedPayloadHashIsTheBodysExactlyAndNeverStandsInForIt) {
  // The stated hash in upper case names the same bytes, but the canonical
  // request carries the hash the server computed: refused, and said why.
  const SigV4Request r = botocore_with_content_sha256();
  std::string upper = header(r, "X-Amz-Content-SHA256");
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(
      refused(boto_verifier().verify(with_header(r, "X-Amz-Content-SHA256", upper), kBotoTime),
              "InvalidSignatureException", 400,
              "The provided 'x-amz-content-sha256' header does not match"));
}

TEST(SigV4Botocore, AnAcceptedRequestCarriesItsSignatureAndSigningTime) {
  const SigV4Result r = boto_verifier().verify(botocore_describe_cluster(), kBotoTime + minutes(3));
  ASSERT_TRUE(accepted(r));
  EXPECT_EQ(r.accepted().signature,
            "308c09d2b9c0c22806b42810becc6ea69403483ab00bdabffa07a5282e234ba3");
  EXPECT_EQ(r.accepted().signed_at, floor<seconds>(kBotoTime));
}

// A CancelSteps body signed by botocore (same session as above) with only
// Host present, so SignedHeaders=host;x-amz-date: the shape of issue 14's
// finding, where X-Amz-Target was added after signing.
SigV4Request botocore_signed_over_host_and_date() {
  return make_request(
      "POST", "/", "",
      {{"Host", "127.0.0.1:8470"},
       {"X-Amz-Date", "20240301T120000Z"},
       {"Authorization",
        "AWS4-HMAC-SHA256 "
        "Credential=AKIAKILNEXAMPLE00001/20240301/us-east-1/elasticmapreduce/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=b9945c1ff9e6e5930356fb12c73c076154e1a9c8b14873fcae9a6ffa85a0710f"}},
      R"({"ClusterId": "j-KILNTEST0001", "StepIds": ["s-KILNTEST0001"]})");
}

TEST(SigV4Botocore, EveryHeaderTheEndpointActsOnMustBeSigned) {
  const SigV4Request narrow = botocore_signed_over_host_and_date();
  // The signature is genuine: a verifier that asks only for Host (AWS's
  // rule) accepts it, with the forged target too.
  const SigV4Verifier host_only({{kBotoKeyId, kBotoSecret, "production"}}, {}, minutes(15),
                                "elasticmapreduce", {"host"});
  EXPECT_TRUE(accepted(host_only.verify(narrow, kBotoTime)));
  const SigV4Request forged =
      with_header(with_header(narrow, "X-Amz-Target", "ElasticMapReduce.CancelSteps"),
                  "Content-Type", "application/x-amz-json-1.1");
  EXPECT_TRUE(accepted(host_only.verify(forged, kBotoTime)));
  // Kiln's EMR verifier refuses both, naming what was not signed.
  for (const SigV4Request& r : {narrow, forged}) {
    EXPECT_TRUE(refused(boto_verifier().verify(r, kBotoTime), "InvalidSignatureException", 400,
                        "This endpoint requires SignedHeaders to include "
                        "content-type;host;x-amz-date;x-amz-target; not signed: content-type, "
                        "x-amz-target."));
  }
  // Each of the four on its own, on botocore's full request.
  for (const char* required : {"content-type", "x-amz-date", "x-amz-target"}) {
    const std::string name = required;
    SCOPED_TRACE(name);
    std::string list = "content-type;host;x-amz-date;x-amz-target";
    list.erase(list.find(name), name.size() + (name == "x-amz-target" ? 0 : 1));
    if (list.back() == ';') list.pop_back();
    const SigV4Request r = edit_authorization(botocore_describe_cluster(),
                                              "content-type;host;x-amz-date;x-amz-target", list);
    EXPECT_TRUE(refused(boto_verifier().verify(r, kBotoTime), "InvalidSignatureException", 400,
                        "not signed: " + name + "."));
  }
}

TEST(SigV4Botocore, ASignedHeaderTheEndpointActsOnMayAppearOnce) {
  SigV4Request r = botocore_describe_cluster();
  r.headers.emplace_back("X-Amz-Target", "ElasticMapReduce.CancelSteps");
  EXPECT_TRUE(refused(boto_verifier().verify(r, kBotoTime), "InvalidSignatureException", 400,
                      "The signed header 'x-amz-target' appears 2 times"));
}

TEST(SigV4Botocore, AnUnsignedPayloadIsRefused) {
  const SigV4Request r =
      with_header(botocore_with_content_sha256(), "X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD");
  EXPECT_TRUE(refused(boto_verifier().verify(r, kBotoTime), "InvalidSignatureException", 400,
                      "requires a signed payload"));
}

// ---------------------------------------------------------------------------
// Each refusal, on an otherwise valid botocore request.

TEST(SigV4Errors, NoAuthorizationHeaderIsAMissingToken) {
  const SigV4Request r = without_header(botocore_describe_cluster(), "Authorization");
  EXPECT_TRUE(refused(boto_verifier().verify(r, kBotoTime), "MissingAuthenticationTokenException",
                      403, "Missing Authentication Token"));
}

TEST(SigV4Errors, PresignedUrlsAndBareSessionTokensAreIncomplete) {
  SigV4Request presigned = without_header(botocore_describe_cluster(), "Authorization");
  presigned.query =
      "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAKILNEXAMPLE00001%2F20240301%2F"
      "us-east-1%2Felasticmapreduce%2Faws4_request&X-Amz-Signature=00";
  EXPECT_TRUE(refused(boto_verifier().verify(presigned, kBotoTime), "IncompleteSignatureException",
                      400, "not presigned URLs"));
  const SigV4Request token =
      with_header(without_header(botocore_describe_cluster(), "Authorization"),
                  "X-Amz-Security-Token", "FwoGZXIvYXdzE");
  EXPECT_TRUE(refused(boto_verifier().verify(token, kBotoTime), "IncompleteSignatureException", 400,
                      "X-Amz-Security-Token"));
}

TEST(SigV4Errors, ABearerTokenIsAnIncompleteSignature) {
  const SigV4Request r = with_header(botocore_describe_cluster(), "Authorization", "Bearer abc123");
  EXPECT_TRUE(refused(boto_verifier().verify(r, kBotoTime), "IncompleteSignatureException", 400,
                      "Unsupported Authorization scheme 'Bearer'"));
}

TEST(SigV4Errors, EveryMissingPartIsNamed) {
  const SigV4Request r =
      with_header(botocore_describe_cluster(), "Authorization",
                  "AWS4-HMAC-SHA256 Credential=AKIAKILNEXAMPLE00001/20240301/us-east-1/"
                  "elasticmapreduce/aws4_request");
  const SigV4Result result = boto_verifier().verify(r, kBotoTime);
  EXPECT_TRUE(refused(result, "IncompleteSignatureException", 400,
                      "Authorization header requires 'Signature' parameter. Authorization header "
                      "requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 "));
  EXPECT_EQ(result.error().message.find("'Credential'"), std::string::npos);
}

TEST(SigV4Errors, ARequestWithoutADateIsIncomplete) {
  const SigV4Request r = without_header(botocore_describe_cluster(), "X-Amz-Date");
  EXPECT_TRUE(refused(boto_verifier().verify(r, kBotoTime), "IncompleteSignatureException", 400,
                      "requires existence of either a 'X-Amz-Date' or a 'Date' header"));
}

TEST(SigV4Errors, ADateNotInBasicFormatIsIncomplete) {
  const SigV4Request r =
      with_header(botocore_describe_cluster(), "X-Amz-Date", "2024-03-01T12:00:00Z");
  EXPECT_TRUE(refused(boto_verifier().verify(r, kBotoTime), "IncompleteSignatureException", 400,
                      "Date must be in ISO-8601 'basic format'. Got '2024-03-01T12:00:00Z'"));
  EXPECT_TRUE(refused(
      boto_verifier().verify(
          with_header(botocore_describe_cluster(), "X-Amz-Date", "20240231T120000Z"), kBotoTime),
      "IncompleteSignatureException", 400, "'basic format'"));
}

TEST(SigV4Errors, AMalformedCredentialIsIncomplete) {
  const SigV4Request r = edit_authorization(botocore_describe_cluster(),
                                            "/us-east-1/elasticmapreduce/", "/us-east-1/");
  EXPECT_TRUE(refused(boto_verifier().verify(r, kBotoTime), "IncompleteSignatureException", 400,
                      "Credential must have exactly 5 slash-delimited elements"));
}

TEST(SigV4Errors, AnotherServiceOrTerminatorIsAnInvalidSignature) {
  EXPECT_TRUE(refused(
      boto_verifier().verify(
          edit_authorization(botocore_describe_cluster(), "/elasticmapreduce/", "/s3/"), kBotoTime),
      "InvalidSignatureException", 400,
      "Credential should be scoped to correct service: 'elasticmapreduce'."));
  EXPECT_TRUE(refused(boto_verifier().verify(edit_authorization(botocore_describe_cluster(),
                                                                "/aws4_request", "/aws4_reqest"),
                                             kBotoTime),
                      "InvalidSignatureException", 400,
                      "Credential should be scoped with a valid terminator: 'aws4_request', not "
                      "'aws4_reqest'."));
}

TEST(SigV4Errors, TheCredentialDateMustBeTheRequestsDate) {
  const SigV4Request r =
      edit_authorization(botocore_describe_cluster(), "/20240301/", "/20240302/");
  EXPECT_TRUE(refused(boto_verifier().verify(r, kBotoTime), "InvalidSignatureException", 400,
                      "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                      "date from HTTP: '20240302' != '20240301', from '20240301T120000Z'."));
}

TEST(SigV4Errors, HostMustBeSigned) {
  const SigV4Request r = edit_authorization(
      botocore_describe_cluster(), "content-type;host;x-amz-date", "content-type;x-amz-date");
  EXPECT_TRUE(refused(boto_verifier().verify(r, kBotoTime), "InvalidSignatureException", 400,
                      "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."));
}

TEST(SigV4Errors, ASessionTokenIsUnrecognized) {
  // Kiln issues no temporary credentials; AWS answers an invalid token so.
  const SigV4Request r =
      with_header(botocore_describe_cluster(), "X-Amz-Security-Token", "FwoGZXIvYXdzE");
  EXPECT_TRUE(refused(boto_verifier().verify(r, kBotoTime), "UnrecognizedClientException", 400,
                      "The security token included in the request is invalid."));
}

TEST(SigV4Errors, ASignatureOfTheWrongLengthIsAMismatch) {
  const SigV4Request r = edit_authorization(
      botocore_describe_cluster(),
      "Signature=308c09d2b9c0c22806b42810becc6ea69403483ab00bdabffa07a5282e234ba3",
      "Signature=308c09d2b9c0c22806b42810becc6ea69403483ab00bdabffa07a5282e234b");
  EXPECT_TRUE(refused(boto_verifier().verify(r, kBotoTime), "InvalidSignatureException", 400,
                      kSignatureMismatch));
}

// ---------------------------------------------------------------------------
// The canonical forms on their own.

TEST(SigV4Canonical, Uri) {
  EXPECT_EQ(sigv4_canonical_uri(""), "/");
  EXPECT_EQ(sigv4_canonical_uri("/"), "/");
  EXPECT_EQ(sigv4_canonical_uri("//example//"), "/example/");
  EXPECT_EQ(sigv4_canonical_uri("/a/./b/../../.."), "/");
  EXPECT_EQ(sigv4_canonical_uri("/a%20b/c+d=e"), "/a%2520b/c%2Bd%3De");
  EXPECT_EQ(sigv4_canonical_uri("/\xE1\x88\xB4"), "/%E1%88%B4");
  EXPECT_EQ(sigv4_canonical_uri("/-._~"), "/-._~");
  // Request-targets that are not absolute paths are read as rooted: the
  // canonical URI is never empty or relative (a fuzz finding: "." was "").
  EXPECT_EQ(sigv4_canonical_uri("."), "/");
  EXPECT_EQ(sigv4_canonical_uri("./.."), "/");
  EXPECT_EQ(sigv4_canonical_uri("a/b/"), "/a/b/");
  EXPECT_EQ(sigv4_canonical_uri("*"), "/%2A");
}

TEST(SigV4Canonical, Query) {
  EXPECT_EQ(sigv4_canonical_query(""), "");
  EXPECT_EQ(sigv4_canonical_query("Param2=value2&Param1=value1"), "Param1=value1&Param2=value2");
  EXPECT_EQ(sigv4_canonical_query("b=2&a=2&a=1"), "a=1&a=2&b=2");
  EXPECT_EQ(sigv4_canonical_query("flag&x=%7e%7E"), "flag=&x=~~");
  EXPECT_EQ(sigv4_canonical_query("q=a+b&r=a%20b&s=a/b"), "q=a%2Bb&r=a%20b&s=a%2Fb");
  EXPECT_EQ(sigv4_canonical_query("\xE1\x88\xB4=bar&bad=%zz"), "%E1%88%B4=bar&bad=%25zz");
}

TEST(SigV4Keys, EveryEnvironmentsKeysAreTaggedWithItsName) {
  ServerConfig c;
  c.environments.push_back({"production", {}, "/c", 1, 0, {{"AKIA1", "s1"}, {"AKIA2", "s2"}}});
  c.environments.push_back({"staging", {}, "/c", 1, 0, {{"AKIA3", "s3"}}});
  const std::vector<SigV4Key> keys = sigv4_keys(c);
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_EQ(keys[1].access_key_id, "AKIA2");
  EXPECT_EQ(keys[1].secret_access_key, "s2");
  EXPECT_EQ(keys[1].environment, "production");
  EXPECT_EQ(keys[2].environment, "staging");
}

// How the botocore fixtures were made (/usr/bin/python3, python3-botocore
// 1.29.27; BOTO_DISABLE_CRT=true selects the pure-Python signer):
//
//   import datetime
//   class Frozen(datetime.datetime):
//       @classmethod
//       def utcnow(cls): return datetime.datetime(2024, 3, 1, 12, 0, 0)
//   datetime.datetime = Frozen
//   import botocore.session
//   from botocore.awsrequest import AWSResponse
//   c = botocore.session.get_session().create_client(
//       'emr', region_name='us-east-1', endpoint_url='http://127.0.0.1:8470',
//       aws_access_key_id='AKIAKILNEXAMPLE00001',
//       aws_secret_access_key='kiln/Secret+Example/0123456789abcdefghij')
//   def before_send(request, **kw):   # print what would go on the wire
//       print(request.method, request.url, list(request.headers.items()), request.body)
//       r = AWSResponse(request.url, 200, {}, None); r._content = b'{}'; return r
//   c.meta.events.register('before-send', before_send)
//   c.describe_cluster(ClusterId='j-KILNTEST0001')
//
// The Date-header case adds request.headers['Date'] in a 'before-sign'
// handler; the path and X-Amz-Content-SHA256 cases sign an AWSRequest
// directly with botocore.auth.SigV4Auth / botocore.crt.auth.CrtSigV4Auth
// (service 'elasticmapreduce', region 'us-east-1'). Host is added as
// urllib3 sends it when the signer did not set it.

}  // namespace
}  // namespace kiln::server
