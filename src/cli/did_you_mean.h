// "Did you mean ...?" for a mistyped subcommand or option: after CLI11
// refuses a command line, the words it could not place are compared with
// the names the command knows.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace kiln::cli {

// Edit distance between `a` and `b` counting insertions, deletions,
// substitutions and swaps of two neighbouring characters (a typo like
// "ingset" is one edit from "ingest").
size_t typo_distance(const std::string& a, const std::string& b);

// After `app.parse` threw a ParseError: a one-line error naming the first
// argument CLI11 could not place and the known subcommand or option it is
// closest to ("'ingset' is not a kiln command; did you mean 'ingest'?"), or
// "" when no argument is close to a known name. Reads the parse state CLI11
// leaves behind; does not modify `app`.
std::string did_you_mean(const CLI::App& app);

}  // namespace kiln::cli
