#include "herald/recorder.hpp"

#include <cstdio>
#include <string>
#include <utility>

namespace herald {

namespace {

RecorderOptions with_defaults(RecorderOptions options) {
  if (!options.on_publish_error) {
    options.on_publish_error = [](EventRef event, const Error& error) {
      std::fprintf(stderr, "herald: %s is stored but was not published: %s\n",
                   event.to_string().c_str(), error.message.c_str());
    };
  }
  return options;
}

}  // namespace

Recorder::Recorder(EventStore& store, EventBus& bus, RecorderOptions options)
    : store_(store),
      target_(std::make_shared<const Target>(Target{bus, with_defaults(std::move(options))})) {}

void Recorder::dispatch(const Target& target, const EventPtr& event) {
  if (target.options.dispatch == RecordDispatch::emit) {
    if (target.bus.emit(event.ref()).dropped) {
      target.options.on_publish_error(
          event.ref(),
          Error{ErrorCode::unavailable, "bus '" + target.bus.name() + "' is disabled", {}});
    }
    return;
  }
  if (auto published = target.bus.publish(event); !published) {
    target.options.on_publish_error(event.ref(), published.error());
  }
}

std::expected<std::int64_t, Error> Recorder::record(EventPtr event) {
  auto appended = store_.append(event.ref());
  if (!appended) return std::unexpected(std::move(appended.error()));
  if (appended->inserted) dispatch(*target_, event);
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
    if ((*appended)[i].inserted) dispatch(*target_, events[i]);
  }
  return positions;
}

void Recorder::record_async(EventPtr event, RecordCallback done) {
  EventPtr stored = event;
  store_.append_async(std::move(event),
                      [target = target_, event = std::move(stored), done = std::move(done)](
                          std::expected<AppendResult, Error> appended) mutable {
                        if (!appended) {
                          done(std::unexpected(std::move(appended.error())));
                          return;
                        }
                        if (appended->inserted) dispatch(*target, event);
                        done(appended->position);
                      });
}

}  // namespace herald
