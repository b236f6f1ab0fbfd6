#include "herald/recorder.hpp"

#include <cstdio>
#include <string>
#include <utility>

namespace herald {

Recorder::Recorder(EventStore& store, EventBus& bus, RecorderOptions options)
    : store_(store), bus_(bus), options_(std::move(options)) {
  if (!options_.on_publish_error) {
    options_.on_publish_error = [](EventRef event, const Error& error) {
      std::fprintf(stderr, "herald: %s is stored but was not published: %s\n",
                   event.to_string().c_str(), error.message.c_str());
    };
  }
}

void Recorder::dispatch(const EventPtr& event) {
  if (options_.dispatch == RecordDispatch::emit) {
    if (bus_.emit(event.ref()).dropped) {
      options_.on_publish_error(
          event.ref(), Error{ErrorCode::unavailable, "bus '" + bus_.name() + "' is disabled", {}});
    }
    return;
  }
  if (auto published = bus_.publish(event); !published) {
    options_.on_publish_error(event.ref(), published.error());
  }
}

std::expected<std::int64_t, Error> Recorder::record(EventPtr event) {
  auto appended = store_.append(event.ref());
  if (!appended) return std::unexpected(std::move(appended.error()));
  if (appended->inserted) dispatch(event);
  return appended->position;
}

std::expected<std::vector<std::int64_t>, Error> Recorder::record_batch(
    std::span<const EventPtr> events) {
  std::vector<EventRef> refs;
  refs.reserve(events.size());
  for (const EventPtr& event : events) refs.push_back(event.ref());
  auto appended = store_.append_batch(refs);
  if (!appended) return std::unexpected(std::move(appended.error()));
  std::vector<std::int64_t> positions;
  positions.reserve(appended->size());
  for (std::size_t i = 0; i < appended->size(); ++i) {
    positions.push_back((*appended)[i].position);
    if ((*appended)[i].inserted) dispatch(events[i]);
  }
  return positions;
}

}  // namespace herald
