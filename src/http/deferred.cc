#include "http/deferred.h"

#include "http/mailbox.h"

namespace kiln::http {

void Deferred::complete(Response res) {
  if (done_.exchange(true)) return;
  if (abandoned_.load()) return;
  std::shared_ptr<Mailbox> mailbox = target_.mailbox.lock();
  if (!mailbox) return;  // the server is gone
  LoopMessage m;
  m.kind = LoopMessage::Kind::kResponse;
  m.conn = target_.conn;
  m.seq = target_.seq;
  m.response = std::move(res);
  mailbox->post(std::move(m));
}

}  // namespace kiln::http
