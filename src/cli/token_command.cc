// `kiln token new|hash`: API tokens for kiln.toml. The configuration stores
// only a token's SHA-256, so the file is no secret (server/auth.h).
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "server/auth.h"

namespace kiln::cli {
namespace {

struct TokenFlags {
  std::string token;
};

int run_new() {
  const std::string token = server::new_token();
  if (token.empty()) return report_error(internal_error("no random bytes from the OS"));
  std::printf("token         %s\n", token.c_str());
  std::printf("token_sha256  %s\n", server::sha256_hex(token).c_str());
  std::fprintf(stderr,
               "Add the token_sha256 to an [[environment]]'s token_sha256 list in kiln.toml and\n"
               "give the token to its clients (KILN_TOKEN); it is not stored anywhere.\n");
  return kExitOk;
}

int run_hash(const TokenFlags& f) {
  std::string token = f.token;
  // "-" keeps the token out of shell history and the process table.
  if (token == "-" && !std::getline(std::cin, token)) {
    return report_error(invalid_argument("token hash -: nothing on standard input"));
  }
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  if (token.empty()) return report_error(invalid_argument("TOKEN: empty"));
  std::printf("%s\n", server::sha256_hex(token).c_str());
  return kExitOk;
}

}  // namespace

Command add_token_command(CLI::App& app) {
  auto f = std::make_shared<TokenFlags>();
  Command c;
  c.app = app.add_subcommand("token", "Make and hash API tokens for kiln.toml");
  c.app->require_subcommand(1);
  CLI::App* make = c.app->add_subcommand(
      "new", "Print a new random token and its SHA-256 (what kiln.toml's token_sha256 holds)");
  CLI::App* hash = c.app->add_subcommand("hash", "Print the SHA-256 of a token, for kiln.toml");
  hash->add_option("TOKEN", f->token, "The token, or - to read it from standard input")->required();
  c.run = [f, make, hash]() -> int {
    if (*make) return run_new();
    if (*hash) return run_hash(*f);
    return kExitUsage;
  };
  return c;
}

}  // namespace kiln::cli
