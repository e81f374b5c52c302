#include "server/step_json.h"

namespace kiln::server {

void write_step(JsonWriter& w, const store::Step& s, const std::string& log_file, bool with_action,
                int64_t now_ms) {
  w.begin_object();
  w.key("id").value(s.id);
  w.key("name").value(s.name);
  w.key("environment").value(s.environment);
  w.key("state").value(store::step_state_name(s.state));
  w.key("action_on_failure").value(s.action_on_failure);
  w.key("created_at").timestamp(s.created_ms);
  w.key("started_at").timestamp(s.started_ms);
  w.key("ended_at").timestamp(s.ended_ms);
  w.key("layer").value(s.layer);
  w.key("version");
  if (s.version != 0) {
    w.value(s.version);
  } else {
    w.null();
  }
  w.key("log_file").value(log_file);
  w.key("cost").begin_object();
  w.key("slot_seconds").value(s.slot_seconds);
  w.key("amount").value(s.cost);
  w.end_object();
  if (with_action && s.action.contains("ingest")) {
    w.key("action").begin_object().key("ingest").value(s.action["ingest"]).end_object();
  }
  w.key("failure");
  if (s.failure) {
    w.begin_object();
    w.key("reason").value(s.failure->reason);
    w.key("message").value(s.failure->message);
    w.key("log_file").value(s.failure->log_file.empty() ? log_file : s.failure->log_file);
    w.end_object();
  } else {
    w.null();
  }
  const auto& p = s.progress;
  w.key("progress").begin_object();
  w.key("tasks_total").value(p.tasks_total);
  w.key("tasks_done").value(p.tasks_done);
  w.key("tiles_total").value(p.tiles_total);
  w.key("tiles_done").value(p.tiles_done);
  w.key("bytes_read").value(p.bytes_read);
  w.key("bytes_written").value(p.bytes_written);
  w.key("eta_seconds");
  if (s.state == store::StepState::kRunning && p.tiles_done > 0 && s.started_ms > 0) {
    const double elapsed = (now_ms - s.started_ms) / 1000.0;
    w.value(elapsed * static_cast<double>(p.tiles_total - p.tiles_done) / p.tiles_done);
  } else {
    w.null();
  }
  w.end_object();
  w.end_object();
}

std::string step_text(const store::Step& s, const std::string& log_file, int64_t now_ms) {
  std::string out;
  JsonWriter w(&out);
  write_step(w, s, log_file, /*with_action=*/true, now_ms);
  return out;
}

}  // namespace kiln::server
