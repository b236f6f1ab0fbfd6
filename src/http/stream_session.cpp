// GET /api/v1/events/stream: one client's Server-Sent Events stream (the HTML standard, section
// 9.2 "Server-sent events"). The response is chunked (RFC 9112 section 7.1); each chunk holds one
// or more complete frames.
//
// A stream that resumes (Last-Event-ID or ?after=) first pages through the store from there
// without listening to the hub; when a page comes back short it has reached the head, so it
// subscribes to the hub, which names the last position it has handed out (H), reads the store
// once more up to H, and from then on writes the hub's frames (all after H). Each event is
// written once, in position order: no gap and no duplicate at the seam.

#include <fmt/core.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>

#include <unistd.h>

#include <deque>

#include "server_internal.hpp"

namespace herald::http::detail {
namespace {

constexpr std::size_t replay_page = 1000;

class StreamSession final : public Connection,
                            public StreamSubscriber,
                            public std::enable_shared_from_this<StreamSession> {
 public:
  StreamSession(ServerState& state, beast::tcp_stream stream, std::unique_ptr<ConnectionSlot> slot,
                StreamRequest request)
      : state_(state),
        stream_(std::move(stream)),
        slot_(std::move(slot)),
        request_(std::move(request)),
        heartbeat_(stream_.get_executor()) {}

  void start() {
    slot_->attach(weak_from_this());
    state_.metrics().on_stream_opened();
    opened_ = true;
    write_head();
  }

  ~StreamSession() override {
    if (opened_) state_.metrics().on_stream_closed();
  }

  // Hub thread, hub lock held: queue and schedule a flush; never block.
  void deliver(std::span<const FramePtr> frames) override {
    bool schedule = false;
    {
      std::lock_guard lock(queue_mutex_);
      if (overflowed_) return;
      for (const FramePtr& frame : frames) {
        if (!matches(request_.filter, *frame)) continue;
        queue_.push_back(frame);
      }
      if (queue_.size() > state_.options().limits.stream_queue_events) {
        overflowed_ = true;
        queue_.clear();
      }
      if (!flush_scheduled_ && (!queue_.empty() || overflowed_)) {
        flush_scheduled_ = true;
        schedule = true;
      }
    }
    if (schedule) {
      net::post(stream_.get_executor(), [self = shared_from_this()] {
        {
          std::lock_guard lock(self->queue_mutex_);
          self->flush_scheduled_ = false;
        }
        self->pump();
      });
    }
  }

  void shutdown() override {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      self->ending_ = true;
      self->pump();
    });
  }

  void abort() override {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->close(); });
  }

 private:
  enum class Phase : std::uint8_t { replaying, catching_up, live };

  void write_head() {
    head_.result(bhttp::status::ok);
    head_.version(request_.version);
    head_.set(bhttp::field::content_type, "text/event-stream; charset=utf-8");
    head_.set(bhttp::field::cache_control, "no-store");
    // Tells nginx-style proxies not to buffer the stream.
    head_.set("X-Accel-Buffering", "no");
    head_.set("X-Request-Id", request_.request_id);
    head_.keep_alive(true);
    head_.chunked(true);
    serializer_.emplace(head_);
    stream_.expires_after(state_.options().limits.write_timeout);
    writing_ = true;
    bhttp::async_write_header(
        stream_, *serializer_,
        beast::bind_front_handler(&StreamSession::on_head_written, shared_from_this()));
  }

  void on_head_written(beast::error_code ec, std::size_t) {
    writing_ = false;
    if (ec) return close();
    watch_peer();
    arm_heartbeat();
    // The reconnection delay for a browser's EventSource, then a comment that says where the
    // stream begins.
    control_ += fmt::format("retry: {}\n\n", state_.options().stream_retry.count());
    if (request_.resume_after) {
      last_position_ = *request_.resume_after;
      control_ += fmt::format(": resuming after position {}\n\n", last_position_);
      phase_ = Phase::replaying;
      read_store();
    } else {
      go_live_after(state_.hub().subscribe(shared_from_this()));
      control_ += fmt::format(": live after position {}\n\n", last_position_);
    }
    pump();
  }

  // Subscribed: the hub hands out every position after `handed_out`.
  void go_live_after(std::int64_t handed_out) {
    subscribed_ = true;
    seam_ = handed_out;
    if (phase_ == Phase::replaying && last_position_ < seam_) {
      phase_ = Phase::catching_up;
      read_store();
      return;
    }
    phase_ = Phase::live;
    if (last_position_ < seam_) last_position_ = seam_;
  }

  void read_store() {
    reading_ = true;
    net::post(state_.blocking(), [self = shared_from_this(), after = last_position_] {
      auto page =
          self->state_.services().store->read_forward(after, replay_page, self->request_.filter);
      net::post(self->stream_.get_executor(),
                [self, page = std::move(page)]() mutable { self->on_store_page(std::move(page)); });
    });
  }

  void on_store_page(std::expected<std::vector<StoredEvent>, Error> page) {
    reading_ = false;
    if (closed_) return;
    if (!page) {
      spdlog::error("stream {}: reading the store after position {} failed: {}",
                    request_.request_id, last_position_, page.error().message);
      ending_ = true;
      return pump();
    }
    bool reached_end = page->size() < replay_page;
    for (const StoredEvent& event : *page) {
      if (phase_ == Phase::catching_up && event.position > seam_) {
        // The hub delivers these.
        reached_end = true;
        break;
      }
      pending_.push_back(make_frame(event));
    }
    if (!pending_.empty()) last_position_ = pending_.back()->position;
    if (phase_ == Phase::replaying && reached_end) {
      go_live_after(state_.hub().subscribe(shared_from_this()));
    } else if (phase_ == Phase::catching_up && reached_end) {
      phase_ = Phase::live;
      if (last_position_ < seam_) last_position_ = seam_;
    }
    // Not at the end: the next page is read once this one is written (pump), so a slow client
    // is not read ahead of.
    pump();
  }

  // Writes whatever is ready, one chunk at a time.
  void pump() {
    if (closed_ || writing_) return;
    if (phase_ == Phase::live) take_live_frames();
    if (overflowed_now()) {
      spdlog::warn(
          "stream {}: client fell more than {} events behind; closing it (it resumes "
          "with Last-Event-ID)",
          request_.request_id, state_.options().limits.stream_queue_events);
      return close();
    }
    if (!control_.empty() || !pending_.empty()) return write_chunk();
    if (ending_) return write_last_chunk();
    if (!reading_ && (phase_ == Phase::replaying || phase_ == Phase::catching_up)) read_store();
  }

  void take_live_frames() {
    std::lock_guard lock(queue_mutex_);
    for (FramePtr& frame : queue_) {
      // Positions at or below what was already written came through the store.
      if (frame->position <= last_position_) continue;
      last_position_ = frame->position;
      pending_.push_back(std::move(frame));
    }
    queue_.clear();
  }

  bool overflowed_now() {
    std::lock_guard lock(queue_mutex_);
    return overflowed_;
  }

  // One chunk of the control lines and every pending frame. The frames are shared by every
  // client, so they are written from where they are (a gather write), not copied.
  void write_chunk() {
    out_ = std::move(control_);
    control_.clear();
    writing_frames_.swap(pending_);
    pending_.clear();
    buffers_.clear();
    if (!out_.empty()) buffers_.emplace_back(out_.data(), out_.size());
    for (const FramePtr& frame : writing_frames_) {
      buffers_.emplace_back(frame->text.data(), frame->text.size());
    }
    writing_ = true;
    last_write_ = std::chrono::steady_clock::now();
    stream_.expires_after(state_.options().limits.write_timeout);
    net::async_write(stream_, bhttp::make_chunk(buffers_),
                     beast::bind_front_handler(&StreamSession::on_written, shared_from_this()));
  }

  void on_written(beast::error_code ec, std::size_t) {
    writing_ = false;
    out_.clear();
    writing_frames_.clear();
    if (ec) return close();
    pump();
  }

  void write_last_chunk() {
    writing_ = true;
    stream_.expires_after(state_.options().limits.write_timeout);
    net::async_write(stream_, bhttp::make_chunk_last(),
                     [self = shared_from_this()](beast::error_code, std::size_t) {
                       self->writing_ = false;
                       self->close();
                     });
  }

  // Nothing is expected from the client once the stream began; a read completes only when it
  // closes the connection (or misbehaves), which ends the stream. The raw socket is read so that
  // the stream's write timeout does not apply to this read.
  void watch_peer() {
    stream_.socket().async_read_some(
        net::buffer(peer_byte_),
        [self = shared_from_this()](beast::error_code, std::size_t) { self->close(); });
  }

  // A comment line keeps proxies and browsers from timing out an idle stream.
  void arm_heartbeat() {
    heartbeat_.expires_after(state_.options().heartbeat);
    heartbeat_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->closed_) return;
      if (std::chrono::steady_clock::now() - self->last_write_ >=
          self->state_.options().heartbeat - std::chrono::milliseconds(5)) {
        self->control_ += ": heartbeat\n\n";
        self->pump();
      }
      self->arm_heartbeat();
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    if (subscribed_) state_.hub().unsubscribe(this);
    heartbeat_.cancel();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    slot_.reset();
  }

  ServerState& state_;
  beast::tcp_stream stream_;
  std::unique_ptr<ConnectionSlot> slot_;
  StreamRequest request_;
  net::steady_timer heartbeat_;
  bhttp::response<bhttp::empty_body> head_;
  std::optional<bhttp::response_serializer<bhttp::empty_body>> serializer_;

  // Shared with the hub's thread.
  std::mutex queue_mutex_;
  std::deque<FramePtr> queue_;
  bool overflowed_ = false;
  bool flush_scheduled_ = false;

  // The strand's alone.
  Phase phase_ = Phase::live;
  std::int64_t last_position_ = 0;
  std::int64_t seam_ = 0;
  std::vector<FramePtr> pending_;
  std::string control_;
  // What the write in progress refers to.
  std::string out_;
  std::vector<FramePtr> writing_frames_;
  std::vector<net::const_buffer> buffers_;
  std::array<char, 1> peer_byte_{};
  std::chrono::steady_clock::time_point last_write_ = std::chrono::steady_clock::now();
  bool subscribed_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool ending_ = false;
  bool closed_ = false;
  bool opened_ = false;
};

}  // namespace

void start_stream(ServerState& state, beast::tcp_stream stream,
                  std::unique_ptr<ConnectionSlot> slot, StreamRequest request) {
  stream.expires_never();
  auto session = std::make_shared<StreamSession>(state, std::move(stream), std::move(slot),
                                                 std::move(request));
  session->start();
}

}  // namespace herald::http::detail
