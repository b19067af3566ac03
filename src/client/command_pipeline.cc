#include "client/command_pipeline.h"

#include <cassert>

#include "client/command_encoder.h"

namespace hirecache {

namespace {
// The output buffer's capacity is kept between writes up to this size.
constexpr size_t kKeepOutbufCapacity = 1024 * 1024;
}  // namespace

void CommandPipeline::Push(const std::string_view* argv, size_t argc, void* token, uint32_t flags,
                           uint64_t deadline_ms, CommandKind kind, uint64_t submitted_us) {
  PushEntry(CommandUnit{argv, &argc, 1, 1}, false, token, flags, deadline_ms, kind, submitted_us);
}

void CommandPipeline::PushUnit(const CommandUnit& unit, void* token, uint32_t flags,
                               uint64_t deadline_ms, uint64_t submitted_us) {
  PushEntry(unit, true, token, flags, deadline_ms, CommandKind::kUser, submitted_us);
}

void CommandPipeline::PushEntry(const CommandUnit& unit, bool as_unit, void* token, uint32_t flags,
                                uint64_t deadline_ms, CommandKind kind, uint64_t submitted_us) {
  assert(unit.replies >= 1);
  // All or nothing: a command half encoded would put the stream out of step.
  size_t before = outbuf_.size();
  try {
    const std::string_view* argv = unit.argv;
    for (size_t i = 0; i < unit.commands; ++i) {
      AppendCommand(outbuf_, argv, unit.argcs[i]);
      argv += unit.argcs[i];
    }
    PendingCommand cmd{token, deadline_ms, submitted_us, outbuf_.size() - before,
                       flags, kind,        false};
    cmd.unit = as_unit;
    cmd.one_command = unit.commands == 1;
    cmd.replies = unit.replies;
    cmd.epoch = epoch_;
    fifo_.push_back(cmd);
  } catch (...) {
    outbuf_.resize(before);
    throw;
  }
}

void CommandPipeline::DropLast() {
  assert(unsent() > 0);
  outbuf_.resize(outbuf_.size() - fifo_.back().encoded_len);
  fifo_.pop_back();
  expired_prefix_ = std::min(expired_prefix_, fifo_.size());
  DropLeadingUnsent();
}

void CommandPipeline::PrependHandshake(size_t count) {
  assert(written_ == 0);
  for (size_t i = 0; i < count; ++i) {
    fifo_.push_front(PendingCommand{nullptr, 0, 0, 0, 0, CommandKind::kHandshake, false});
  }
  written_ = count;
  expired_prefix_ = std::min(expired_prefix_ + count, fifo_.size());
}

size_t CommandPipeline::TakeUnsent(size_t max_commands, size_t max_bytes, std::string& out) {
  out.clear();
  size_t limit = std::min(max_commands, unsent());
  if (limit == 0) return 0;
  if (limit == unsent() && unsent_bytes() <= max_bytes) {
    // The common case: everything goes, and the buffers trade places so the output
    // buffer's capacity is reused next time.
    out.swap(outbuf_);
    if (outbuf_skip_ > 0) out.erase(0, outbuf_skip_);
    outbuf_skip_ = 0;
    if (outbuf_.capacity() > kKeepOutbufCapacity) std::string().swap(outbuf_);
    written_ += limit;
    return limit;
  }
  size_t count = 0;
  size_t bytes = 0;
  while (count < limit) {
    size_t len = fifo_[written_ + count].encoded_len;
    if (count > 0 && bytes + len > max_bytes) break;
    bytes += len;
    ++count;
  }
  out.assign(outbuf_, outbuf_skip_, bytes);
  outbuf_.erase(0, outbuf_skip_ + bytes);
  outbuf_skip_ = 0;
  written_ += count;
  return count;
}

PendingCommand CommandPipeline::PopWritten() {
  assert(written_ > 0);
  PendingCommand cmd = fifo_.front();
  fifo_.pop_front();
  --written_;
  if (expired_prefix_ > 0) --expired_prefix_;
  return cmd;
}

uint64_t CommandPipeline::NextDeadline() const {
  for (size_t i = expired_prefix_; i < fifo_.size(); ++i) {
    if (!fifo_[i].settled && fifo_[i].deadline_ms != 0) return fifo_[i].deadline_ms;
  }
  return 0;
}

void CommandPipeline::DropLeadingUnsent() {
  if (outbuf_skip_ == outbuf_.size()) {
    outbuf_.clear();
    outbuf_skip_ = 0;
  }
}

}  // namespace hirecache
