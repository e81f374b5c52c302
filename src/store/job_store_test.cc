#include "store/job_store.h"

#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

namespace kiln::store {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

bool has_shape(const std::string& id, const std::string& prefix, size_t n) {
  if (id.size() != prefix.size() + n || id.rfind(prefix, 0) != 0) return false;
  for (size_t i = prefix.size(); i < id.size(); ++i) {
    char c = id[i];
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'))) return false;
  }
  return true;
}

// Reads kiln.db the way an operator would with the sqlite3 shell: a second,
// independent connection.
class Peek {
 public:
  explicit Peek(const fs::path& db) {
    if (sqlite3_open_v2(db.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "cannot open " << db;
    }
  }
  ~Peek() { sqlite3_close(db_); }
  // The first column of the first row as text; "" when there is none.
  std::string scalar(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
      return "";
    }
    std::string out;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::path(::testing::TempDir()) / "kiln-store-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    open();
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  void open() {
    auto s = JobStore::open(dir_.string());
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    store_ = std::move(s).value();
  }
  void reopen() {
    store_.reset();
    open();
  }

  static NewStep new_step(const std::string& env, int64_t partitions = 2,
                          const std::string& on_failure = "CONTINUE", int max_attempts = 3) {
    NewStep s;
    s.environment = env;
    s.name = "ingest " + env;
    s.action_on_failure = on_failure;
    s.action = {{"ingest", {{"output", {{"layer", "roads"}}}}}};
    s.layer = "roads";
    s.partitions = partitions;
    s.tiles_total = partitions * 100;
    s.max_attempts = max_attempts;
    return s;
  }
  Step submit(const std::string& env, int64_t partitions = 2,
              const std::string& on_failure = "CONTINUE", int max_attempts = 3,
              int64_t now = 1000) {
    auto s = store_->submit(new_step(env, partitions, on_failure, max_attempts), now);
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    return s.is_ok() ? *s : Step{};
  }
  Step get(const std::string& env, const std::string& id) {
    auto s = store_->get(env, id);
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    return s.is_ok() ? *s : Step{};
  }
  std::string worker(int slots = 4, int64_t now = 1000) {
    auto w = store_->register_worker(getpid(), "local", slots, now);
    EXPECT_TRUE(w.is_ok()) << w.status().to_string();
    return w.is_ok() ? w->id : "";
  }
  std::vector<Lease> lease(const std::string& w, int slots, int64_t now, int64_t lease_ms = 15000,
                           int64_t starvation_ms = 30000) {
    auto l = store_->lease(w, slots, policies_, starvation_ms, lease_ms, now);
    EXPECT_TRUE(l.is_ok()) << l.status().to_string();
    return l.is_ok() ? *l : std::vector<Lease>{};
  }
  void start(int64_t now = 1000) { ASSERT_TRUE(store_->start_steps(policies_, now).is_ok()); }
  bool complete_ok(const std::string& w, const Task& t, int64_t now, json result = json::object()) {
    auto r = store_->complete(w, t.id, t.attempt, true, result, Failure{}, now);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() && *r;
  }
  // A transient failure (the kind a retry may get past): the task process
  // died without saying why.
  bool complete_failed(const std::string& w, const Task& t, int64_t now,
                       const std::string& message = "task process ended (killed by SIGKILL)") {
    auto r = store_->complete(w, t.id, t.attempt, false, json(),
                              Failure{"TASK_CRASHED", message, ""}, now);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() && *r;
  }
  // A failure the task says would repeat on every attempt (a corrupt block).
  bool complete_failed_permanently(const std::string& w, const Task& t, int64_t now,
                                   const std::string& message) {
    auto r = store_->complete(w, t.id, t.attempt, false, json(),
                              Failure{"SOURCE_ERROR", message, "", /*permanent=*/true}, now);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() && *r;
  }
  std::string task_state(int64_t task_id) {
    return Peek(dir_ / "kiln.db")
        .scalar("SELECT state FROM tasks WHERE id = " + std::to_string(task_id));
  }
  std::vector<std::string> list_all(const std::string& env, int page_size) {
    std::vector<std::string> ids;
    ListQuery q;
    q.environment = env;
    q.limit = page_size;
    for (;;) {
      auto page = store_->list(q);
      EXPECT_TRUE(page.is_ok()) << page.status().to_string();
      if (!page.is_ok()) break;
      for (const Step& s : page->steps) ids.push_back(s.id);
      if (page->next_marker.empty()) break;
      q.marker = page->next_marker;
    }
    return ids;
  }

  fs::path dir_;
  std::unique_ptr<JobStore> store_;
  std::map<std::string, EnvironmentPolicy> policies_ = {{"a", {4, 0}}, {"b", {4, 0}}};
};

// --- submit, get, list ----------------------------------------------------------

TEST_F(JobStoreTest, SubmitStoresAPendingStepWithEmrShapedIdAndItsTasks) {
  Step s = submit("a", 3, "CONTINUE", 3, 1234);
  EXPECT_TRUE(has_shape(s.id, "s-", 13)) << s.id;
  EXPECT_EQ(s.state, StepState::kPending);
  EXPECT_EQ(s.environment, "a");
  EXPECT_EQ(s.name, "ingest a");
  EXPECT_EQ(s.created_ms, 1234);
  EXPECT_EQ(s.started_ms, 0);
  EXPECT_FALSE(s.failure.has_value());
  EXPECT_EQ(s.progress.tasks_total, 4);  // 3 partitions + the commit task
  EXPECT_EQ(s.progress.tiles_total, 300);
  EXPECT_EQ(s.action, new_step("a").action);

  Step again = get("a", s.id);
  EXPECT_EQ(again.seq, s.seq);
  EXPECT_EQ(again.action, s.action);
  EXPECT_EQ(again.layer, "roads");
  EXPECT_TRUE(fs::exists(dir_ / "kiln.db"));
}

TEST_F(JobStoreTest, SubmitRefusesBadFields) {
  NewStep s = new_step("a");
  s.action_on_failure = "TERMINATE_CLUSTER";
  EXPECT_EQ(store_->submit(s, 1).status().code(), StatusCode::kInvalidArgument);
  s = new_step("a");
  s.max_attempts = 0;
  EXPECT_EQ(store_->submit(s, 1).status().code(), StatusCode::kInvalidArgument);
  s = new_step("");
  EXPECT_EQ(store_->submit(s, 1).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(JobStoreTest, AnotherEnvironmentsStepIsNotFoundExactlyLikeAnUnknownId) {
  Step s = submit("a");
  const std::string unknown = "s-0000000000000";
  auto other = store_->get("b", s.id);
  auto none = store_->get("b", unknown);
  ASSERT_EQ(other.status().code(), StatusCode::kNotFound);
  ASSERT_EQ(none.status().code(), StatusCode::kNotFound);
  // Same words apart from the id the caller sent.
  std::string m1 = other.status().message(), m2 = none.status().message();
  m1.replace(m1.find(s.id), s.id.size(), "ID");
  m2.replace(m2.find(unknown), unknown.size(), "ID");
  EXPECT_EQ(m1, m2);

  auto cancel = store_->request_cancel("b", s.id, "TERM", 2000);
  EXPECT_EQ(cancel.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(get("a", s.id).state, StepState::kPending);  // untouched
}

TEST_F(JobStoreTest, ListIsNewestFirstPagedAndEnvironmentScoped) {
  std::vector<std::string> a_ids;
  for (int i = 0; i < 7; ++i) {
    a_ids.push_back(submit("a").id);
    submit("b");
  }
  std::vector<std::string> newest_first(a_ids.rbegin(), a_ids.rend());

  ListQuery q;
  q.environment = "a";
  q.limit = 3;
  auto p1 = store_->list(q);
  ASSERT_TRUE(p1.is_ok());
  ASSERT_EQ(p1->steps.size(), 3u);
  EXPECT_FALSE(p1->next_marker.empty());
  EXPECT_EQ(p1->steps[0].id, newest_first[0]);
  // A step submitted between pages does not disturb the pages after.
  submit("a");
  EXPECT_EQ(list_all("a", 3).size(), 8u);
  q.marker = p1->next_marker;
  auto p2 = store_->list(q);
  ASSERT_TRUE(p2.is_ok());
  ASSERT_EQ(p2->steps.size(), 3u);
  EXPECT_EQ(p2->steps[0].id, newest_first[3]);
  q.marker = p2->next_marker;
  auto p3 = store_->list(q);
  ASSERT_TRUE(p3.is_ok());
  ASSERT_EQ(p3->steps.size(), 1u);
  EXPECT_EQ(p3->steps[0].id, newest_first[6]);
  EXPECT_TRUE(p3->next_marker.empty());
  // The marker is the page's last step, the environment's own: it says
  // nothing about how many steps "b" submitted in between.
  EXPECT_EQ(p1->next_marker, p1->steps.back().id);
  // Another environment's marker is no marker here.
  ListQuery qb;
  qb.environment = "b";
  qb.marker = p1->next_marker;
  EXPECT_EQ(store_->list(qb).status().code(), StatusCode::kInvalidArgument);

  // Exactly a page left: no marker pointing at an empty page.
  q.marker.clear();
  q.limit = 8;
  auto whole = store_->list(q);
  ASSERT_TRUE(whole.is_ok());
  EXPECT_EQ(whole->steps.size(), 8u);
  EXPECT_TRUE(whole->next_marker.empty());

  for (const std::string& id : list_all("b", 1000)) {
    EXPECT_EQ(get("b", id).environment, "b");
  }
  EXPECT_EQ(list_all("b", 2).size(), 7u);
  EXPECT_TRUE(list_all("c", 10).empty());
}

TEST_F(JobStoreTest, ListFiltersByStateAndIds) {
  Step s1 = submit("a"), s2 = submit("a"), s3 = submit("a");
  ASSERT_TRUE(store_->request_cancel("a", s2.id, "TERM", 2000).is_ok());

  ListQuery q;
  q.environment = "a";
  q.states = {StepState::kCancelled};
  auto cancelled = store_->list(q);
  ASSERT_TRUE(cancelled.is_ok());
  ASSERT_EQ(cancelled->steps.size(), 1u);
  EXPECT_EQ(cancelled->steps[0].id, s2.id);

  q.states = {StepState::kPending, StepState::kRunning};
  auto pending = store_->list(q);
  ASSERT_TRUE(pending.is_ok());
  ASSERT_EQ(pending->steps.size(), 2u);
  EXPECT_EQ(pending->steps[0].id, s3.id);
  EXPECT_EQ(pending->steps[1].id, s1.id);

  q.states.clear();
  q.ids = {s1.id, s3.id, "s-0000000000000"};
  auto by_id = store_->list(q);
  ASSERT_TRUE(by_id.is_ok());
  ASSERT_EQ(by_id->steps.size(), 2u);
  EXPECT_EQ(by_id->steps[0].id, s3.id);

  q.environment = "b";  // ids of another environment are not listed
  auto other = store_->list(q);
  ASSERT_TRUE(other.is_ok());
  EXPECT_TRUE(other->steps.empty());
}

TEST_F(JobStoreTest, SubmitAllIsOneTransactionThatCountsItsOwnStepsAgainstTheQuota) {
  NewStep ns = new_step("a", 2, "CONTINUE", 3);
  ns.max_pending = 3;
  auto three = store_->submit_all({ns, ns, ns}, 1000);
  ASSERT_TRUE(three.is_ok()) << three.status().to_string();
  ASSERT_EQ(three->size(), 3u);
  EXPECT_NE((*three)[0].id, (*three)[1].id);
  // Stored in order: listed newest first, so the reverse.
  ListQuery q;
  q.environment = "a";
  auto page = store_->list(q);
  ASSERT_TRUE(page.is_ok());
  ASSERT_EQ(page->steps.size(), 3u);
  EXPECT_EQ(page->steps[0].id, (*three)[2].id);
  EXPECT_EQ(page->steps[2].id, (*three)[0].id);
  ASSERT_TRUE(store_->request_cancel("a", (*three)[0].id, "TERM", 1000).is_ok());
  // One place is free; a batch of two would take two: refused whole.
  auto over = store_->submit_all({ns, ns}, 1000);
  ASSERT_EQ(over.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(*store_->count_steps("a", StepState::kPending), 2);
  EXPECT_TRUE(store_->submit_all({ns}, 1000).is_ok());
  EXPECT_EQ(store_->submit_all({}, 1000).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(JobStoreTest, MaxPendingRefusesTheStepOverTheQuotaOnly) {
  NewStep ns = new_step("a", 1, "CONTINUE", 3);
  ns.max_pending = 2;
  const std::string first = store_->submit(ns, 1000)->id;
  ASSERT_TRUE(store_->submit(ns, 1000).is_ok());
  auto over = store_->submit(ns, 1000);
  ASSERT_EQ(over.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(over.status().message().find("environment 'a' has 2 PENDING steps"), std::string::npos)
      << over.status().message();
  EXPECT_EQ(*store_->count_steps("a", StepState::kPending), 2);
  // Another environment's quota is its own.
  NewStep other = new_step("b", 1, "CONTINUE", 3);
  other.max_pending = 2;
  EXPECT_TRUE(store_->submit(other, 1000).is_ok());
  // A PENDING step that ends makes room.
  ASSERT_TRUE(store_->request_cancel("a", first, "TERM", 1000).is_ok());
  EXPECT_TRUE(store_->submit(ns, 1000).is_ok());
  EXPECT_EQ(*store_->count_steps("a", StepState::kPending), 2);
}

TEST_F(JobStoreTest, ListRefusesBadLimitsAndMarkers) {
  submit("a");
  ListQuery q;
  q.environment = "a";
  for (int limit : {0, -1, 1001}) {
    q.limit = limit;
    EXPECT_EQ(store_->list(q).status().code(), StatusCode::kInvalidArgument) << limit;
  }
  q.limit = 1000;
  EXPECT_TRUE(store_->list(q).is_ok());
  q.limit = 1;
  for (const char* marker : {"garbage", "p1.", "p1.zz", "p1.0", "p1.-5", "p2.10",
                             "p1.ffffffffffffffffff", "s-", "s-0000000000000"}) {
    q.marker = marker;
    EXPECT_EQ(store_->list(q).status().code(), StatusCode::kInvalidArgument) << marker;
  }
  q.environment.clear();
  q.marker.clear();
  EXPECT_EQ(store_->list(q).status().code(), StatusCode::kInvalidArgument);
}

// --- the step state machine -----------------------------------------------------

TEST_F(JobStoreTest, CancellingAPendingStepEndsItAtOnce) {
  Step s = submit("a");
  auto c = store_->request_cancel("a", s.id, "TERM", 2000);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->state, StepState::kCancelled);
  EXPECT_EQ(c->ended_ms, 2000);
  EXPECT_EQ(c->cancel_signal, "TERM");
  EXPECT_FALSE(c->failure.has_value());
  // Terminal: a second cancel changes nothing, and it never starts.
  auto again = store_->request_cancel("a", s.id, "KILL", 3000);
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->state, StepState::kCancelled);
  EXPECT_EQ(again->ended_ms, 2000);
  EXPECT_EQ(again->cancel_signal, "TERM");
  start(4000);
  EXPECT_EQ(get("a", s.id).state, StepState::kCancelled);
  EXPECT_TRUE(lease(worker(), 4, 4000).empty());
  EXPECT_EQ(store_->request_cancel("a", s.id, "HUP", 5000).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(JobStoreTest, CancellingARunningStepWaitsForItsLeasedTasks) {
  Step s = submit("a", 2);
  start(1000);
  EXPECT_EQ(get("a", s.id).state, StepState::kRunning);
  EXPECT_EQ(get("a", s.id).started_ms, 1000);
  std::string w = worker();
  auto leases = lease(w, 1, 1100);
  ASSERT_EQ(leases.size(), 1u);
  const Task leased = leases[0].task;

  auto c = store_->request_cancel("a", s.id, "KILL", 1200);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(c->state, StepState::kCancelPending);
  EXPECT_EQ(c->cancel_signal, "KILL");
  // CANCEL_PENDING: a second request leaves it as it is.
  EXPECT_EQ(store_->request_cancel("a", s.id, "TERM", 1250)->cancel_signal, "KILL");
  // Nothing more is leased; the worker holding a task is told to kill it.
  EXPECT_TRUE(lease(worker(), 4, 1300).empty());
  auto cancels = store_->cancellations(w);
  ASSERT_TRUE(cancels.is_ok());
  ASSERT_EQ(cancels->size(), 1u);
  EXPECT_EQ((*cancels)[0].first, leased.id);
  EXPECT_EQ((*cancels)[0].second, "KILL");

  auto none = store_->finish_cancellations(1400);
  ASSERT_TRUE(none.is_ok());
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(get("a", s.id).state, StepState::kCancelPending);

  // The task's report (even a success) ends it CANCELLED.
  EXPECT_TRUE(complete_ok(w, leased, 1500));
  EXPECT_EQ(task_state(leased.id), "CANCELLED");
  auto done = store_->finish_cancellations(1600);
  ASSERT_TRUE(done.is_ok());
  ASSERT_EQ(done->size(), 1u);
  EXPECT_EQ((*done)[0].id, s.id);
  EXPECT_EQ((*done)[0].state, StepState::kCancelled);
  Step after = get("a", s.id);
  EXPECT_EQ(after.state, StepState::kCancelled);
  EXPECT_EQ(after.ended_ms, 1600);
  EXPECT_EQ(after.progress.tasks_done, 0);

  // Staging cleanup is remembered across a restart.
  auto to_clean = store_->steps_to_clean();
  ASSERT_TRUE(to_clean.is_ok());
  ASSERT_EQ(to_clean->size(), 1u);
  EXPECT_EQ((*to_clean)[0].id, s.id);
  reopen();
  ASSERT_EQ(store_->steps_to_clean()->size(), 1u);
  ASSERT_TRUE(store_->mark_cleaned(s.id).is_ok());
  reopen();
  EXPECT_TRUE(store_->steps_to_clean()->empty());
  EXPECT_EQ(store_->mark_cleaned("s-0000000000000").code(), StatusCode::kNotFound);
}

TEST_F(JobStoreTest, StepsStartInSubmissionOrderUpToTheEnvironmentsConcurrency) {
  policies_ = {{"a", {2, 0}}};
  Step s1 = submit("a"), s2 = submit("a"), s3 = submit("a"), other = submit("b");
  auto started = store_->start_steps(policies_, 2000);
  ASSERT_TRUE(started.is_ok());
  EXPECT_EQ(*started, (std::vector<std::string>{s1.id, s2.id}));
  EXPECT_EQ(get("a", s3.id).state, StepState::kPending);
  EXPECT_EQ(get("b", other.id).state, StepState::kPending);  // no policy: left alone
  EXPECT_TRUE(store_->start_steps(policies_, 2100)->empty());

  // CANCEL_PENDING still holds its place.
  ASSERT_TRUE(store_->request_cancel("a", s1.id, "TERM", 2200).is_ok());
  EXPECT_TRUE(store_->start_steps(policies_, 2300)->empty());
  ASSERT_EQ(store_->finish_cancellations(2400)->size(), 1u);
  EXPECT_EQ(*store_->start_steps(policies_, 2500), std::vector<std::string>{s3.id});
}

// --- leasing order ---------------------------------------------------------------

TEST_F(JobStoreTest, LeasesHigherPriorityEnvironmentsFirst) {
  policies_ = {{"low", {4, 0}}, {"high", {4, 10}}};
  Step low = submit("low", 2), high = submit("high", 2);
  start(1000);
  std::string w = worker();
  auto leases = lease(w, 3, 1100);
  ASSERT_EQ(leases.size(), 3u);
  EXPECT_EQ(leases[0].step.id, high.id);
  EXPECT_EQ(leases[0].task.index, 0);
  EXPECT_EQ(leases[1].step.id, high.id);
  EXPECT_EQ(leases[1].task.index, 1);
  EXPECT_EQ(leases[2].step.id, low.id);
  EXPECT_EQ(leases[2].task.index, 0);
  EXPECT_EQ(leases[0].task.attempt, 1);
  EXPECT_EQ(leases[0].task.state, TaskState::kLeased);
  EXPECT_EQ(leases[0].task.worker_id, w);
  EXPECT_EQ(leases[0].task.lease_expires_ms, 1100 + 15000);
  EXPECT_EQ(leases[0].step.state, StepState::kRunning);
  EXPECT_EQ(leases[0].step.action, high.action);
}

TEST_F(JobStoreTest, AStarvingTaskGoesFirstWhateverItsPriority) {
  policies_ = {{"low", {4, 0}}, {"high", {4, 10}}};
  Step low = submit("low", 1);
  start(1000);  // low's task waits from t=1000
  Step high = submit("high", 3, "CONTINUE", 3, 20000);
  start(20000);
  std::string w = worker();
  // At 25 s low has waited 24 s < 30 s: priority decides.
  auto first = lease(w, 1, 25000);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].step.id, high.id);
  // At 31.001 s low has waited longer than 30 s and jumps the queue.
  auto second = lease(w, 1, 31001);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].step.id, low.id);
}

TEST_F(JobStoreTest, LeasesStepsInSubmissionOrderAndCommitOnlyAfterEveryPartition) {
  Step s1 = submit("a", 2), s2 = submit("a", 2);
  start(1000);
  std::string w = worker(8);
  auto leases = lease(w, 8, 1100);
  // The commit tasks are not runnable yet.
  ASSERT_EQ(leases.size(), 4u);
  EXPECT_EQ(leases[0].step.id, s1.id);
  EXPECT_EQ(leases[0].task.index, 0);
  EXPECT_EQ(leases[1].step.id, s1.id);
  EXPECT_EQ(leases[1].task.index, 1);
  EXPECT_EQ(leases[2].step.id, s2.id);
  EXPECT_EQ(leases[2].task.index, 0);
  EXPECT_EQ(leases[3].step.id, s2.id);
  EXPECT_EQ(leases[3].task.index, 1);
  for (const Lease& l : leases) EXPECT_EQ(l.task.kind, TaskKind::kPartition);

  EXPECT_TRUE(complete_ok(w, leases[0].task, 1200));
  EXPECT_TRUE(lease(w, 8, 1300).empty());  // s1 partition 1 still leased
  EXPECT_TRUE(complete_ok(w, leases[1].task, 1400));
  auto commit = lease(w, 8, 1500);
  ASSERT_EQ(commit.size(), 1u);
  EXPECT_EQ(commit[0].step.id, s1.id);
  EXPECT_EQ(commit[0].task.kind, TaskKind::kCommit);
  EXPECT_EQ(commit[0].task.index, -1);
  // It became runnable when the last partition finished.
  EXPECT_EQ(commit[0].task.queued_ms, 1400);

  EXPECT_TRUE(
      complete_ok(w, commit[0].task, 1600, {{"layer", "roads"}, {"version", 7}, {"tiles", 340}}));
  Step done = get("a", s1.id);
  EXPECT_EQ(done.state, StepState::kCompleted);
  EXPECT_EQ(done.layer, "roads");
  EXPECT_EQ(done.version, 7);
  EXPECT_EQ(done.ended_ms, 1600);
  EXPECT_EQ(done.progress.tasks_done, 3);
  EXPECT_EQ(done.progress.tasks_total, 3);
  EXPECT_TRUE(store_->steps_to_clean()->empty());  // COMPLETED: staging was published
}

TEST_F(JobStoreTest, AStepWithoutPartitionsRunsOnlyItsCommit) {
  Step s = submit("a", 0);
  start();
  auto l = lease(worker(), 2, 1100);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].task.kind, TaskKind::kCommit);
  EXPECT_EQ(l[0].step.id, s.id);
}

TEST_F(JobStoreTest, OnlyRunningStepsAndRegisteredLiveWorkersGetLeases) {
  submit("a");
  std::string w = worker();
  EXPECT_TRUE(lease(w, 4, 1100).empty());  // PENDING step
  EXPECT_EQ(store_->lease("w-UNKNOWN00000", 1, policies_, 30000, 15000, 1200).status().code(),
            StatusCode::kNotFound);
  ASSERT_TRUE(store_->worker_gone(w, 1300).is_ok());
  start(1400);
  EXPECT_EQ(store_->lease(w, 1, policies_, 30000, 15000, 1500).status().code(),
            StatusCode::kNotFound);
}

// --- leases lapse, attempts fail --------------------------------------------------

TEST_F(JobStoreTest, ALapsedLeaseGoesBackToPendingAndTheOldAttemptIsIgnored) {
  Step s = submit("a", 1);
  start();
  std::string w1 = worker(), w2 = worker();
  auto l = lease(w1, 1, 0, /*lease_ms=*/1000);
  ASSERT_EQ(l.size(), 1u);
  const Task first = l[0].task;

  // A heartbeat renews the lease.
  auto hb = store_->heartbeat(w1, {{first.id, first.attempt, 5, 10, 20}}, 1000, 500);
  ASSERT_TRUE(hb.is_ok());
  EXPECT_TRUE(hb->empty());
  EXPECT_EQ(*store_->expire_leases(1400), 0);
  EXPECT_EQ(task_state(first.id), "LEASED");
  EXPECT_EQ(*store_->expire_leases(1501), 1);
  EXPECT_EQ(task_state(first.id), "PENDING");
  EXPECT_EQ(store_->stats()->lease_expiries, 1);

  auto again = lease(w2, 1, 1600);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].task.id, first.id);
  EXPECT_EQ(again[0].task.attempt, 2);
  EXPECT_EQ(again[0].task.worker_id, w2);

  // The first attempt's late reports change nothing.
  auto late = store_->complete(w1, first.id, first.attempt, true, json::object(), {}, 1700);
  ASSERT_TRUE(late.is_ok());
  EXPECT_FALSE(*late);
  auto late_hb = store_->heartbeat(w1, {{first.id, first.attempt, 1, 0, 0}}, 1000, 1700);
  ASSERT_TRUE(late_hb.is_ok());
  EXPECT_EQ(*late_hb, std::vector<int64_t>{first.id});
  // Right attempt, wrong worker: also ignored.
  auto wrong = store_->complete(w1, first.id, 2, true, json::object(), {}, 1700);
  EXPECT_FALSE(*wrong);
  EXPECT_FALSE(*store_->complete(w2, 999999, 1, true, json::object(), {}, 1700));
  EXPECT_EQ(task_state(first.id), "LEASED");
  EXPECT_TRUE(complete_ok(w2, again[0].task, 1800));
  EXPECT_EQ(task_state(first.id), "DONE");
  EXPECT_EQ(get("a", s.id).progress.tasks_done, 1);
}

TEST_F(JobStoreTest, FailedAttemptsBackOffThenFailTheTaskAndTheStep) {
  Step s = submit("a", 2, "CONTINUE", 3);
  start(0);
  std::string w = worker();
  auto l = lease(w, 1, 0);
  ASSERT_EQ(l.size(), 1u);
  ASSERT_EQ(l[0].task.index, 0);
  const int64_t id = l[0].task.id;

  // Attempt 1 fails at t=10 s: 1 s backoff. Partition 1 is free to run.
  EXPECT_TRUE(complete_failed(w, l[0].task, 10000));
  auto other = lease(w, 1, 10000);
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(other[0].task.index, 1);
  EXPECT_TRUE(lease(w, 1, 10999).empty());
  auto a2 = lease(w, 1, 11000);
  ASSERT_EQ(a2.size(), 1u);
  EXPECT_EQ(a2[0].task.id, id);
  EXPECT_EQ(a2[0].task.attempt, 2);
  EXPECT_EQ(a2[0].task.not_before_ms, 11000);
  EXPECT_EQ(a2[0].task.last_error, "TASK_CRASHED: task process ended (killed by SIGKILL)");

  // Attempt 2 fails: 2 s.
  EXPECT_TRUE(complete_failed(w, a2[0].task, 20000));
  EXPECT_TRUE(lease(w, 1, 21999).empty());
  auto a3 = lease(w, 1, 22000);
  ASSERT_EQ(a3.size(), 1u);
  EXPECT_EQ(a3[0].task.attempt, 3);
  EXPECT_EQ(get("a", s.id).state, StepState::kRunning);

  // Attempt 3 of 3 fails: out of attempts.
  EXPECT_TRUE(complete_failed(w, a3[0].task, 30000, "task process ended (exit status 134)"));
  EXPECT_EQ(task_state(id), "FAILED");
  Step failed = get("a", s.id);
  EXPECT_EQ(failed.state, StepState::kFailed);
  EXPECT_EQ(failed.ended_ms, 30000);
  ASSERT_TRUE(failed.failure.has_value());
  EXPECT_EQ(failed.failure->reason, "TASK_CRASHED");
  EXPECT_NE(failed.failure->message.find("partition 0"), std::string::npos);
  EXPECT_NE(failed.failure->message.find("attempt 3 of 3"), std::string::npos);
  EXPECT_NE(failed.failure->message.find("(exit status 134)"), std::string::npos);
  EXPECT_EQ(failed.failure->log_file, "");
  EXPECT_EQ(store_->stats()->task_retries, 2);

  // Partition 1 is still leased: its worker is told to stop, and staging
  // is not cleaned under it.
  auto cancels = store_->cancellations(w);
  ASSERT_EQ(cancels->size(), 1u);
  EXPECT_EQ((*cancels)[0].first, other[0].task.id);
  EXPECT_EQ((*cancels)[0].second, "TERM");
  EXPECT_TRUE(store_->steps_to_clean()->empty());
  EXPECT_TRUE(complete_ok(w, other[0].task, 30500));
  EXPECT_EQ(task_state(other[0].task.id), "CANCELLED");
  EXPECT_EQ(get("a", s.id).state, StepState::kFailed);
  ASSERT_EQ(store_->steps_to_clean()->size(), 1u);
  EXPECT_TRUE(lease(w, 4, 40000).empty());  // the commit task was cancelled
}

TEST_F(JobStoreTest, PermanentFailureFailsTheStepOnItsFirstAttempt) {
  Step s = submit("a", 2, "CONTINUE", 3);
  start(0);
  std::string w = worker();
  auto l = lease(w, 1, 0);
  ASSERT_EQ(l.size(), 1u);
  const int64_t id = l[0].task.id;

  const std::string gdal =
      "source '/data/cut.tif': cannot decode bands 1 rows 0-255, columns 0-255: "
      "IReadBlock failed at X offset 1, Y offset 0";
  EXPECT_TRUE(complete_failed_permanently(w, l[0].task, 10000, gdal));
  EXPECT_EQ(task_state(id), "FAILED");
  Step failed = get("a", s.id);
  EXPECT_EQ(failed.state, StepState::kFailed);
  EXPECT_EQ(failed.ended_ms, 10000);
  ASSERT_TRUE(failed.failure.has_value());
  EXPECT_EQ(failed.failure->reason, "SOURCE_ERROR");
  EXPECT_EQ(failed.failure->message,
            "partition 0 failed (attempt 1 of 3; not retried: the error is permanent): " + gdal);
  EXPECT_EQ(store_->stats()->task_retries, 0);
  // Nothing of it runs again, even past every backoff.
  EXPECT_TRUE(lease(w, 4, 100000).empty());
}

TEST_F(JobStoreTest, PermanentFailureOnTheLastAttemptSaysNothingOfRetries) {
  Step s = submit("a", 1, "CONTINUE", 2);
  start(0);
  std::string w = worker();
  auto l = lease(w, 1, 0);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_TRUE(complete_failed(w, l[0].task, 100));  // a crash: retried
  auto again = lease(w, 1, 1100);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].task.attempt, 2);
  EXPECT_TRUE(complete_failed_permanently(w, again[0].task, 1200, "source '/data/x.tif': gone"));
  Step failed = get("a", s.id);
  EXPECT_EQ(failed.state, StepState::kFailed);
  ASSERT_TRUE(failed.failure.has_value());
  EXPECT_EQ(failed.failure->message,
            "partition 0 failed (attempt 2 of 2): source '/data/x.tif': gone");
  EXPECT_EQ(store_->stats()->task_retries, 1);
}

TEST_F(JobStoreTest, BackoffIsCappedAtThirtySeconds) {
  submit("a", 1, "CONTINUE", 10);
  start(0);
  std::string w = worker();
  int64_t now = 0;
  const int64_t expected[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
  for (int64_t backoff : expected) {
    auto l = lease(w, 1, now);
    ASSERT_EQ(l.size(), 1u) << "at " << now;
    EXPECT_TRUE(complete_failed(w, l[0].task, now));
    EXPECT_TRUE(lease(w, 1, now + backoff - 1).empty()) << backoff;
    now += backoff;
  }
}

TEST_F(JobStoreTest, CancelAndWaitCancelsTheEnvironmentsPendingSteps) {
  policies_ = {{"a", {1, 0}}, {"b", {1, 0}}};
  Step first = submit("a", 1, "CANCEL_AND_WAIT", 1);
  Step queued1 = submit("a"), queued2 = submit("a"), elsewhere = submit("b");
  start(1000);
  std::string w = worker();
  auto l = lease(w, 1, 1100);
  ASSERT_EQ(l.size(), 1u);
  ASSERT_EQ(l[0].step.id, first.id);
  EXPECT_TRUE(complete_failed(w, l[0].task, 1200));

  EXPECT_EQ(get("a", first.id).state, StepState::kFailed);
  for (const Step& q : {queued1, queued2}) {
    Step s = get("a", q.id);
    EXPECT_EQ(s.state, StepState::kCancelled);
    ASSERT_TRUE(s.failure.has_value());
    EXPECT_EQ(s.failure->reason, "CANCELLED_BY_EARLIER_FAILURE");
    EXPECT_NE(s.failure->message.find(first.id), std::string::npos);
    EXPECT_EQ(s.ended_ms, 1200);
  }
  EXPECT_EQ(get("b", elsewhere.id).state, StepState::kRunning);
}

TEST_F(JobStoreTest, ContinueLeavesTheQueueRunning) {
  policies_ = {{"a", {1, 0}}};
  Step first = submit("a", 1, "CONTINUE", 1), next = submit("a");
  start(1000);
  std::string w = worker();
  auto l = lease(w, 1, 1100);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_TRUE(complete_failed(w, l[0].task, 1200));
  EXPECT_EQ(get("a", first.id).state, StepState::kFailed);
  EXPECT_EQ(get("a", next.id).state, StepState::kPending);
  start(1300);
  EXPECT_EQ(get("a", next.id).state, StepState::kRunning);
}

// --- progress, workers, stats ------------------------------------------------------

TEST_F(JobStoreTest, ProgressCountsDoneTasksAndLiveHeartbeats) {
  Step s = submit("a", 3);
  start(0);
  std::string w = worker();
  auto l = lease(w, 3, 0, /*lease_ms=*/1000);
  ASSERT_EQ(l.size(), 3u);
  ASSERT_TRUE(store_
                  ->heartbeat(w,
                              {{l[0].task.id, 1, 40, 1000, 500},
                               {l[1].task.id, 1, 7, 100, 50},
                               {l[2].task.id, 1, 3, 10, 5}},
                              1000, 500)
                  .is_ok());
  Step p = get("a", s.id);
  EXPECT_EQ(p.progress.tiles_done, 50);
  EXPECT_EQ(p.progress.bytes_read, 1110u);
  EXPECT_EQ(p.progress.bytes_written, 555u);
  EXPECT_EQ(p.progress.tasks_done, 0);

  // Task 0 finishes with its final figures; task 1 finishes without, so
  // its last heartbeat stands.
  EXPECT_TRUE(complete_ok(w, l[0].task, 600,
                          {{"tiles_done", 64}, {"bytes_read", 2000}, {"bytes_written", 900}}));
  EXPECT_TRUE(complete_ok(w, l[1].task, 600));
  p = get("a", s.id);
  EXPECT_EQ(p.progress.tasks_done, 2);
  EXPECT_EQ(p.progress.tiles_done, 64 + 7 + 3);
  EXPECT_EQ(p.progress.bytes_written, 900u + 50u + 5u);

  // Task 2's lease lapses: its re-run starts from zero.
  EXPECT_EQ(*store_->expire_leases(1600), 1);
  p = get("a", s.id);
  EXPECT_EQ(p.progress.tiles_done, 64 + 7);
  auto re = lease(w, 1, 1700);
  ASSERT_EQ(re.size(), 1u);
  EXPECT_EQ(get("a", s.id).progress.tiles_done, 64 + 7);
}

TEST_F(JobStoreTest, AnEndedStepKeepsTheProgressItEndedWith) {
  Step failing = submit("a", 2, "CONTINUE", /*max_attempts=*/1);
  Step running = submit("a", 1);
  start(0);
  std::string w = worker(4);
  auto l = lease(w, 3, 0, /*lease_ms=*/10000);
  ASSERT_EQ(l.size(), 3u);
  ASSERT_TRUE(store_
                  ->heartbeat(w,
                              {{l[0].task.id, 1, 5, 100, 10},
                               {l[1].task.id, 1, 7, 200, 20},
                               {l[2].task.id, 1, 9, 300, 30}},
                              100, 500)
                  .is_ok());
  // Partition 0 of `failing` fails for good: the step ends FAILED with its
  // other partition still leased, counted with its last heartbeat.
  const Task& doomed = l[0].task.step_id == failing.id ? l[0].task : l[1].task;
  const Task& orphan = l[0].task.step_id == failing.id ? l[1].task : l[0].task;
  ASSERT_EQ(orphan.step_id, failing.id);
  EXPECT_TRUE(complete_failed(w, doomed, 200));
  Step ended = get("a", failing.id);
  ASSERT_EQ(ended.state, StepState::kFailed);
  EXPECT_EQ(ended.progress.tasks_total, 3);
  EXPECT_EQ(ended.progress.tiles_done, 7);
  // The leased partition's completion now ends it CANCELLED; the step's
  // figures stay those it ended with.
  (void)store_->complete(w, orphan.id, orphan.attempt, true, json::object(), Failure{}, 300);
  EXPECT_EQ(task_state(orphan.id), "CANCELLED");
  Step later = get("a", failing.id);
  EXPECT_EQ(later.progress.tiles_done, 7);
  EXPECT_EQ(later.progress.bytes_read, 200u);

  // A listing shows the same figures as describe, for ended and live steps.
  ListQuery q;
  q.environment = "a";
  auto page = store_->list(q);
  ASSERT_TRUE(page.is_ok());
  ASSERT_EQ(page->steps.size(), 2u);
  EXPECT_EQ(page->steps[0].id, running.id);
  EXPECT_EQ(page->steps[0].progress.tiles_done, 9);
  EXPECT_EQ(page->steps[0].progress.bytes_written, 30u);
  EXPECT_EQ(page->steps[0].progress.tasks_total, 2);
  EXPECT_EQ(page->steps[1].progress.tiles_done, 7);
  EXPECT_EQ(page->steps[1].progress.tasks_total, 3);
}

TEST_F(JobStoreTest, UpgradingFromSchemaOneFillsInEndedStepsProgress) {
  Step s = submit("a", 1);
  start(0);
  std::string w = worker();
  auto l = lease(w, 1, 0);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_TRUE(complete_ok(w, l[0].task, 10, {{"tiles_done", 12}, {"bytes_written", 345}}));
  l = lease(w, 1, 20);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_TRUE(complete_ok(w, l[0].task, 30, {{"layer", "roads"}, {"version", 1}}));
  Step pending = submit("a", 1);
  store_.reset();
  {
    // The database as schema version 1 left it: no final_* or cost
    // columns, no batch_jobs table, no registration keys.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "kiln.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "DROP TABLE batch_jobs", nullptr, nullptr, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "DROP INDEX workers_by_registration_key", nullptr, nullptr, nullptr),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "ALTER TABLE workers DROP COLUMN registration_key", nullptr, nullptr,
                           nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    for (const char* c : {"final_tasks_total", "final_tasks_done", "final_tiles_done",
                          "final_bytes_read", "final_bytes_written", "slot_seconds", "cost"}) {
      const std::string sql = std::string("ALTER TABLE steps DROP COLUMN ") + c;
      ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
          << sqlite3_errmsg(db);
    }
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 1", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  open();
  Step done = get("a", s.id);
  ASSERT_EQ(done.state, StepState::kCompleted);
  EXPECT_EQ(done.progress.tasks_total, 2);
  EXPECT_EQ(done.progress.tasks_done, 2);
  EXPECT_EQ(done.progress.tiles_done, 12);
  EXPECT_EQ(done.progress.bytes_written, 345u);
  EXPECT_EQ(get("a", pending.id).progress.tasks_total, 2);
  EXPECT_EQ(Peek(dir_ / "kiln.db").scalar("PRAGMA user_version"), "5");
}

TEST_F(JobStoreTest, LoadCountsRunnableLeasedAndBackloggedWork) {
  policies_ = {{"a", {1, 0}}};
  Step first = submit("a", 3);
  Step second = submit("a", 1);  // waits for concurrency 1
  auto none = store_->load(0);
  ASSERT_TRUE(none.is_ok());
  EXPECT_EQ(none->pending_tasks, 0);  // nothing runnable before a step starts
  EXPECT_EQ(none->backlog_steps, 2);
  start(1000);
  std::string w = worker(1);
  ASSERT_EQ(lease(w, 1, 1500).size(), 1u);
  auto l = store_->load(4000);
  ASSERT_TRUE(l.is_ok());
  EXPECT_EQ(l->leased_tasks, 1);
  EXPECT_EQ(l->pending_tasks, 3);              // two partitions and the commit task of `first`
  EXPECT_EQ(l->backlog_steps, 1);              // `second`
  EXPECT_EQ(l->oldest_pending_wait_ms, 3000);  // queued when `first` started
  (void)second;
}

TEST_F(JobStoreTest, CostsAddUpPerStepAndSurviveAReopen) {
  Step s = submit("a", 1);
  EXPECT_EQ(get("a", s.id).cost, 0);
  ASSERT_TRUE(store_->add_cost(s.id, 12.5, 0.25).is_ok());
  ASSERT_TRUE(store_->add_cost(s.id, 7.5, 0.5).is_ok());
  EXPECT_EQ(store_->add_cost("s-NOTASTEP00000", 1, 1).code(), StatusCode::kNotFound);
  reopen();
  Step after = get("a", s.id);
  EXPECT_DOUBLE_EQ(after.slot_seconds, 20.0);
  EXPECT_DOUBLE_EQ(after.cost, 0.75);
}

TEST(JobStoreInMemory, RunsTheSameSchedulingWithoutAFile) {
  auto store = JobStore::open_in_memory();
  ASSERT_TRUE(store.is_ok()) << store.status().to_string();
  NewStep n;
  n.environment = "a";
  n.name = "s";
  n.action_on_failure = "CONTINUE";
  n.action = json{{"ingest", json::object()}};
  n.layer = "l";
  n.partitions = 1;
  n.max_attempts = 1;
  auto s = (*store)->submit(n, 10);
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  std::map<std::string, EnvironmentPolicy> policies = {{"a", {1, 0}}};
  ASSERT_TRUE((*store)->start_steps(policies, 20).is_ok());
  auto w = (*store)->register_worker(1, "sim", 1, 20);
  ASSERT_TRUE(w.is_ok());
  auto leases = (*store)->lease(w->id, 1, policies, 30000, 1000, 30);
  ASSERT_TRUE(leases.is_ok());
  ASSERT_EQ(leases->size(), 1u);
  EXPECT_EQ((*leases)[0].step.id, s->id);
}

TEST_F(JobStoreTest, WorkersRegisterAndAGoneWorkersLeasesReturnAtOnce) {
  Step s = submit("a", 2);
  start(0);
  auto reg = store_->register_worker(4242, "local", 2, 100);
  ASSERT_TRUE(reg.is_ok());
  EXPECT_TRUE(has_shape(reg->id, "w-", 12)) << reg->id;
  const std::string w = reg->id;
  std::string w2 = worker(1, 150);
  ASSERT_EQ(lease(w, 2, 200).size(), 2u);
  ASSERT_TRUE(store_->touch_worker(w, 300).is_ok());

  auto all = store_->workers(false);
  ASSERT_TRUE(all.is_ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, w);
  EXPECT_EQ((*all)[0].pid, 4242);
  EXPECT_EQ((*all)[0].slots, 2);
  EXPECT_EQ((*all)[0].busy, 2);
  EXPECT_EQ((*all)[0].last_seen_ms, 300);
  EXPECT_EQ((*all)[1].busy, 0);

  ASSERT_TRUE(store_->worker_gone(w, 400).is_ok());
  EXPECT_EQ(store_->workers(true)->size(), 1u);
  ASSERT_EQ(store_->workers(false)->size(), 2u);
  EXPECT_FALSE((*store_->workers(false))[0].alive);
  EXPECT_EQ(store_->touch_worker(w, 500).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->touch_worker("w-NOSUCHWORKER", 500).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->worker_gone("w-NOSUCHWORKER", 500).code(), StatusCode::kNotFound);

  // Both tasks are runnable again at once, without waiting for the lease.
  auto l = lease(w2, 2, 500);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].task.attempt, 2);
  EXPECT_EQ(l[0].step.id, s.id);
  EXPECT_EQ(store_->stats()->lease_expiries, 0);
}

// A worker whose first attempt to register was taken but whose answer was
// lost asks again with the same key: one worker, the first one.
TEST_F(JobStoreTest, ARegistrationRepeatedWithItsKeyIsTheSameWorker) {
  bool again = true;
  auto first = store_->register_worker(4242, "core-7", 1, 100, "k-0123456789abcdef", &again);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  EXPECT_FALSE(again);
  auto retry = store_->register_worker(4242, "core-7", 1, 180, "k-0123456789abcdef", &again);
  ASSERT_TRUE(retry.is_ok()) << retry.status().to_string();
  EXPECT_TRUE(again);
  EXPECT_EQ(retry->id, first->id);
  EXPECT_EQ(retry->registered_ms, 100);
  auto alive = store_->workers(true);
  ASSERT_TRUE(alive.is_ok());
  ASSERT_EQ(alive->size(), 1u);
  EXPECT_EQ((*alive)[0].last_seen_ms, 180) << "the retry counts as contact";

  // Another process of the same node (its restart) draws a key of its own.
  auto other = store_->register_worker(4300, "core-7", 1, 200, "k-fedcba9876543210", &again);
  ASSERT_TRUE(other.is_ok());
  EXPECT_FALSE(again);
  EXPECT_NE(other->id, first->id);

  // A key is one process's: from another pid, host or slot count it is refused.
  for (auto [pid, host, slots] : {std::tuple<int64_t, const char*, int>{4243, "core-7", 1},
                                  {4242, "core-8", 1},
                                  {4242, "core-7", 2}}) {
    auto r = store_->register_worker(pid, host, slots, 210, "k-0123456789abcdef");
    ASSERT_FALSE(r.is_ok()) << pid << host << slots;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("registration_key"), std::string::npos)
        << r.status().message();
  }
  EXPECT_EQ(store_->workers(true)->size(), 2u);

  // Once gone, the key names nobody: asking again registers anew.
  ASSERT_TRUE(store_->worker_gone(first->id, 300).is_ok());
  auto after = store_->register_worker(4242, "core-7", 1, 400, "k-0123456789abcdef", &again);
  ASSERT_TRUE(after.is_ok());
  EXPECT_FALSE(again);
  EXPECT_NE(after->id, first->id);

  // Without a key every call is a worker of its own (older workers).
  auto a = store_->register_worker(5000, "local", 1, 500);
  auto b = store_->register_worker(5000, "local", 1, 500);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_NE(a->id, b->id);
}

TEST_F(JobStoreTest, StatsCountStepsTasksAndQueues) {
  policies_ = {{"a", {1, 0}}, {"b", {1, 0}}};
  submit("a", 3);
  submit("a", 1);
  submit("b", 2);
  start(0);
  ASSERT_EQ(lease(worker(), 1, 0).size(), 1u);
  auto st = store_->stats();
  ASSERT_TRUE(st.is_ok());
  EXPECT_EQ(st->steps_by_env_state["a"]["RUNNING"], 1);
  EXPECT_EQ(st->steps_by_env_state["a"]["PENDING"], 1);
  EXPECT_EQ(st->steps_by_env_state["b"]["RUNNING"], 1);
  EXPECT_EQ(st->tasks_leased, 1);
  EXPECT_EQ(st->tasks_pending, (4 + 2 + 3) - 1);
  // PENDING tasks of RUNNING steps, commit tasks included.
  EXPECT_EQ(st->queued_tasks_by_env["a"], 3);
  EXPECT_EQ(st->queued_tasks_by_env["b"], 3);
}

TEST_F(JobStoreTest, StepsOfEnvironmentsNoLongerConfiguredAreInterrupted) {
  policies_ = {{"a", {1, 0}}, {"gone", {1, 0}}};
  Step kept = submit("a"), running = submit("gone"), pending = submit("gone");
  Step finished = submit("gone");
  ASSERT_TRUE(store_->request_cancel("gone", finished.id, "TERM", 500).is_ok());
  start(1000);
  auto n = store_->interrupt_unknown_environments({"a"}, 2000);
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(*n, 2);
  for (const Step& s : {running, pending}) {
    Step got = get("gone", s.id);
    EXPECT_EQ(got.state, StepState::kInterrupted);
    ASSERT_TRUE(got.failure.has_value());
    EXPECT_NE(got.failure->message.find("gone"), std::string::npos);
  }
  EXPECT_EQ(get("gone", finished.id).state, StepState::kCancelled);
  EXPECT_EQ(get("a", kept.id).state, StepState::kRunning);
}

TEST_F(JobStoreTest, StateNamesRoundTrip) {
  for (StepState s :
       {StepState::kPending, StepState::kRunning, StepState::kCompleted, StepState::kCancelPending,
        StepState::kCancelled, StepState::kFailed, StepState::kInterrupted}) {
    auto parsed = parse_step_state(step_state_name(s));
    ASSERT_TRUE(parsed.is_ok());
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_EQ(parse_step_state("running").status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(is_terminal(StepState::kInterrupted));
  EXPECT_FALSE(is_terminal(StepState::kCancelPending));
  EXPECT_STREQ(task_state_name(TaskState::kLeased), "LEASED");
}

// --- durability -------------------------------------------------------------------

TEST_F(JobStoreTest, EverythingSurvivesClosingAndReopening) {
  policies_ = {{"a", {1, 0}}};
  Step done = submit("a", 1), waiting = submit("a", 2);
  start(0);
  std::string w = worker();
  auto l = lease(w, 1, 0, /*lease_ms=*/100);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_TRUE(complete_failed(w, l[0].task, 10));
  l = lease(w, 1, 1010, 100);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(*store_->expire_leases(2000), 1);
  l = lease(w, 1, 2000, 100);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_TRUE(complete_ok(w, l[0].task, 2010));
  l = lease(w, 1, 2020, 100);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_TRUE(complete_ok(w, l[0].task, 2030, {{"layer", "roads"}, {"version", 2}}));
  const Step before = get("a", done.id);
  ASSERT_EQ(before.state, StepState::kCompleted);

  reopen();
  Step after = get("a", done.id);
  EXPECT_EQ(after.state, StepState::kCompleted);
  EXPECT_EQ(after.version, 2);
  EXPECT_EQ(after.seq, before.seq);
  EXPECT_EQ(after.ended_ms, before.ended_ms);
  EXPECT_EQ(after.action, before.action);
  EXPECT_EQ(after.progress.tasks_done, 2);
  EXPECT_EQ(get("a", waiting.id).state, StepState::kPending);
  auto st = store_->stats();
  EXPECT_EQ(st->lease_expiries, 1);
  EXPECT_EQ(st->task_retries, 1);
  auto ws = store_->workers(true);
  ASSERT_EQ(ws->size(), 1u);
  EXPECT_EQ((*ws)[0].id, w);
  // New steps keep counting up after a reopen.
  Step later = submit("a");
  EXPECT_GT(later.seq, waiting.seq);
  EXPECT_EQ(list_all("a", 10), (std::vector<std::string>{later.id, waiting.id, done.id}));

  Peek peek(dir_ / "kiln.db");
  EXPECT_EQ(peek.scalar("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(peek.scalar("PRAGMA user_version"), "5");
}

TEST_F(JobStoreTest, ADatabaseFromANewerKilnIsRefused) {
  store_.reset();
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "kiln.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  auto s = JobStore::open(dir_.string());
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.status().message().find("99"), std::string::npos) << s.status().message();
}

// A child process opens the store and keeps submitting and leasing, telling
// the parent over a pipe each time a call has returned (so committed). The
// parent kills it with SIGKILL mid-stream, reopens the database and finds
// every reported transition, and no half-written step.
TEST_F(JobStoreTest, AKilledProcessLosesNothingItCommitted) {
  store_.reset();  // an SQLite connection must not cross fork()
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    FILE* out = fdopen(fds[1], "w");
    auto store = JobStore::open(dir_.string());
    if (!store.is_ok()) _exit(2);
    auto w = (*store)->register_worker(getpid(), "child", 64, 0);
    if (!w.is_ok()) _exit(3);
    std::map<std::string, EnvironmentPolicy> policies = {{"a", {1000, 0}}};
    for (int64_t i = 1;; ++i) {
      auto s = (*store)->submit(new_step("a", 3), i);
      if (!s.is_ok()) _exit(4);
      std::fprintf(out, "step %s\n", s->id.c_str());
      std::fflush(out);
      if (!(*store)->start_steps(policies, i).is_ok()) _exit(5);
      auto l = (*store)->lease(w->id, 1, policies, 30000, 3600000, i);
      if (!l.is_ok()) _exit(6);
      for (const Lease& granted : *l) {
        std::fprintf(out, "lease %lld %s\n", static_cast<long long>(granted.task.id),
                     w->id.c_str());
        std::fflush(out);
      }
    }
  }
  // Whatever happens below, the child does not outlive the test.
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      if (pid <= 0) return;
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  } reaper{pid};
  close(fds[1]);
  FILE* in = fdopen(fds[0], "r");
  std::vector<std::string> steps;
  std::vector<std::pair<int64_t, std::string>> leases;
  char kind[16], word[64];
  long long task_id = 0;
  while (steps.size() < 40) {
    char line[256];
    ASSERT_NE(std::fgets(line, sizeof(line), in), nullptr) << "child ended early";
    if (std::sscanf(line, "step %63s", word) == 1) {
      steps.push_back(word);
    } else if (std::sscanf(line, "%15s %lld %63s", kind, &task_id, word) == 3) {
      leases.emplace_back(task_id, word);
    }
  }
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  reaper.pid = 0;
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  std::fclose(in);

  open();
  for (const std::string& id : steps) {
    Step s = get("a", id);
    EXPECT_EQ(s.id, id);
    EXPECT_EQ(s.progress.tasks_total, 4) << id;  // never a step without its tasks
  }
  ASSERT_FALSE(leases.empty());
  Peek peek(dir_ / "kiln.db");
  for (const auto& [id, worker_id] : leases) {
    EXPECT_EQ(task_state(id), "LEASED") << id;
    EXPECT_EQ(peek.scalar("SELECT worker_id FROM tasks WHERE id = " + std::to_string(id)),
              worker_id);
  }
  auto ws = store_->workers(true);
  ASSERT_EQ(ws->size(), 1u);
  EXPECT_GE((*ws)[0].busy, static_cast<int>(leases.size()));
  // Every step in the database is whole, including one the child may have
  // committed after its last report.
  EXPECT_EQ(peek.scalar("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(peek.scalar("SELECT COUNT(*) FROM steps s WHERE "
                        "(SELECT COUNT(*) FROM tasks t WHERE t.step_id = s.id) <> 4"),
            "0");
  // And the store carries on.
  EXPECT_GT(submit("a").seq, get("a", steps.back()).seq);
}

TEST_F(JobStoreTest, FiftyThreadsSubmittingAtOnceGetDistinctIdsAllListed) {
  constexpr int kThreads = 50, kEach = 6;
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t, &ids] {
      for (int i = 0; i < kEach; ++i) {
        auto s = store_->submit(new_step("a", 1), t * 100 + i);
        if (s.is_ok()) ids[t].push_back(s->id);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  std::set<std::string> submitted;
  for (const auto& v : ids) {
    EXPECT_EQ(v.size(), static_cast<size_t>(kEach));
    submitted.insert(v.begin(), v.end());
  }
  EXPECT_EQ(submitted.size(), static_cast<size_t>(kThreads * kEach));
  std::vector<std::string> listed = list_all("a", 37);
  EXPECT_EQ(listed.size(), submitted.size());
  EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()), submitted);
}

// --- claims and batch jobs (executors that place tasks themselves) -------------

class ClaimTest : public JobStoreTest {
 protected:
  Claim claim(const std::string& w, const std::string& step, int64_t index, int64_t now) {
    auto c = store_->claim(w, step, index, /*lease_ms=*/15000, now);
    EXPECT_TRUE(c.is_ok()) << c.status().to_string();
    return c.is_ok() ? *c : Claim{};
  }
};

TEST_F(ClaimTest, LeasesTheNamedTaskOnlyAndAgainToItsHolder) {
  Step s = submit("a", 3);
  start();
  const std::string w1 = worker(1), w2 = worker(1);
  Claim c = claim(w1, s.id, 1, 2000);
  ASSERT_EQ(c.outcome, Claim::Outcome::kLeased);
  ASSERT_TRUE(c.lease.has_value());
  EXPECT_EQ(c.lease->task.index, 1);
  EXPECT_EQ(c.lease->task.attempt, 1);
  EXPECT_EQ(c.lease->step.id, s.id);
  // Partitions 0 and 2 are untouched.
  auto tasks = store_->tasks_of(s.id);
  ASSERT_TRUE(tasks.is_ok());
  ASSERT_EQ(tasks->size(), 4u);
  EXPECT_EQ((*tasks)[0].state, TaskState::kPending);
  EXPECT_EQ((*tasks)[1].state, TaskState::kLeased);
  EXPECT_EQ((*tasks)[2].state, TaskState::kPending);
  EXPECT_EQ((*tasks)[3].kind, TaskKind::kCommit);

  // Its holder asking again (a lost reply) gets the same attempt.
  Claim again = claim(w1, s.id, 1, 2100);
  ASSERT_EQ(again.outcome, Claim::Outcome::kLeased);
  EXPECT_EQ(again.lease->task.attempt, 1);
  // Another claimant waits: the holder may still be running it.
  Claim other = claim(w2, s.id, 1, 2200);
  EXPECT_EQ(other.outcome, Claim::Outcome::kWait);
  EXPECT_GT(other.retry_at_ms, 2200);
  EXPECT_LE(other.retry_at_ms, 2000 + 15000 + 1);
  EXPECT_NE(other.why.find(w1), std::string::npos) << other.why;

  ASSERT_TRUE(complete_ok(w1, c.lease->task, 3000));
  EXPECT_EQ(claim(w2, s.id, 1, 3100).outcome, Claim::Outcome::kDone);
}

TEST_F(ClaimTest, AReleasedTaskIsClaimedAsANewAttemptByTheNextClaimant) {
  Step s = submit("a", 1);
  start();
  const std::string w1 = worker(1), w2 = worker(1);
  Claim c = claim(w1, s.id, 0, 2000);
  ASSERT_EQ(c.outcome, Claim::Outcome::kLeased);
  // A preempted batch task leaves: its lease goes back to the queue at once.
  ASSERT_TRUE(store_->worker_gone(w1, 2500).is_ok());
  Claim next = claim(w2, s.id, 0, 2600);
  ASSERT_EQ(next.outcome, Claim::Outcome::kLeased);
  EXPECT_EQ(next.lease->task.attempt, 2);
  // The one that left cannot claim any more.
  EXPECT_EQ(store_->claim(w1, s.id, 0, 15000, 2700).status().code(), StatusCode::kNotFound);
}

TEST_F(ClaimTest, ALapsedLeaseCanBeClaimedAfterExpiry) {
  Step s = submit("a", 1);
  start();
  const std::string w1 = worker(1), w2 = worker(1);
  ASSERT_EQ(claim(w1, s.id, 0, 2000).outcome, Claim::Outcome::kLeased);
  EXPECT_EQ(claim(w2, s.id, 0, 2000 + 15000).outcome, Claim::Outcome::kWait);
  auto expired = store_->expire_leases(2000 + 15001);
  ASSERT_TRUE(expired.is_ok());
  EXPECT_EQ(*expired, 1);
  Claim c = claim(w2, s.id, 0, 2000 + 15002);
  ASSERT_EQ(c.outcome, Claim::Outcome::kLeased);
  EXPECT_EQ(c.lease->task.attempt, 2);
}

TEST_F(ClaimTest, AFailedAttemptBacksOffThenTheLastFailureEndsTheStep) {
  Step s = submit("a", 1, "CONTINUE", /*max_attempts=*/2);
  start();
  const std::string w = worker(1);
  Claim c = claim(w, s.id, 0, 2000);
  ASSERT_EQ(c.outcome, Claim::Outcome::kLeased);
  ASSERT_TRUE(complete_failed(w, c.lease->task, 2100));
  Claim wait = claim(w, s.id, 0, 2200);
  ASSERT_EQ(wait.outcome, Claim::Outcome::kWait);
  EXPECT_EQ(wait.retry_at_ms, 2100 + 1000);  // docs/cluster.md: 1 s after the first failure
  Claim second = claim(w, s.id, 0, wait.retry_at_ms);
  ASSERT_EQ(second.outcome, Claim::Outcome::kLeased);
  EXPECT_EQ(second.lease->task.attempt, 2);
  ASSERT_TRUE(complete_failed(w, second.lease->task, 3500));
  EXPECT_EQ(get("a", s.id).state, StepState::kFailed);
  Claim gone = claim(w, s.id, 0, 3600);
  EXPECT_EQ(gone.outcome, Claim::Outcome::kGone);
  EXPECT_NE(gone.why.find("FAILED"), std::string::npos) << gone.why;
}

TEST_F(ClaimTest, TheCommitWaitsForEveryPartitionAndACancelledStepIsGone) {
  Step s = submit("a", 2);
  start();
  const std::string w = worker(2);
  Claim early = claim(w, s.id, -1, 2000);
  ASSERT_EQ(early.outcome, Claim::Outcome::kWait);
  EXPECT_NE(early.why.find("2 partition task(s)"), std::string::npos) << early.why;
  for (int64_t i : {0, 1}) {
    Claim c = claim(w, s.id, i, 2100);
    ASSERT_EQ(c.outcome, Claim::Outcome::kLeased);
    ASSERT_TRUE(complete_ok(w, c.lease->task, 2200));
  }
  Claim commit = claim(w, s.id, -1, 2300);
  ASSERT_EQ(commit.outcome, Claim::Outcome::kLeased);
  EXPECT_EQ(commit.lease->task.kind, TaskKind::kCommit);

  Step other = submit("b", 1);
  start();
  ASSERT_TRUE(store_->request_cancel("b", other.id, "TERM", 2400).is_ok());
  EXPECT_EQ(claim(w, other.id, 0, 2500).outcome, Claim::Outcome::kGone);
}

TEST_F(ClaimTest, UnknownNamesAreNotFound) {
  Step s = submit("a", 1);
  start();
  const std::string w = worker(1);
  EXPECT_EQ(store_->claim(w, s.id, 7, 15000, 2000).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->claim(w, "s-NOSUCHSTEP000", 0, 15000, 2000).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->claim("w-nobody", s.id, 0, 15000, 2000).status().code(), StatusCode::kNotFound);
}

TEST_F(ClaimTest, ExtendLeasesGivesSurvivingHoldersTime) {
  Step s = submit("a", 2);
  start();
  const std::string w = worker(1);
  ASSERT_EQ(claim(w, s.id, 0, 2000).outcome, Claim::Outcome::kLeased);
  auto n = store_->extend_leases(60000);
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(*n, 1);
  auto expired = store_->expire_leases(59000);
  ASSERT_TRUE(expired.is_ok());
  EXPECT_EQ(*expired, 0);
}

TEST_F(ClaimTest, BatchJobsAreRecordedDurablyAndEnded) {
  Step s = submit("a", 8);
  ASSERT_TRUE(store_->add_batch_job({"101", s.id, "partitions", "0-7", 1000, false}).is_ok());
  ASSERT_TRUE(store_->add_batch_job({"102", s.id, "commit", "", 1001, false}).is_ok());
  EXPECT_EQ(store_->add_batch_job({"101", s.id, "partitions", "0", 1002, false}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->add_batch_job({"103", "s-NOSUCHSTEP000", "commit", "", 1003, false}).code(),
            StatusCode::kNotFound);
  reopen();
  auto open = store_->open_batch_jobs();
  ASSERT_TRUE(open.is_ok());
  ASSERT_EQ(open->size(), 2u);
  EXPECT_EQ((*open)[0].job_id, "101");
  EXPECT_EQ((*open)[0].indexes, "0-7");
  EXPECT_EQ((*open)[1].kind, "commit");
  ASSERT_TRUE(store_->end_batch_job("101").is_ok());
  EXPECT_EQ(store_->end_batch_job("999").code(), StatusCode::kNotFound);
  open = store_->open_batch_jobs();
  ASSERT_TRUE(open.is_ok());
  ASSERT_EQ(open->size(), 1u);
  EXPECT_EQ((*open)[0].job_id, "102");
}

TEST_F(ClaimTest, StepsInStatesSpansEnvironmentsInSubmissionOrder) {
  Step a = submit("a", 1);
  Step b = submit("b", 1);
  Step c = submit("a", 1);
  start();
  ASSERT_TRUE(store_->request_cancel("a", c.id, "TERM", 1500).is_ok());
  auto running = store_->steps_in_states({StepState::kRunning});
  ASSERT_TRUE(running.is_ok());
  ASSERT_EQ(running->size(), 2u);
  EXPECT_EQ((*running)[0].id, a.id);
  EXPECT_EQ((*running)[1].id, b.id);
  auto both = store_->steps_in_states({StepState::kCancelPending, StepState::kRunning});
  ASSERT_TRUE(both.is_ok());
  ASSERT_EQ(both->size(), 3u);
  EXPECT_EQ((*both)[2].id, c.id);
}

}  // namespace
}  // namespace kiln::store
