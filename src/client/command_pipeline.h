// The commands of one client, in the order their replies will come: the FIFO that pairs
// each reply with the command that asked for it, and the encoded bytes of the commands not
// yet handed to the socket. No libuv and no clock of its own (times are passed in), so it
// is unit-tested without a server.
//
// The FIFO is [written | unsent]. Rules it keeps (docs/architecture.md):
//   * A written command keeps its slot until its reply arrives or the connection dies. A
//     deadline settles its caller early (`settled`), and the slot swallows the late reply.
//   * An unsent command whose deadline passed is dropped with its bytes: it never runs.
//   * Commands are settled exactly once: each callback below is told of an unsettled user
//     command once, and the entry is then gone or marked settled.
#ifndef HIRECACHE_CLIENT_COMMAND_PIPELINE_H_
#define HIRECACHE_CLIENT_COMMAND_PIPELINE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

namespace hirecache {

enum class CommandKind : uint8_t { kUser, kHandshake, kQuit, kProbe };

struct PendingCommand {
  void* token;            // the caller's, handed back when the command is settled
  uint64_t deadline_ms;   // monotonic ms after which the caller gets ETIMEDOUT; 0: none
  uint64_t submitted_us;  // monotonic µs when it was issued (latency); 0: not measured
  size_t encoded_len;     // bytes in the output buffer while unsent
  uint32_t flags;         // the caller's, handed back too
  CommandKind kind;
  bool settled;  // the caller already has its answer; the slot only swallows the reply
  // A unit (a transaction, a pipeline, a SUBSCRIBE of several channels): written, expired
  // and failed as one entry, so nothing splits it, and answered with one array of its
  // `replies` replies (even when that is one).
  bool unit = false;
  // A unit of one command that asks for several replies (SUBSCRIBE a b): an error reply is
  // Redis refusing the whole command, and its last reply.
  bool one_command = false;
  uint32_t replies = 1;
  uint32_t epoch = 0;  // the pipeline's epoch when it was queued (see set_epoch)
};

// Several commands queued as one entry, or one command that asks for several replies.
struct CommandUnit {
  const std::string_view* argv;  // every command's arguments, one after the other
  const size_t* argcs;           // the number of arguments of each command
  size_t commands;
  uint32_t replies;  // the replies the unit asks for (≥ 1)
};

class CommandPipeline {
 public:
  // Encodes one command at the end of the unsent bytes and queues its entry. If memory runs
  // out it throws std::bad_alloc and leaves the pipeline as it was.
  void Push(const std::string_view* argv, size_t argc, void* token, uint32_t flags,
            uint64_t deadline_ms, CommandKind kind = CommandKind::kUser, uint64_t submitted_us = 0);

  // Encodes a unit's commands at the end of the unsent bytes as one entry expecting
  // `unit.replies` replies; all or nothing, as Push.
  void PushUnit(const CommandUnit& unit, void* token, uint32_t flags, uint64_t deadline_ms,
                uint64_t submitted_us = 0);
  // Either: `unit` as one entry of its own (as_unit), or its one command as a plain entry.
  void PushEntry(const CommandUnit& unit, bool as_unit, void* token, uint32_t flags,
                 uint64_t deadline_ms, CommandKind kind, uint64_t submitted_us);

  // Takes back the command just pushed (still unsent), with its bytes.
  void DropLast();

  // Puts `count` connection-handshake entries (AUTH, SELECT…) at the very front, counted as
  // written: the caller writes their bytes itself, ahead of everything else.
  void PrependHandshake(size_t count);

  // Moves the bytes of the first unsent commands into `out` (replacing its contents) and
  // counts them as written: at most `max_commands` of them, and no more than `max_bytes`
  // unless the first one alone is larger. Returns how many commands that was.
  size_t TakeUnsent(size_t max_commands, size_t max_bytes, std::string& out);

  // The oldest written entry (there must be one).
  const PendingCommand& OldestWritten() const { return fifo_.front(); }

  // Removes the oldest written entry (its reply has arrived) and returns it.
  PendingCommand PopWritten();

  // Calls on_expired(token, flags, written) for each unsettled command whose deadline is at or
  // before `now_ms`: a written one stays as a settled slot, an unsent one is dropped with
  // its bytes. Deadlines grow along the FIFO, so this stops at the first one still ahead.
  template <typename Fn>
  void ExpireDue(uint64_t now_ms, Fn&& on_expired);

  // Settles and removes every written entry (the connection died): on_failed(token, flags)
  // for each unsettled user command.
  template <typename Fn>
  void FailWritten(Fn&& on_failed);
  // The same for every unsent entry, and the unsent bytes go.
  template <typename Fn>
  void FailUnsent(Fn&& on_failed);

  // Settles the unsettled user commands with a flag of `written_mask` that are written (each
  // calls on_written(token, flags) and stays as a settled slot) and those with a flag of
  // `unsent_mask` that are not (each calls on_unsent(token, flags) and is dropped with its
  // bytes, never to run).
  template <typename Written, typename Unsent>
  void SettleFlagged(uint32_t written_mask, uint32_t unsent_mask, Written&& on_written,
                     Unsent&& on_unsent);

  // Drops each unsettled unsent user command for which keep(cmd) is false, with its bytes,
  // calling on_dropped(token, flags) for it: it never runs.
  template <typename Keep, typename Fn>
  void DropUnsentUnless(Keep&& keep, Fn&& on_dropped);

  // Commands queued from now on record `epoch` (the client counts failed connection
  // attempts with it: how many a command has waited through).
  void set_epoch(uint32_t epoch) { epoch_ = epoch; }

  // The earliest deadline of an unsettled command, or 0 when none has one.
  uint64_t NextDeadline() const;
  // The deadline of the oldest written command (0: none, or nothing written).
  uint64_t OldestWrittenDeadline() const { return written_ > 0 ? fifo_.front().deadline_ms : 0; }

  size_t written() const { return written_; }
  size_t unsent() const { return fifo_.size() - written_; }
  bool empty() const { return fifo_.empty(); }
  // Bytes of unsent commands waiting in the output buffer.
  size_t unsent_bytes() const { return outbuf_.size() - outbuf_skip_; }

 private:
  void DropLeadingUnsent();
  // Takes the unsent entries for which drop(cmd) holds out of the FIFO, with their bytes, and
  // returns them (a caller's callback may then queue new commands, which survive).
  template <typename Drop>
  std::deque<PendingCommand> RemoveUnsent(Drop&& drop);

  std::deque<PendingCommand> fifo_;
  size_t written_ = 0;
  // Entries at the front whose deadline no longer matters (settled, or without one); a
  // scan for the next deadline starts after them.
  size_t expired_prefix_ = 0;
  std::string outbuf_;
  size_t outbuf_skip_ = 0;  // leading bytes of outbuf_ that belong to dropped commands
  uint32_t epoch_ = 0;
};

template <typename Fn>
void CommandPipeline::ExpireDue(uint64_t now_ms, Fn&& on_expired) {
  size_t i = expired_prefix_;
  bool drop_settled_unsent = false;
  while (i < fifo_.size()) {
    PendingCommand& cmd = fifo_[i];
    if (cmd.settled || cmd.deadline_ms == 0) {
      ++i;
      continue;
    }
    if (cmd.deadline_ms > now_ms) break;
    if (i == written_) {
      // The first unsent command, and the due ones right after it: their bytes lead the
      // output buffer, so they are dropped together (one erase) and never run.
      size_t end = i;
      while (end < fifo_.size() && !fifo_[end].settled && fifo_[end].deadline_ms != 0 &&
             fifo_[end].deadline_ms <= now_ms) {
        outbuf_skip_ += fifo_[end].encoded_len;
        ++end;
      }
      std::deque<PendingCommand> dropped(fifo_.begin() + static_cast<std::ptrdiff_t>(i),
                                         fifo_.begin() + static_cast<std::ptrdiff_t>(end));
      fifo_.erase(fifo_.begin() + static_cast<std::ptrdiff_t>(i),
                  fifo_.begin() + static_cast<std::ptrdiff_t>(end));
      DropLeadingUnsent();
      for (const PendingCommand& d : dropped) on_expired(d.token, d.flags, false);
      continue;  // fifo_[i] is now the first command not yet due (or nothing)
    }
    // Written: the slot swallows its reply. Unsent behind a command without a deadline (a
    // blocking one): settled now, and its bytes go below, so it never runs.
    cmd.settled = true;
    bool written = i < written_;
    if (!written) drop_settled_unsent = true;
    ++i;
    on_expired(cmd.token, cmd.flags, written);
  }
  expired_prefix_ = i;
  if (drop_settled_unsent) RemoveUnsent([](const PendingCommand& c) { return c.settled; });
}

template <typename Written, typename Unsent>
void CommandPipeline::SettleFlagged(uint32_t written_mask, uint32_t unsent_mask,
                                    Written&& on_written, Unsent&& on_unsent) {
  auto flagged = [](const PendingCommand& c, uint32_t mask) {
    return c.kind == CommandKind::kUser && !c.settled && (c.flags & mask) != 0;
  };
  for (size_t i = 0; i < written_; ++i) {
    if (flagged(fifo_[i], written_mask)) {
      fifo_[i].settled = true;
      on_written(fifo_[i].token, fifo_[i].flags);
    }
  }
  DropUnsentUnless([&](const PendingCommand& c) { return (c.flags & unsent_mask) == 0; },
                   on_unsent);
}

template <typename Keep, typename Fn>
void CommandPipeline::DropUnsentUnless(Keep&& keep, Fn&& on_dropped) {
  std::deque<PendingCommand> dropped = RemoveUnsent([&](const PendingCommand& c) {
    return c.kind == CommandKind::kUser && !c.settled && !keep(c);
  });
  for (const PendingCommand& cmd : dropped) on_dropped(cmd.token, cmd.flags);
}

template <typename Drop>
std::deque<PendingCommand> CommandPipeline::RemoveUnsent(Drop&& drop) {
  std::deque<PendingCommand> dropped;
  auto first_unsent = fifo_.begin() + static_cast<std::ptrdiff_t>(written_);
  if (std::none_of(first_unsent, fifo_.end(), drop)) return dropped;
  // The output buffer is rebuilt from the bytes of the commands kept.
  std::string kept;
  kept.reserve(unsent_bytes());
  size_t offset = outbuf_skip_;
  auto out = first_unsent;
  for (auto it = first_unsent; it != fifo_.end(); ++it) {
    if (drop(*it)) {
      dropped.push_back(*it);
    } else {
      kept.append(outbuf_, offset, it->encoded_len);
      *out++ = *it;
    }
    offset += it->encoded_len;
  }
  fifo_.erase(out, fifo_.end());
  outbuf_.swap(kept);
  outbuf_skip_ = 0;
  expired_prefix_ = std::min(expired_prefix_, written_);
  return dropped;
}

template <typename Fn>
void CommandPipeline::FailWritten(Fn&& on_failed) {
  while (written_ > 0) {
    PendingCommand cmd = PopWritten();
    if (cmd.kind == CommandKind::kUser && !cmd.settled) on_failed(cmd.token, cmd.flags);
  }
}

template <typename Fn>
void CommandPipeline::FailUnsent(Fn&& on_failed) {
  // Taken out first: a callback may queue new commands, which must survive.
  std::deque<PendingCommand> unsent(fifo_.begin() + static_cast<std::ptrdiff_t>(written_),
                                    fifo_.end());
  fifo_.erase(fifo_.begin() + static_cast<std::ptrdiff_t>(written_), fifo_.end());
  outbuf_.clear();
  outbuf_skip_ = 0;
  expired_prefix_ = std::min(expired_prefix_, fifo_.size());
  for (const PendingCommand& cmd : unsent) {
    if (cmd.kind == CommandKind::kUser && !cmd.settled) on_failed(cmd.token, cmd.flags);
  }
}

}  // namespace hirecache

#endif  // HIRECACHE_CLIENT_COMMAND_PIPELINE_H_
