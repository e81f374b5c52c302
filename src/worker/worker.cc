#include "worker/worker.h"

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <thread>

#include "common/log.h"
#include "worker/server_client.h"
#include "worker/task_process.h"

namespace kiln::worker {
namespace {

using std::chrono::milliseconds;

// The longest the loop sleeps (real time): a stop request (a flag a signal
// handler sets) is seen within this.
constexpr milliseconds kMaxWait{200};
// Between retries of completions the server did not take, and the first
// wait between registration attempts.
constexpr milliseconds kRetryWait{500};
// Registration retries wait twice as long each time up to this, each wait
// drawn from its upper half: hundreds of workers turned away at once (a
// server starting its fleet) come back spread out, not in step.
constexpr milliseconds kMaxRegisterWait{4000};

// This process's registration key: 128 random bits, hex. The same on every
// attempt to register, so the server makes one worker of a retry whose
// first answer was lost (docs/cluster.md, "Worker protocol").
std::string new_registration_key() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;
  std::string key = "k-";
  for (int i = 0; i < 4; ++i) {
    const uint32_t v = rd();
    for (int shift = 28; shift >= 0; shift -= 4) key += kHex[(v >> shift) & 15];
  }
  return key;
}

std::string this_host() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "local";
  return buf;
}

std::string seconds_text(int64_t ms) { return std::to_string(ms / 1000) + " s"; }

class Worker {
 public:
  Worker(const WorkerOptions& o, const CancelToken& stop)
      : o_(o),
        stop_(stop),
        launcher_(o.launcher ? o.launcher : &os::posix_launcher()),
        clock_(o.clock ? *o.clock : system_clock()),
        client_(o.server_url, o.token) {}

  ~Worker() {
    tasks_.clear();  // kills and reaps any left
    if (!spec_dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(spec_dir_, ec);
    }
  }

  Status run() {
    command_ = o_.task_command;
    if (command_.empty()) {
      KILN_ASSIGN_OR_RETURN(std::string self, os::self_executable());
      command_ = {self, "task", "run"};
    }
    KILN_RETURN_IF_ERROR(make_spec_dir());
    KILN_RETURN_IF_ERROR(register_with_server());
    if (reg_.worker_id.empty()) return Status::ok();  // stopped before registering

    const int64_t start = clock_.now_ms();
    last_contact_ = start;
    next_heartbeat_ = start + heartbeat_period();
    next_lease_ = start;
    next_completion_ = start;
    for (;;) {
      if (stop_.cancelled() && !stopping_) begin_shutdown();
      if (stopping_ && tasks_.empty()) {
        (void)send_completions(/*final=*/true);
        if (claiming()) {
          Status left = client_.leave(reg_.worker_id);
          if (!left.is_ok()) log::warn("leave: " + left.message());
        }
        log::info("worker " + reg_.worker_id + " stopped");
        return end_status_;
      }
      wait_for_output(next_wake());
      collect_exits();
      const int64_t now = clock_.now_ms();
      for (auto& t : tasks_) t->escalate(now);

      Status st = send_completions(/*final=*/false);
      if (st.is_ok() && now >= next_heartbeat_) st = heartbeat();
      if (st.is_ok() && wants_lease(now)) st = lease();
      if (!st.is_ok()) return give_up(st);
      const int64_t silent = clock_.now_ms() - last_contact_;
      if (silent > outage_limit()) {
        return give_up(io_error("the server at " + o_.server_url + " has not answered for " +
                                seconds_text(silent) + " (limit " + seconds_text(outage_limit()) +
                                ")"));
      }
    }
  }

 private:
  bool claiming() const { return !o_.claim_step.empty(); }

  // In milliseconds, as the clock counts.
  int64_t outage_limit() const {
    if (o_.outage_limit.count() > 0) return o_.outage_limit.count() * 1000;
    return int64_t{reg_.lease_seconds} * 1000;
  }
  int64_t heartbeat_period() const { return int64_t{reg_.heartbeat_seconds} * 1000; }

  // Waits until the clock reaches `deadline_ms` or a stop is requested.
  void pause_until(int64_t deadline_ms) const {
    while (!stop_.cancelled() && clock_.now_ms() < deadline_ms) {
      std::this_thread::sleep_for(std::min(kMaxWait, clock_.real_wait(deadline_ms)));
    }
  }

  Status make_spec_dir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/kiln-worker-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return io_error("cannot create a directory for task specs from '" + tmpl + "'");
    }
    spec_dir_ = tmpl;
    return Status::ok();
  }

  // Retries while the server cannot be reached, for as long as a lease
  // lasts by default (the server's own value is not known yet).
  // Every attempt carries the same key: an attempt the server took but
  // whose answer timed out here is the registration the retry gets back.
  Status register_with_server() {
    const int64_t start = clock_.now_ms();
    const std::string host = o_.host.empty() ? this_host() : o_.host;
    const std::string key =
        o_.registration_key.empty() ? new_registration_key() : o_.registration_key;
    std::minstd_rand jitter(static_cast<uint32_t>(std::hash<std::string>{}(key)));
    milliseconds wait = kRetryWait;
    for (int attempt = 1;; ++attempt) {
      if (stop_.cancelled()) return Status::ok();
      auto r = client_.register_worker(::getpid(), o_.slots, host, key);
      if (r.is_ok()) {
        reg_ = *r;
        log::info("registered with " + o_.server_url + " as " + reg_.worker_id + " (" +
                  std::to_string(o_.slots) + " slots, lease " + std::to_string(reg_.lease_seconds) +
                  " s, heartbeat " + std::to_string(reg_.heartbeat_seconds) + " s" +
                  (attempt > 1 ? ", attempt " + std::to_string(attempt) : std::string()) + ")");
        return Status::ok();
      }
      if (r.status().code() != StatusCode::kIOError) return r.status();
      if (clock_.now_ms() - start > outage_limit()) {
        return r.status().with_context("cannot register");
      }
      if (attempt == 1) log::warn("register: " + r.status().message() + "; retrying");
      std::uniform_int_distribution<int64_t> pick(wait.count() / 2, wait.count());
      pause_until(clock_.now_ms() + pick(jitter));
      wait = std::min(wait * 2, kMaxRegisterWait);
    }
  }

  bool wants_lease(int64_t now) const {
    // A claimant asks again only once its last attempt's end is reported.
    if (claiming())
      return !stopping_ && tasks_.empty() && completions_.empty() && now >= next_lease_;
    return !stopping_ && static_cast<int>(tasks_.size()) < o_.slots && now >= next_lease_;
  }

  int64_t next_wake() const {
    const int64_t now = clock_.now_ms();
    int64_t wake = std::min(now + kMaxWait.count(), next_heartbeat_);
    if (!stopping_ && static_cast<int>(tasks_.size()) < o_.slots)
      wake = std::min(wake, next_lease_);
    if (!completions_.empty()) wake = std::min(wake, next_completion_);
    for (const auto& t : tasks_)
      if (auto d = t->kill_deadline()) wake = std::min(wake, *d);
    return wake;
  }

  // Sleeps until the clock reaches `until` or until a task writes or exits
  // (its pipe closes).
  void wait_for_output(int64_t until) {
    std::vector<pollfd> fds;
    for (const auto& t : tasks_)
      if (t->stdout_fd() >= 0) fds.push_back({t->stdout_fd(), POLLIN, 0});
    const milliseconds wait = clock_.real_wait(until);
    const int timeout = static_cast<int>(std::clamp(wait.count(), int64_t{0}, int64_t{1000}));
    ::poll(fds.data(), fds.size(), timeout);
    for (auto& t : tasks_) t->read_output();
  }

  void collect_exits() {
    for (auto it = tasks_.begin(); it != tasks_.end();) {
      TaskProcess& t = **it;
      std::optional<os::ExitStatus> exit = t.poll_exit();
      if (!exit) {
        ++it;
        continue;
      }
      const LeasedTask& lt = t.task();
      const std::string name = "task " + std::to_string(lt.task_id) + " (step " + lt.step_id +
                               ", attempt " + std::to_string(lt.attempt) + ")";
      if (unknown_.erase(lt.task_id)) {
        log::info(name + " ended (" + exit->describe() + "); the server no longer holds it");
      } else {
        Completion c = t.completion();
        // Stopped from outside (Slurm preempts or cancels the job): Slurm
        // signals the task process too, so it may end before this worker
        // saw its own signal; whatever the task then says, it did not fail.
        if (claiming() && !c.ok &&
            (stop_.cancelled() || c.reason == "WORKER_STOPPED" || t.stopped_from_outside())) {
          // Stopped from outside (preempted, cancelled): leave() returns the
          // lease; reported as a failure it would cost an attempt.
          log::info(name + " stopped (" + exit->describe() + "); its lease goes back");
          it = tasks_.erase(it);
          continue;
        }
        if (c.ok) {
          log::info(name + " done");
        } else {
          log::warn(name + " failed: " + c.reason + ": " + c.message);
        }
        completions_.push_back(std::move(c));
      }
      it = tasks_.erase(it);
    }
  }

  // Ok, or the error that makes the worker give up (the server refused a
  // request). An unreachable server only delays things; run() gives up once
  // that lasted lease_seconds.
  Status note(const Status& st, const char* what) {
    if (st.is_ok()) {
      if (outage_) log::info("the server at " + o_.server_url + " answers again");
      outage_ = false;
      last_contact_ = clock_.now_ms();
      return st;
    }
    if (st.code() != StatusCode::kIOError) return st.with_context(what);
    if (!outage_) log::warn(std::string(what) + ": " + st.message());
    outage_ = true;
    return Status::ok();
  }

  Status send_completions(bool final) {
    if (completions_.empty() || (!final && clock_.now_ms() < next_completion_)) return Status::ok();
    while (!completions_.empty()) {
      Status st = client_.complete(reg_.worker_id, completions_.front());
      if (st.is_ok() || st.code() != StatusCode::kIOError) {
        if (!st.is_ok()) {
          // The server refused this one completion (e.g. a malformed result);
          // the lease will lapse and the task run again.
          log::error("complete task " + std::to_string(completions_.front().task_id) + ": " +
                     st.message());
          // A claimant would claim its own lease back and run the same
          // attempt again, for ever: it stops, and Slurm sees it fail.
          if (claiming() && !stopping_) {
            end_status_ = st;
            stopping_ = true;
          }
        } else {
          (void)note(st, "complete");
          // A claimant whose task is DONE has nothing left to run: asking
          // again would only hear so.
          if (claiming() && completions_.front().ok && !stopping_) {
            end_status_ = Status::ok();
            stopping_ = true;
          }
        }
        completions_.pop_front();
        continue;
      }
      (void)note(st, "complete");
      if (final) {
        log::warn(std::to_string(completions_.size()) +
                  " task completions could not be sent; their leases will lapse");
      }
      next_completion_ = clock_.now_ms() + kRetryWait.count();
      break;
    }
    return Status::ok();
  }

  TaskProcess* find(int64_t task_id) {
    for (auto& t : tasks_)
      if (t->task().task_id == task_id) return t.get();
    return nullptr;
  }

  Status heartbeat() {
    std::vector<TaskProgress> progress;
    for (const auto& t : tasks_) progress.push_back(t->progress());
    auto reply = client_.heartbeat(reg_.worker_id, progress);
    next_heartbeat_ = clock_.now_ms() + heartbeat_period();
    if (!reply.is_ok()) return note(reply.status(), "heartbeat");
    KILN_RETURN_IF_ERROR(note(Status::ok(), "heartbeat"));
    for (const auto& [id, sig] : reply->cancel) {
      TaskProcess* t = find(id);
      if (!t) continue;
      if (sig == "KILL") {
        log::info("cancel: killing task " + std::to_string(id));
        t->signal(SIGKILL, StopCause::kCancel, {});
      } else if (!t->kill_deadline()) {
        log::info("cancel: stopping task " + std::to_string(id));
        t->signal(SIGTERM, StopCause::kCancel, o_.cancel_grace);
      }
    }
    for (int64_t id : reply->unknown) {
      TaskProcess* t = find(id);
      if (!t) continue;
      log::warn("the server no longer holds task " + std::to_string(id) + "; killing it");
      unknown_.insert(id);
      t->signal(SIGKILL, StopCause::kCancel, {});
    }
    return Status::ok();
  }

  Status claim() {
    auto reply = client_.claim(reg_.worker_id, o_.claim_step, o_.claim_index);
    const int64_t now = clock_.now_ms();
    if (!reply.is_ok()) {
      next_lease_ = now + o_.idle_poll.count();
      return note(reply.status(), "claim");
    }
    KILN_RETURN_IF_ERROR(note(Status::ok(), "claim"));
    const std::string what = (o_.claim_index < 0 ? std::string("commit task")
                                                 : "partition " + std::to_string(o_.claim_index)) +
                             " of step " + o_.claim_step;
    switch (reply->outcome) {
      case ClaimReply::Outcome::kLeased:
        start_task(reply->task);
        break;
      case ClaimReply::Outcome::kWait:
        if (reply->why != last_wait_) log::info(what + ": waiting: " + reply->why);
        last_wait_ = reply->why;
        next_lease_ = now + reply->retry_after.count();
        break;
      case ClaimReply::Outcome::kDone:
        log::info(what + " is done");
        end_status_ = Status::ok();
        stopping_ = true;
        break;
      case ClaimReply::Outcome::kGone:
        log::warn(what + ": nothing to run: " + reply->why);
        end_status_ = not_found(what + ": " + reply->why);
        stopping_ = true;
        break;
    }
    return Status::ok();
  }

  void start_task(const LeasedTask& lt) {
    auto p = TaskProcess::start(lt, command_, spec_dir_, launcher_, &clock_);
    if (!p.is_ok()) {
      log::error("task " + std::to_string(lt.task_id) + ": " + p.status().message());
      completions_.push_back({lt.task_id, lt.attempt, lt.step_id, false, nullptr, "WORKER_ERROR",
                              p.status().message()});
      return;
    }
    log::info("task " + std::to_string(lt.task_id) + " (step " + lt.step_id + ", attempt " +
              std::to_string(lt.attempt) + ") started as pid " + std::to_string((*p)->pid()));
    tasks_.push_back(std::move(p).value());
  }

  Status lease() {
    if (claiming()) return claim();
    const int free_slots = o_.slots - static_cast<int>(tasks_.size());
    auto leased = client_.lease(reg_.worker_id, free_slots);
    const int64_t now = clock_.now_ms();
    if (!leased.is_ok()) {
      next_lease_ = now + o_.idle_poll.count();
      return note(leased.status(), "lease");
    }
    KILN_RETURN_IF_ERROR(note(Status::ok(), "lease"));
    // Fewer than asked for: the queue is empty for now.
    next_lease_ = static_cast<int>(leased->size()) < free_slots ? now + o_.idle_poll.count() : now;
    for (const LeasedTask& lt : *leased) start_task(lt);
    return Status::ok();
  }

  void begin_shutdown() {
    stopping_ = true;
    if (claiming())
      end_status_ = cancelled("stopped before " + o_.claim_step + " task " +
                              std::to_string(o_.claim_index) + " was done");
    log::info("stopping: " + std::to_string(tasks_.size()) + " tasks to end");
    for (auto& t : tasks_) t->signal(SIGTERM, StopCause::kShutdown, o_.shutdown_grace);
  }

  Status give_up(const Status& why) {
    log::error(why.message() + "; killing " + std::to_string(tasks_.size()) + " tasks and exiting");
    for (auto& t : tasks_) t->signal(SIGKILL, StopCause::kShutdown, {});
    tasks_.clear();
    return why;
  }

  const WorkerOptions& o_;
  const CancelToken& stop_;
  os::ProcessLauncher* launcher_;
  const Clock& clock_;
  ServerClient client_;
  std::vector<std::string> command_;
  std::string spec_dir_;
  Registration reg_;
  std::vector<std::unique_ptr<TaskProcess>> tasks_;
  std::set<int64_t> unknown_;  // tasks killed because the server disowned them
  std::deque<Completion> completions_;
  // The clock's milliseconds.
  int64_t last_contact_ = 0, next_heartbeat_ = 0, next_lease_ = 0, next_completion_ = 0;
  bool stopping_ = false;
  bool outage_ = false;
  Status end_status_;      // what run() returns once stopped
  std::string last_wait_;  // claim mode: the last reason to wait, logged once
};

}  // namespace

Status run_worker(const WorkerOptions& options, const CancelToken& stop) {
  if (options.slots < 1) return invalid_argument("--slots: must be >= 1");
  Worker w(options, stop);
  return w.run();
}

}  // namespace kiln::worker
