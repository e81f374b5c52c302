#include "http/message.h"

#include <algorithm>
#include <cassert>

#include "http/deferred.h"

namespace kiln::http {
namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool splits_message(const std::string& s) {
  return s.find_first_of(std::string("\r\n\0", 3)) != std::string::npos;
}

}  // namespace

bool CaseInsensitiveLess::operator()(const std::string& a, const std::string& b) const {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                      [](char x, char y) { return lower(x) < lower(y); });
}

bool Request::has_header(const std::string& key) const { return headers.count(key) > 0; }

std::string Request::get_header_value(const std::string& key, const char* def, size_t id) const {
  auto [begin, end] = headers.equal_range(key);
  for (auto it = begin; it != end; ++it, --id) {
    if (id == 0) return it->second;
  }
  return def;
}

bool Request::has_param(const std::string& key) const { return params.count(key) > 0; }

std::string Request::get_param_value(const std::string& key, size_t id) const {
  auto [begin, end] = params.equal_range(key);
  for (auto it = begin; it != end; ++it, --id) {
    if (id == 0) return it->second;
  }
  return "";
}

bool Response::has_header(const std::string& key) const { return headers.count(key) > 0; }

std::string Response::get_header_value(const std::string& key, const char* def) const {
  auto it = headers.find(key);
  return it == headers.end() ? def : it->second;
}

void Response::set_header(const std::string& key, const std::string& value) {
  if (key.empty() || splits_message(key) || splits_message(value)) return;
  headers.erase(key);
  headers.emplace(key, value);
}

void Response::set_content(const std::string& body_text, const std::string& content_type) {
  body = body_text;
  set_header("Content-Type", content_type);
}

void Response::set_content(std::string&& body_text, const std::string& content_type) {
  body = std::move(body_text);
  set_header("Content-Type", content_type);
}

std::shared_ptr<Deferred> Response::suspend() {
  assert(!deferred_ && "Response::suspend() called twice");
  // A Response made outside a server (a unit test of a handler) gets a
  // Deferred that answers nobody.
  deferred_ = std::make_shared<Deferred>(target_ ? *target_ : DeferredTarget{});
  return deferred_;
}

}  // namespace kiln::http
