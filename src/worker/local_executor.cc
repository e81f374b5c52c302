#include "worker/local_executor.h"

#include <fcntl.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "common/log.h"

namespace kiln::worker {
namespace {

constexpr char kTokenVariable[] = "KILN_WORKER_TOKEN";
// How often stop() looks for workers that ended, in real time: reaping is
// not something a clock can be advanced to.
constexpr std::chrono::milliseconds kReapPoll{20};

}  // namespace

LocalExecutor::LocalExecutor(LocalExecutorOptions options)
    : options_(std::move(options)),
      launcher_(options_.launcher ? options_.launcher : &os::posix_launcher()),
      clock_(options_.clock ? options_.clock : &system_clock()) {}

LocalExecutor::~LocalExecutor() {
  bool running;
  {
    MutexLock lock(&mu_);
    running = started_ && !stopped_;
  }
  if (running) stop(std::chrono::milliseconds(0));
}

Status LocalExecutor::start() {
  MutexLock lock(&mu_);
  if (started_) return internal_error("the local executor was started already");
  command_ = options_.command;
  if (command_.empty()) {
    KILN_ASSIGN_OR_RETURN(std::string self, os::self_executable());
    command_ = {self, "worker", "--server", options_.server_url};
  }
  const std::filesystem::path logs = std::filesystem::path(options_.state_dir) / "logs";
  std::error_code ec;
  std::filesystem::create_directories(logs, ec);
  if (ec) return io_error("cannot create '" + logs.string() + "': " + ec.message());
  started_ = true;
  return Status::ok();
}

Status LocalExecutor::launch_node(const std::string& node_id, int slots) {
  MutexLock lock(&mu_);
  if (!started_ || stopped_) return unavailable("the local executor is not running");
  if (slots < 1) return invalid_argument("node '" + node_id + "': slots must be >= 1");
  for (const Node& n : nodes_) {
    if (n.id == node_id) return invalid_argument("node '" + node_id + "' is running already");
  }
  Node node;
  node.id = node_id;
  node.slots = slots;
  // Nothing half-started: a node whose first start fails is not kept.
  KILN_RETURN_IF_ERROR(start_node(&node));
  nodes_.push_back(std::move(node));
  return Status::ok();
}

Status LocalExecutor::terminate_node(const std::string& node_id, std::chrono::milliseconds grace) {
  MutexLock lock(&mu_);
  for (Node& n : nodes_) {
    if (n.id != node_id) continue;
    if (n.stopping) return Status::ok();
    n.stopping = true;
    n.kill_at_ms = clock_->now_ms() + grace.count();
    (void)n.worker.signal(grace.count() > 0 ? SIGTERM : SIGKILL);
    log::info(
        "node " + node_id + ": stopping its worker" +
        (n.worker.running() ? " (pid " + std::to_string(n.worker.pid()) + ")" : std::string()));
    return Status::ok();
  }
  return not_found("node '" + node_id + "' is not running");
}

Status LocalExecutor::start_node(Node* node) {
  const std::string log_path =
      (std::filesystem::path(options_.state_dir) / "logs" / ("worker-" + node->id + ".log"))
          .string();
  os::Fd log_fd(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!log_fd.valid()) {
    return io_error("cannot open worker log '" + log_path + "': " + std::strerror(errno));
  }
  os::SpawnOptions so;
  so.argv = command_;
  so.argv.insert(so.argv.end(), {"--slots", std::to_string(node->slots), "--node", node->id});
  so.env = os::environment_with(kTokenVariable, options_.token);
  so.stdout_fd = log_fd.get();
  so.stderr_fd = log_fd.get();
  so.nice = options_.nice;
  KILN_ASSIGN_OR_RETURN(os::Child worker, launcher_->start(so));
  const pid_t pid = worker.pid();
  node->worker = std::move(worker);
  node->started_ms = clock_->now_ms();
  log::info("node " + node->id + ": worker started as pid " + std::to_string(pid) + " with " +
            std::to_string(node->slots) + " slots, log " + log_path);
  return Status::ok();
}

std::vector<int64_t> LocalExecutor::reap_exited(bool wait) {
  std::vector<int64_t> gone;
  const int64_t now = clock_->now_ms();
  for (Node& n : nodes_) {
    if (!n.worker.running()) continue;
    auto r = n.worker.reap(wait);
    if (!r.is_ok()) {
      // Not our child any more (reaped elsewhere): count it as gone.
      log::error(r.status().message());
    } else if (!r->has_value()) {
      continue;
    } else {
      // Expected while stopping; a surprise otherwise.
      log::write(stopped_ || n.stopping ? log::Level::kInfo : log::Level::kWarn,
                 "node " + n.id + ": worker (pid " + std::to_string(n.worker.pid()) +
                     ") ended: " + (*r)->describe());
    }
    gone.push_back(n.worker.pid());
    const bool young = now - n.started_ms < options_.young.count();
    n.backoff = young ? std::clamp(n.backoff * 2, options_.min_backoff, options_.max_backoff)
                      : options_.min_backoff;
    n.next_start_ms = now + n.backoff.count();
  }
  // A stopped node is done once its worker has gone.
  nodes_.erase(std::remove_if(nodes_.begin(), nodes_.end(),
                              [](const Node& n) { return n.stopping && !n.worker.running(); }),
               nodes_.end());
  return gone;
}

void LocalExecutor::tick() {
  std::vector<int64_t> gone;
  {
    MutexLock lock(&mu_);
    if (!started_ || stopped_) return;
    gone = reap_exited(/*wait=*/false);
    const int64_t now = clock_->now_ms();
    for (Node& n : nodes_) {
      if (n.stopping) {
        if (now >= n.kill_at_ms) (void)n.worker.signal(SIGKILL);
        continue;
      }
      if (n.worker.running() || now < n.next_start_ms) continue;
      Status st = start_node(&n);
      if (!st.is_ok()) {
        log::error("node " + n.id + ": cannot restart its worker: " + st.message());
        n.backoff = std::clamp(n.backoff * 2, options_.min_backoff, options_.max_backoff);
        n.next_start_ms = now + n.backoff.count();
        continue;
      }
      ++restarts_;
    }
  }
  if (options_.on_worker_exit)
    for (int64_t pid : gone) options_.on_worker_exit(pid);
}

void LocalExecutor::stop(std::chrono::milliseconds grace) {
  std::vector<int64_t> gone;
  {
    MutexLock lock(&mu_);
    if (!started_ || stopped_) return;
    stopped_ = true;
    // The grace starts with the request, before the first signal: a worker
    // seen to get its SIGTERM is being timed already.
    const int64_t deadline = clock_->now_ms() + grace.count();
    for (Node& n : nodes_) (void)n.worker.signal(SIGTERM);
    for (;;) {
      for (int64_t pid : reap_exited(/*wait=*/false)) gone.push_back(pid);
      const bool any = std::any_of(nodes_.begin(), nodes_.end(),
                                   [](const Node& n) { return n.worker.running(); });
      if (!any || clock_->now_ms() >= deadline) break;
      std::this_thread::sleep_for(std::min(kReapPoll, clock_->real_wait(deadline)));
    }
    for (Node& n : nodes_) {
      if (!n.worker.running()) continue;
      log::warn("node " + n.id + ": worker (pid " + std::to_string(n.worker.pid()) +
                ") did not stop within the grace period; killing it");
      (void)n.worker.signal(SIGKILL);
    }
    for (int64_t pid : reap_exited(/*wait=*/true)) gone.push_back(pid);
  }
  if (options_.on_worker_exit)
    for (int64_t pid : gone) options_.on_worker_exit(pid);
}

ExecutorStatus LocalExecutor::status() const {
  MutexLock lock(&mu_);
  ExecutorStatus st;
  st.kind = "local";
  st.restarts = restarts_;
  for (const Node& n : nodes_) {
    st.nodes.push_back({n.id, n.slots, n.worker.running() ? n.worker.pid() : 0, n.stopping});
  }
  return st;
}

}  // namespace kiln::worker
