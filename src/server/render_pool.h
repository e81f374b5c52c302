// RenderPool: the renderer processes behind the tile endpoint's rendered
// tiles (docs/rendering.md). Stored analytic tiles were written by tenant
// tasks, so decoding them is opening tenant input: it never happens in the
// server. Each environment gets up to `processes` long-lived `kiln task
// render` children, started on its first render request in the sandbox
// tasks get (common/sandbox.h) with only that environment's catalog
// directory visible, read-only, and no network. A child that errs, times
// out or has answered `max_requests` is replaced.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/process.h"
#include "common/sandbox.h"
#include "config/server_config.h"
#include "render/stored_tile.h"

namespace kiln::server {

class RenderPool {
 public:
  struct Options {
    int processes = 2;            // per environment
    int64_t timeout_ms = 10'000;  // one render, from the request's arrival
    int max_requests = 5'000;     // then the child is replaced (its RLIMIT_CPU is the task's)
  };

  // `kiln_exe`: the binary whose `task render` runs. `launcher` and `clock`
  // must outlive the pool.
  RenderPool(const config::ServerConfig& config, std::string kiln_exe, Options options,
             os::ProcessLauncher* launcher, const Clock& clock);
  ~RenderPool();
  RenderPool(const RenderPool&) = delete;
  RenderPool& operator=(const RenderPool&) = delete;

  // The image for `r` from one of `environment`'s renderers. The renderer's
  // own status for the tile (kNotFound: no tile there, kInvalidArgument:
  // the query, kInputError: the tile); kUnavailable when no renderer
  // answered within the timeout (the child is killed); kInternal when one
  // could not be started or broke the protocol. Thread-safe.
  Result<std::string> render(const std::string& environment, const render::StoredTileRequest& r)
      EXCLUDES(mu_);

  // Renderer processes alive now, in all environments (for tests and /metrics).
  int live() const EXCLUDES(mu_);

 private:
  struct Renderer {
    os::Child child;
    os::Fd to;            // its stdin
    os::Fd from;          // its stdout
    std::string pending;  // bytes read past the last reply
    int served = 0;
  };
  struct Env {
    std::vector<std::unique_ptr<Renderer>> idle;
    int live = 0;  // idle + busy + starting
  };

  // An idle renderer of `environment`, or a new one when fewer than
  // `processes` live; waits for one until `deadline_ms`.
  Result<std::unique_ptr<Renderer>> acquire(const std::string& environment, int64_t deadline_ms)
      EXCLUDES(mu_);
  // Back to the idle list, or (broken, or used up) ended.
  void release(const std::string& environment, std::unique_ptr<Renderer> r, bool healthy)
      EXCLUDES(mu_);
  Result<std::unique_ptr<Renderer>> start(const std::string& environment);
  // One request and its reply over `r`'s pipes, by `deadline_ms`. `*healthy`
  // is false when the child can no longer be trusted with another request.
  Result<std::string> exchange(Renderer* r, const render::StoredTileRequest& req,
                               int64_t deadline_ms, bool* healthy);

  const sandbox::Policy policy_;
  const std::map<std::string, std::string> catalogs_;  // environment -> its catalog directory
  const std::string kiln_exe_;
  const Options options_;
  os::ProcessLauncher* launcher_;
  const Clock& clock_;

  mutable Mutex mu_;
  CondVar idle_cv_;
  std::map<std::string, Env> envs_ GUARDED_BY(mu_);
};

}  // namespace kiln::server
