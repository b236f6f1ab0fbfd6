// GET /api/v1/users/{user_id}/inbox/stream: one user's inbox as Server-Sent Events (the HTML
// standard, section 9.2), in the event stream's framing: `id:` the item id, `event:
// notification`, `data:` the item's JSON; heartbeats, `retry:`, a final chunk on server stop.
//
// The stream follows `NotificationStore::inbox_after(user, last id)`: it reads whenever the
// watcher says the newest inbox id moved (and once at the start), one read at a time, and a wake
// during a read makes it read again after. Item ids only grow, so following them skips nothing
// and repeats nothing; a client resumes with the last id it saw (Last-Event-ID or ?after=).

#include "inbox_stream.hpp"

#include <fmt/core.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>

#include "herald/notify/notification_store.hpp"
#include "server_internal.hpp"

namespace herald::http::detail {

// --- InboxWatcher ---

InboxWatcher::InboxWatcher(notify::NotificationStore& store, std::chrono::milliseconds interval)
    : store_(store), interval_(interval) {}

InboxWatcher::~InboxWatcher() { stop(); }

std::unique_ptr<InboxWatcher::Subscription> InboxWatcher::subscribe(std::function<void()> wake) {
  std::lock_guard lock(mutex_);
  const std::uint64_t id = next_id_++;
  entries_.push_back(Entry{.id = id, .wake = std::move(wake)});
  if (!thread_.joinable() && !stop_) thread_ = std::thread([this] { run(); });
  changed_.notify_all();
  return std::make_unique<Subscription>(*this, id);
}

void InboxWatcher::unsubscribe(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  std::erase_if(entries_, [id](const Entry& entry) { return entry.id == id; });
}

void InboxWatcher::stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void InboxWatcher::run() {
  // The head last seen; -1: none yet (the head is never negative).
  std::int64_t last = -1;
  std::unique_lock lock(mutex_);
  while (!stop_) {
    // Idle while no stream is open; the head is taken afresh when the first one comes.
    if (entries_.empty()) {
      last = -1;
      changed_.wait(lock, [&] { return stop_ || !entries_.empty(); });
      continue;
    }
    lock.unlock();
    auto head = store_.inbox_head();
    lock.lock();
    if (!head) {
      spdlog::warn("inbox streams: reading the newest inbox id failed: {}", head.error().message);
    } else if (*head != last) {
      // Also on the first look: an item written between a new stream's first read and this one
      // would otherwise wait for the next.
      for (const Entry& entry : entries_) entry.wake();
      last = *head;
    }
    changed_.wait_for(lock, interval_, [&] { return stop_; });
  }
}

namespace {

// --- one stream ---

constexpr std::size_t read_page = 200;

std::string item_frame(const notify::InboxItem& item) {
  auto optional_time = [](const std::optional<Timestamp>& t) {
    return t ? boost::json::value(format_timestamp(*t)) : boost::json::value(nullptr);
  };
  const boost::json::object json{
      {"id", item.id},
      {"kind", item.kind},
      {"title", item.title},
      {"body", item.body},
      {"link", item.link},
      {"event_id", item.event_id.to_string()},
      {"organization_id", item.organization_id ? boost::json::value(*item.organization_id)
                                               : boost::json::value(nullptr)},
      {"created_at", format_timestamp(item.created_at)},
      {"seen_at", optional_time(item.seen_at)},
      {"read_at", optional_time(item.read_at)},
      {"archived_at", optional_time(item.archived_at)}};
  // The JSON serializer escapes line breaks, so the data is one line.
  return fmt::format("id: {}\nevent: notification\ndata: {}\n\n", item.id,
                     boost::json::serialize(json));
}

class InboxStreamSession final : public Connection,
                                 public std::enable_shared_from_this<InboxStreamSession> {
 public:
  InboxStreamSession(ServerState& state, beast::tcp_stream stream,
                     std::unique_ptr<ConnectionSlot> slot, StreamRequest request)
      : state_(state),
        stream_(std::move(stream)),
        slot_(std::move(slot)),
        request_(std::move(request)),
        user_id_(*request_.inbox_user),
        last_id_(request_.resume_after.value_or(0)),
        heartbeat_(stream_.get_executor()) {}

  void start() {
    slot_->attach(weak_from_this());
    state_.metrics().on_stream_opened();
    opened_ = true;
    write_head();
  }

  ~InboxStreamSession() override {
    if (opened_) state_.metrics().on_stream_closed();
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
  void write_head() {
    head_.result(bhttp::status::ok);
    head_.version(request_.version);
    head_.set(bhttp::field::content_type, "text/event-stream; charset=utf-8");
    head_.set(bhttp::field::cache_control, "no-store");
    head_.set("X-Accel-Buffering", "no");
    head_.set("X-Request-Id", request_.request_id);
    head_.keep_alive(true);
    head_.chunked(true);
    serializer_.emplace(head_);
    stream_.expires_after(state_.options().limits.write_timeout);
    writing_ = true;
    bhttp::async_write_header(
        stream_, *serializer_,
        beast::bind_front_handler(&InboxStreamSession::on_head_written, shared_from_this()));
  }

  void on_head_written(beast::error_code ec, std::size_t) {
    writing_ = false;
    if (ec) return close();
    watch_peer();
    arm_heartbeat();
    control_ += fmt::format("retry: {}\n\n", state_.options().stream_retry.count());
    control_ += fmt::format(": inbox of user {} after item {}\n\n", user_id_, last_id_);
    // Subscribed before the first read, so that nothing written after it is missed.
    if (InboxWatcher* watcher = state_.inbox_watcher(); watcher != nullptr) {
      std::weak_ptr<InboxStreamSession> weak = weak_from_this();
      subscription_ = watcher->subscribe([weak] {
        if (auto self = weak.lock()) {
          net::post(self->stream_.get_executor(), [self] {
            self->stale_ = true;
            self->pump();
          });
        }
      });
    }
    stale_ = true;
    pump();
  }

  void read_store() {
    reading_ = true;
    stale_ = false;
    net::post(state_.blocking(), [self = shared_from_this(), after = last_id_] {
      auto page =
          self->state_.services().notifications->inbox_after(self->user_id_, after, read_page);
      net::post(self->stream_.get_executor(),
                [self, page = std::move(page)]() mutable { self->on_page(std::move(page)); });
    });
  }

  void on_page(std::expected<std::vector<notify::InboxItem>, Error> page) {
    reading_ = false;
    if (closed_) return;
    if (!page) {
      spdlog::error("inbox stream {}: reading user {}'s inbox after item {} failed: {}",
                    request_.request_id, user_id_, last_id_, page.error().message);
      ending_ = true;
      return pump();
    }
    for (const notify::InboxItem& item : *page) {
      if (item.id <= last_id_) continue;
      out_pending_ += item_frame(item);
      last_id_ = item.id;
    }
    // A full page: more may follow at once.
    if (page->size() == read_page) stale_ = true;
    pump();
  }

  void pump() {
    if (closed_ || writing_) return;
    if (!control_.empty() || !out_pending_.empty()) return write_chunk();
    if (ending_) return write_last_chunk();
    if (stale_ && !reading_) read_store();
  }

  void write_chunk() {
    out_ = std::move(control_);
    out_ += out_pending_;
    control_.clear();
    out_pending_.clear();
    writing_ = true;
    last_write_ = std::chrono::steady_clock::now();
    stream_.expires_after(state_.options().limits.write_timeout);
    net::async_write(
        stream_, bhttp::make_chunk(net::buffer(out_)),
        beast::bind_front_handler(&InboxStreamSession::on_written, shared_from_this()));
  }

  void on_written(beast::error_code ec, std::size_t) {
    writing_ = false;
    out_.clear();
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

  // As the event stream: a read completes only when the client closes (or misbehaves).
  void watch_peer() {
    stream_.socket().async_read_some(
        net::buffer(peer_byte_),
        [self = shared_from_this()](beast::error_code, std::size_t) { self->close(); });
  }

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
    subscription_.reset();
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
  std::int64_t user_id_;
  /// The last item id written (or the id the stream resumed after).
  std::int64_t last_id_;
  net::steady_timer heartbeat_;
  bhttp::response<bhttp::empty_body> head_;
  std::optional<bhttp::response_serializer<bhttp::empty_body>> serializer_;
  std::unique_ptr<InboxWatcher::Subscription> subscription_;

  // The strand's alone.
  std::string control_;
  std::string out_pending_;
  std::string out_;
  std::array<char, 1> peer_byte_{};
  std::chrono::steady_clock::time_point last_write_ = std::chrono::steady_clock::now();
  bool stale_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool ending_ = false;
  bool closed_ = false;
  bool opened_ = false;
};

}  // namespace

void start_inbox_stream(ServerState& state, beast::tcp_stream stream,
                        std::unique_ptr<ConnectionSlot> slot, StreamRequest request) {
  stream.expires_never();
  auto session = std::make_shared<InboxStreamSession>(state, std::move(stream), std::move(slot),
                                                      std::move(request));
  session->start();
}

}  // namespace herald::http::detail
