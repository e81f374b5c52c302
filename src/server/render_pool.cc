#include "server/render_pool.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "common/log.h"

namespace kiln::server {
namespace {

// A reply header is a code, a count and a message; far less than this.
constexpr size_t kMaxHeaderLine = 64 * 1024;

std::map<std::string, std::string> catalogs_of(const config::ServerConfig& config) {
  std::map<std::string, std::string> m;
  for (const auto& e : config.environments) m[e.name] = e.catalog + "/" + e.name;
  return m;
}

// Waits until `fd` is ready for `events` or `deadline_ms` passes (false).
bool wait_ready(int fd, short events, const Clock& clock, int64_t deadline_ms) {
  for (;;) {
    if (clock.now_ms() >= deadline_ms) return false;
    pollfd p{fd, events, 0};
    const int wait_ms =
        static_cast<int>(std::min<int64_t>(clock.real_wait(deadline_ms).count(), 1000));
    const int r = ::poll(&p, 1, wait_ms);
    if (r > 0) return true;  // ready, or hung up: the read or write says which
    if (r < 0 && errno != EINTR) return false;
  }
}

}  // namespace

RenderPool::RenderPool(const config::ServerConfig& config, std::string kiln_exe, Options options,
                       os::ProcessLauncher* launcher, const Clock& clock)
    : policy_(config.sandbox),
      catalogs_(catalogs_of(config)),
      kiln_exe_(std::move(kiln_exe)),
      options_(options),
      launcher_(launcher),
      clock_(clock) {}

RenderPool::~RenderPool() {
  // The idle renderers' Child destructors kill and reap them; no render()
  // may be running (the HTTP server stops first).
  MutexLock lock(&mu_);
  envs_.clear();
}

int RenderPool::live() const {
  MutexLock lock(&mu_);
  int n = 0;
  for (const auto& [name, e] : envs_) n += e.live;
  return n;
}

Result<std::unique_ptr<RenderPool::Renderer>> RenderPool::start(const std::string& environment) {
  auto catalog = catalogs_.find(environment);
  if (catalog == catalogs_.end()) {
    return internal_error("no environment '" + environment + "' to render for");
  }
  const std::vector<std::string> command = {kiln_exe_, "task", "render", "--max-requests",
                                            std::to_string(options_.max_requests)};
  os::SpawnOptions so;
  sandbox::Wrapped wrapped;  // holds the seccomp program until the spawn
  if (policy_.mode == sandbox::Mode::kBwrap) {
    // The environment's catalog and the program; nothing else of the host
    // but the system's read-only parts. No network.
    sandbox::View view;
    view.read_only = {catalog->second, kiln_exe_};
    KILN_ASSIGN_OR_RETURN(wrapped, sandbox::wrap(view, policy_.limits, command, ::geteuid() == 0));
    wrapped.hand_on(&so);
    so.env = sandbox::scrub_env(policy_, sandbox::current_env());
  } else {
    so.argv = command;
  }
  auto r = std::make_unique<Renderer>();
  os::Fd child_in, child_out;
  KILN_RETURN_IF_ERROR(os::make_pipe(&child_in, &r->to));
  KILN_RETURN_IF_ERROR(os::make_pipe(&r->from, &child_out));
  so.fds.push_back({child_in.get(), 0});
  so.stdout_fd = child_out.get();
  KILN_ASSIGN_OR_RETURN(r->child, launcher_->start(so));
  // A renderer that dies mid-request must not take the server with it.
  ::fcntl(r->to.get(), F_SETFL, ::fcntl(r->to.get(), F_GETFL) | O_NONBLOCK);
  log::info("renderer for environment " + environment + " started (pid " +
            std::to_string(r->child.pid()) + ")");
  return r;
}

Result<std::unique_ptr<RenderPool::Renderer>> RenderPool::acquire(const std::string& environment,
                                                                  int64_t deadline_ms) {
  {
    MutexLock lock(&mu_);
    for (;;) {
      Env& e = envs_[environment];
      if (!e.idle.empty()) {
        std::unique_ptr<Renderer> r = std::move(e.idle.back());
        e.idle.pop_back();
        return r;
      }
      if (e.live < options_.processes) {
        ++e.live;  // ours; started below, outside the lock
        break;
      }
      if (clock_.now_ms() >= deadline_ms) {
        return unavailable("every renderer of environment '" + environment +
                           "' stayed busy; try again");
      }
      idle_cv_.wait_for(&mu_,
                        std::min(clock_.real_wait(deadline_ms), std::chrono::milliseconds(1000)));
    }
  }
  Result<std::unique_ptr<Renderer>> r = start(environment);
  if (!r.is_ok()) {
    MutexLock lock(&mu_);
    --envs_[environment].live;
    idle_cv_.notify_one();
  }
  return r;
}

void RenderPool::release(const std::string& environment, std::unique_ptr<Renderer> r,
                         bool healthy) {
  const bool keep = healthy && (options_.max_requests <= 0 || r->served < options_.max_requests);
  std::unique_ptr<Renderer> ended;
  {
    MutexLock lock(&mu_);
    Env& e = envs_[environment];
    if (keep) {
      e.idle.push_back(std::move(r));
    } else {
      --e.live;
      ended = std::move(r);
    }
    idle_cv_.notify_one();
  }
  // Outside the lock: ~Child kills and reaps (a used-up renderer has
  // exited on its own already).
  ended.reset();
}

Result<std::string> RenderPool::exchange(Renderer* r, const render::StoredTileRequest& req,
                                         int64_t deadline_ms, bool* healthy) {
  *healthy = false;
  const std::string line = render::encode_render_request(req);
  const std::string timeout = "rendering tile " + std::to_string(req.z) + "/" +
                              std::to_string(req.x) + "/" + std::to_string(req.y) +
                              " took longer than " + std::to_string(options_.timeout_ms) + " ms";
  auto broken = [&r](const std::string& what) {
    return internal_error("the renderer (pid " + std::to_string(r->child.pid()) + ") " + what);
  };
  for (size_t done = 0; done < line.size();) {
    const ssize_t n = ::write(r->to.get(), line.data() + done, line.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      if (!wait_ready(r->to.get(), POLLOUT, clock_, deadline_ms)) return unavailable(timeout);
    } else {
      return broken("stopped reading requests");
    }
  }
  // Reads into r->pending until `want` bytes are there.
  auto fill = [&](size_t want, bool to_newline) -> Status {
    for (;;) {
      if (to_newline ? r->pending.find('\n') != std::string::npos : r->pending.size() >= want) {
        return Status::ok();
      }
      if (to_newline && r->pending.size() > kMaxHeaderLine) {
        return broken("sent a header line over " + std::to_string(kMaxHeaderLine) + " bytes");
      }
      if (!wait_ready(r->from.get(), POLLIN, clock_, deadline_ms)) return unavailable(timeout);
      char buf[64 * 1024];
      const size_t room = to_newline ? sizeof buf : std::min(sizeof buf, want - r->pending.size());
      const ssize_t n = ::read(r->from.get(), buf, room);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) return broken("ended without answering");
      r->pending.append(buf, static_cast<size_t>(n));
    }
  };
  KILN_RETURN_IF_ERROR(fill(0, /*to_newline=*/true));
  const size_t nl = r->pending.find('\n');
  size_t bytes = 0;
  Status answer;
  const Status header =
      render::decode_render_reply(std::string_view(r->pending).substr(0, nl), &bytes, &answer);
  if (!header.is_ok()) return broken("broke the protocol: " + header.message());
  r->pending.erase(0, nl + 1);
  KILN_RETURN_IF_ERROR(fill(bytes, /*to_newline=*/false));
  std::string image = r->pending.substr(0, bytes);
  r->pending.erase(0, bytes);
  ++r->served;
  *healthy = r->pending.empty();  // nothing unasked-for in the pipe
  if (!answer.is_ok()) return answer;
  return image;
}

Result<std::string> RenderPool::render(const std::string& environment,
                                       const render::StoredTileRequest& r) {
  const int64_t deadline = clock_.now_ms() + options_.timeout_ms;
  // A renderer that ended since its last request (killed by its CPU limit,
  // or it crashed on a tile) answers nothing: one more try, on another
  // (idle or new). A fresh renderer's failure is the tile's and is final.
  for (int attempt = 0;; ++attempt) {
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<Renderer> renderer, acquire(environment, deadline));
    const bool fresh = renderer->served == 0;
    bool healthy = false;
    Result<std::string> out = exchange(renderer.get(), r, deadline, &healthy);
    if (!healthy && !out.is_ok()) {
      log::warn("renderer for environment " + environment + ": " + out.status().message());
    }
    release(environment, std::move(renderer), healthy);
    if (out.is_ok() || healthy || fresh || attempt > 0 ||
        out.status().code() == StatusCode::kUnavailable) {
      return out;
    }
  }
}

}  // namespace kiln::server
