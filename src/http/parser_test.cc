#include "http/parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kiln::http {
namespace {

using State = RequestParser::State;

ParserLimits small_limits() {
  ParserLimits l;
  l.max_header_bytes = 1024;
  l.max_target_bytes = 256;
  l.max_headers = 8;
  l.max_body_bytes = 100;
  return l;
}

// Feeds `text` whole and returns the final state.
State parse(RequestParser& p, const std::string& text) {
  p.append(text);
  State s;
  while ((s = p.advance()) == State::kHeadComplete) {
  }
  return s;
}

TEST(RequestParser, ParsesRequestLineHeadersAndQuery) {
  RequestParser p(small_limits());
  ASSERT_EQ(
      parse(p,
            "GET /v1/steps/s%2D1?state=RUNNING,PENDING&limit=5&q=a+b%21 HTTP/1.1\r\n"
            "Host: 127.0.0.1\r\nAuthorization:   Bearer abc  \r\nX-Two: 1\r\nx-two: 2\r\n\r\n"),
      State::kComplete);
  EXPECT_TRUE(p.keep_alive());
  Request r = p.take_request();
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/v1/steps/s%2D1?state=RUNNING,PENDING&limit=5&q=a+b%21");
  EXPECT_EQ(r.path, "/v1/steps/s-1");
  EXPECT_EQ(r.get_param_value("state"), "RUNNING,PENDING");
  EXPECT_EQ(r.get_param_value("limit"), "5");
  EXPECT_EQ(r.get_param_value("q"), "a b!");
  EXPECT_FALSE(r.has_param("nope"));
  EXPECT_EQ(r.get_header_value("authorization"), "Bearer abc");
  EXPECT_EQ(r.get_header_value("X-TWO", "", 0), "1");
  EXPECT_EQ(r.get_header_value("X-TWO", "", 1), "2");
  EXPECT_EQ(r.get_header_value("missing", "dflt"), "dflt");
  EXPECT_TRUE(r.body.empty());
  EXPECT_FALSE(p.started());
}

TEST(RequestParser, ByteByByteGivesTheSameRequestAsWhole) {
  const std::string text =
      "\r\nPOST /v1/steps HTTP/1.1\nHost: h\r\nContent-Length: 11\r\n\r\nhello world";
  RequestParser whole(small_limits());
  ASSERT_EQ(parse(whole, text), State::kComplete);
  RequestParser bytes(small_limits());
  State s = State::kNeedMore;
  bool head_seen = false;
  for (char c : text) {
    bytes.append(std::string(1, c));
    while ((s = bytes.advance()) == State::kHeadComplete) head_seen = true;
    if (s != State::kNeedMore) break;
  }
  ASSERT_EQ(s, State::kComplete);
  EXPECT_TRUE(head_seen);
  Request a = whole.take_request(), b = bytes.take_request();
  EXPECT_EQ(a.method, b.method);
  EXPECT_EQ(a.path, b.path);
  EXPECT_EQ(a.body, "hello world");
  EXPECT_EQ(b.body, "hello world");
}

TEST(RequestParser, PipelinedRequestsComeOneAfterTheOther) {
  RequestParser p(small_limits());
  p.append(
      "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyzGET /b HTTP/1.1\r\nHost: "
      "h\r\nConnection: close\r\n\r\nGET /c");
  EXPECT_EQ(p.advance(), State::kHeadComplete);
  ASSERT_EQ(p.advance(), State::kComplete);
  Request a = p.take_request();
  EXPECT_EQ(a.path, "/a");
  EXPECT_EQ(a.body, "xyz");
  ASSERT_EQ(p.advance(), State::kComplete);
  EXPECT_FALSE(p.keep_alive());
  EXPECT_EQ(p.take_request().path, "/b");
  EXPECT_EQ(p.advance(), State::kNeedMore);
  EXPECT_TRUE(p.started());  // "GET /c" is buffered: the header deadline runs
}

TEST(RequestParser, KeepAliveFollowsVersionAndConnection) {
  RequestParser a(small_limits());
  ASSERT_EQ(parse(a, "GET / HTTP/1.0\r\n\r\n"), State::kComplete);
  EXPECT_FALSE(a.keep_alive());
  RequestParser b(small_limits());
  ASSERT_EQ(parse(b, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), State::kComplete);
  EXPECT_TRUE(b.keep_alive());
  RequestParser c(small_limits());
  ASSERT_EQ(parse(c, "GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, CLOSE\r\n\r\n"),
            State::kComplete);
  EXPECT_FALSE(c.keep_alive());
}

TEST(RequestParser, ExpectContinue) {
  RequestParser p(small_limits());
  p.append("PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\n");
  ASSERT_EQ(p.advance(), State::kHeadComplete);
  EXPECT_TRUE(p.expects_continue());
  EXPECT_EQ(p.content_length(), 4);
  EXPECT_EQ(p.advance(), State::kNeedMore);
  p.append("abcd");
  ASSERT_EQ(p.advance(), State::kComplete);
  EXPECT_EQ(p.take_request().body, "abcd");
}

struct Refusal {
  const char* name;
  std::string text;
  int status;
  const char* message_part;
};

class RequestParserRefuses : public testing::TestWithParam<Refusal> {};

TEST_P(RequestParserRefuses, WithStatusAndMessage) {
  const Refusal& r = GetParam();
  RequestParser p(small_limits());
  ASSERT_EQ(parse(p, r.text), State::kError) << r.name;
  EXPECT_EQ(p.error().status, r.status) << r.name << ": " << p.error().message;
  EXPECT_NE(p.error().message.find(r.message_part), std::string::npos)
      << r.name << ": " << p.error().message;
  // The error is final: more bytes change nothing.
  p.append("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(p.advance(), State::kError);
}

const Refusal kRefusals[] = {
    {"head_over_limit", "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(1100, 'a'), 431,
     "over 1024 bytes"},
    {"complete_head_over_limit",
     "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(1030, 'a') + "\r\n\r\n", 431, "over 1024"},
    {"too_many_headers",
     "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\nG: 1\r\nH: "
     "1\r\n\r\n",
     431, "more than 8 header"},
    {"body_over_limit", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n", 413,
     "101 bytes is over the limit of 100"},
    {"chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 411,
     "chunked request bodies are not supported"},
    {"chunked_with_length",
     "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
     411, "Content-Length"},
    {"other_coding", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
     "'gzip' is not supported"},
    {"conflicting_lengths",
     "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400,
     "not one non-negative integer"},
    {"negative_length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400,
     "Content-Length '-1'"},
    {"huge_length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n",
     400, "Content-Length"},
    {"no_host", "GET / HTTP/1.1\r\n\r\n", 400, "without a Host"},
    {"two_hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "more than one Host"},
    {"obs_fold", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400, "line folding"},
    {"space_before_colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, "is not a token"},
    {"bare_cr", "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400, "bare CR"},
    {"nul_in_value", std::string("GET / HTTP/1.1\r\nHost: h\r\nX: a") + '\0' + "b\r\n\r\n", 400,
     "control character"},
    {"absolute_form", "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "starting with '/'"},
    {"two_spaces", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "request line must be"},
    {"http2", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "not supported"},
    {"garbage_version", "GET / HTTX/1.1\r\nHost: h\r\n\r\n", 400, "malformed HTTP version"},
    {"long_target", "GET /" + std::string(300, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n", 414,
     "longer than 256"},
    {"endless_request_line", "GET /" + std::string(400, 'a'), 414, "longer than 256"},
    {"expect_other", "POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", 417,
     "only 100-continue"},
    {"raw_space_in_target", "GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "percent-encoded"},
};

INSTANTIATE_TEST_SUITE_P(Cases, RequestParserRefuses, testing::ValuesIn(kRefusals),
                         [](const testing::TestParamInfo<Refusal>& info) {
                           return std::string(info.param.name);
                         });

TEST(PercentDecode, LeavesInvalidEscapes) {
  EXPECT_EQ(percent_decode("a%2fb%zz%4", false), "a/b%zz%4");
  EXPECT_EQ(percent_decode("a+b", false), "a+b");
  EXPECT_EQ(percent_decode("a+b", true), "a b");
}

}  // namespace
}  // namespace kiln::http
