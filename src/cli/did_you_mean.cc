#include "cli/did_you_mean.h"

#include <algorithm>
#include <vector>

namespace kiln::cli {
namespace {

// How far a typo may be from the name it meant: one edit for short names,
// two from six characters on; more than that suggests unrelated words.
size_t max_typo_distance(const std::string& name) { return name.size() >= 6 ? 2 : 1; }

std::string closest(const std::string& word, const std::vector<std::string>& names) {
  std::string best;
  size_t best_distance = 0;
  for (const std::string& name : names) {
    const size_t d = typo_distance(word, name);
    if (d == 0 || d > max_typo_distance(name)) continue;
    if (best.empty() || d < best_distance) {
      best = name;
      best_distance = d;
    }
  }
  return best;
}

std::string command_path(const CLI::App* app) {
  std::string path;
  for (; app; app = app->get_parent()) path = app->get_name() + (path.empty() ? "" : " ") + path;
  return path;
}

// The suggestion for one unplaced argument of `app`, or "".
std::string suggest(const CLI::App& app, const std::string& arg) {
  if (arg.size() > 2 && arg.compare(0, 2, "--") == 0) {
    const std::string word =
        arg.substr(2, arg.find('=') == std::string::npos ? std::string::npos : arg.find('=') - 2);
    std::vector<std::string> names;
    // An option of a parent command is accepted after a subcommand only
    // with fallthrough, which kiln does not use: this command's own options.
    for (const CLI::Option* o : app.get_options()) {
      for (const std::string& n : o->get_lnames()) names.push_back(n);
    }
    const std::string best = closest(word, names);
    if (best.empty()) return "";
    return "'" + command_path(&app) + "' has no option '--" + word + "'; did you mean '--" + best +
           "'?";
  }
  if (arg.empty() || arg[0] == '-') return "";
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    // Hidden commands (no group) are for kiln's own processes.
    if (!sub->get_group().empty()) names.push_back(sub->get_name());
  }
  const std::string best = closest(arg, names);
  if (best.empty()) return "";
  return "'" + arg + "' is not a '" + command_path(&app) + "' command; did you mean '" + best +
         "'?";
}

}  // namespace

size_t typo_distance(const std::string& a, const std::string& b) {
  // Optimal string alignment distance over three rows of the usual table.
  std::vector<size_t> before(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        cur[j] = std::min(cur[j], before[j - 2] + 1);
      }
    }
    before.swap(prev);
    prev.swap(cur);
  }
  return prev[b.size()];
}

std::string did_you_mean(const CLI::App& app) {
  // The chain of subcommands CLI11 got to; each keeps what it could not place.
  const CLI::App* at = &app;
  while (at) {
    for (const std::string& arg : at->remaining(false)) {
      std::string s = suggest(*at, arg);
      if (!s.empty()) return s;
    }
    const std::vector<CLI::App*> parsed = at->get_subcommands();
    at = parsed.empty() ? nullptr : parsed.front();
  }
  return "";
}

}  // namespace kiln::cli
