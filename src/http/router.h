// Router: which handler answers a request, by method and a regex over the
// decoded path (cpp-httplib's Get/Post/Put/Delete, which the doors used).
// Routes are tried in the order they were added; the first whose pattern
// matches the whole path wins. HEAD requests use the GET routes.
//
// Not thread-safe while routes are added; add them all before the server
// runs, then find() is safe from any thread.
#pragma once

#include <functional>
#include <regex>
#include <string>
#include <vector>

#include "http/message.h"

namespace kiln::http {

using Handler = std::function<void(const Request&, Response&)>;

class Router {
 public:
  // `pattern` is an ECMAScript regex matched against the whole path; its
  // groups land in Request::matches. An invalid pattern is a programmer
  // error (std::regex_error).
  void add(const std::string& method, const std::string& pattern, Handler handler);

  enum class Outcome { kFound, kNoPath, kWrongMethod };
  // The handler for `req` (its matches filled in), or nullptr with why.
  const Handler* find(Request* req, Outcome* outcome) const;

 private:
  // A pattern made only of literal text and ([^/]+) groups each followed
  // by '/' or the end (every route Kiln has) is matched by splitting the
  // path at its slashes, the same answer as the regex in a fraction of the
  // time; any other pattern by std::regex.
  struct Piece {
    bool group;           // ([^/]+)
    std::string literal;  // else: this text
  };
  static bool parse_segments(const std::string& pattern, std::vector<Piece>* pieces);
  static bool match_segments(const std::vector<Piece>& pieces, const std::string& path,
                             std::vector<std::string>* groups);

  struct Route {
    std::string method;
    std::regex pattern;
    std::string prefix;  // literal start of every path `pattern` matches
    std::vector<Piece> pieces;
    bool plain;  // matched by pieces, not by pattern
    Handler handler;
  };
  std::vector<Route> routes_;
};

}  // namespace kiln::http
