#include "herald/event.hpp"

#include <gtest/gtest.h>

#include <type_traits>

#include "herald/event_bus.hpp"
#include "herald/event_type.hpp"
#include "test_events.hpp"

namespace herald {
namespace {

using test::ThingCreatedEvent;
using test::ThingRenamedEvent;
using test::TickEvent;

TEST(Event, MakeFillsIdTimestampAndTheTypesDefaultPriority) {
  const Timestamp before = now();
  const auto event = make<ThingRenamedEvent>({.entity_id = 7, .user_id = 1, .organization_id = 2},
                                             {.changed_fields = {"name"}});
  EXPECT_EQ(event.event_id.version(), 7);
  EXPECT_GE(event.timestamp, before);
  EXPECT_LE(event.timestamp, now());
  EXPECT_EQ(event.priority, Priority::high);
  EXPECT_EQ(event.user_id, 1);
  EXPECT_EQ(event.organization_id, 2);
  EXPECT_EQ(event.entity_id, EntityId{std::int64_t{7}});
  EXPECT_EQ(event.changed_fields, std::vector<std::string>{"name"});
  EXPECT_TRUE(event.metadata.empty());
}

TEST(Event, MakeKeepsAnExplicitIdTimestampAndPriority) {
  const EventId id = EventId::generate();
  const Timestamp t = now() - std::chrono::hours(1);
  const auto event =
      make<ThingCreatedEvent>({.priority = Priority::critical, .event_id = id, .timestamp = t});
  EXPECT_EQ(event.event_id, id);
  EXPECT_EQ(event.timestamp, t);
  EXPECT_EQ(event.priority, Priority::critical);
}

TEST(Event, EveryEventGetsItsOwnId) {
  const ThingCreatedEvent a{};
  const ThingCreatedEvent b{};
  EXPECT_NE(a.event_id, b.event_id);
  EXPECT_LT(a.event_id, b.event_id);
}

TEST(Event, EntityIdMayBeAString) {
  const auto event = make<ThingCreatedEvent>({.entity_id = "bold-rush-1234"});
  ASSERT_TRUE(event.entity_id.has_value());
  EXPECT_EQ(to_string(*event.entity_id), "bold-rush-1234");
}

TEST(Event, TypeNameIsTheClassName) {
  EXPECT_EQ(type_of<ThingCreatedEvent>().name(), "ThingCreatedEvent");
  EXPECT_EQ(EventRef(ThingRenamedEvent{}).event_type(), "ThingRenamedEvent");
  EXPECT_EQ(type_of<ThingCreatedEvent>().entity_type(), "Thing");
  EXPECT_TRUE(type_of<ThingCreatedEvent>().is_entity_event());
  EXPECT_FALSE(type_of<TickEvent>().is_entity_event());
}

TEST(Event, ToStringShowsTypeShortIdActorAndOrganization) {
  const auto event =
      make<ThingCreatedEvent>({.entity_id = 9, .user_id = 456, .organization_id = 789});
  EXPECT_EQ(
      EventRef(event).to_string(),
      "ThingCreatedEvent(id=" + event.event_id.to_string().substr(0, 8) + ", user=456, org=789)");
  const auto system = make<ThingCreatedEvent>({.user_id = system_actor});
  EXPECT_EQ(EventRef(system).to_string(),
            "ThingCreatedEvent(id=" + system.event_id.short_string() + ", user=system, org=none)");
}

TEST(Event, HandlersReceiveImmutableEvents) {
  // A handler's parameter is `const E&`, and queued events are shared as `const`: no field can
  // be assigned through either.
  static_assert(!std::is_assignable_v<decltype((std::declval<const ThingCreatedEvent&>().size)),
                                      std::int64_t>);
  static_assert(std::is_same_v<decltype(EventPtr().shared<ThingCreatedEvent>()),
                               std::shared_ptr<const ThingCreatedEvent>>);
  static_assert(
      std::is_const_v<std::remove_reference_t<decltype(*EventRef(TickEvent{}).get<TickEvent>())>>);
  EventBus bus;
  bool saw_const = false;
  auto sub = bus.on<ThingCreatedEvent>([&](const ThingCreatedEvent& e) {
    saw_const = std::is_const_v<std::remove_reference_t<decltype(e)>>;
  });
  bus.emit(ThingCreatedEvent{});
  EXPECT_TRUE(saw_const);
}

TEST(Event, RefGivesTheConcreteTypeOnlyToItsOwnType) {
  const auto event = make<ThingCreatedEvent>({}, {.size = 3});
  const EventRef ref(event);
  ASSERT_NE(ref.get<ThingCreatedEvent>(), nullptr);
  EXPECT_EQ(ref.get<ThingCreatedEvent>()->size, 3);
  EXPECT_EQ(ref.get<ThingRenamedEvent>(), nullptr);
  EXPECT_EQ(ref.entity(), static_cast<const EntityEvent*>(&event));
  EXPECT_EQ(EventRef(TickEvent{}).entity(), nullptr);
}

TEST(Event, PtrSharesTheEventAndItsType) {
  const EventPtr ptr = EventPtr::make(make<ThingCreatedEvent>({.user_id = 5}, {.label = "x"}));
  ASSERT_TRUE(ptr);
  EXPECT_EQ(ptr.event_type(), "ThingCreatedEvent");
  EXPECT_EQ(ptr->user_id, 5);
  const auto typed = ptr.shared<ThingCreatedEvent>();
  ASSERT_NE(typed, nullptr);
  EXPECT_EQ(typed->label, "x");
  EXPECT_EQ(ptr.shared<ThingRenamedEvent>(), nullptr);
}

TEST(Event, FieldsListCommonFieldsThenOwnFields) {
  const auto fields = type_of<ThingCreatedEvent>().fields();
  std::vector<std::string> names;
  for (const auto& f : fields) names.emplace_back(f.name);
  EXPECT_EQ(names, (std::vector<std::string>{"event_id", "timestamp", "user_id", "organization_id",
                                             "priority", "metadata", "entity_id", "entity_data",
                                             "size", "label"}));
  EXPECT_TRUE(fields[0].common);
  EXPECT_FALSE(fields[8].common);
  EXPECT_EQ(fields[8].type_name, "integer");
  EXPECT_TRUE(fields[8].nullable);
  EXPECT_EQ(fields[6].type_name, "integer|string");
}

TEST(Event, TrailingUnderscoreIsDroppedFromTheWireName) {
  const auto fields = type_of<ThingRenamedEvent>().fields();
  EXPECT_EQ(fields.back().name, "namespace");
}

TEST(Priority, HasTheNamedLevels) {
  EXPECT_EQ(static_cast<int>(Priority::critical), 100);
  EXPECT_EQ(static_cast<int>(Priority::high), 75);
  EXPECT_EQ(static_cast<int>(Priority::normal), 50);
  EXPECT_EQ(static_cast<int>(Priority::low), 25);
  EXPECT_EQ(to_string(Priority::high), "HIGH");
  EXPECT_EQ(to_string(Priority{60}), "60");
  EXPECT_EQ(parse_priority("critical"), Priority::critical);
  EXPECT_EQ(parse_priority("60"), Priority{60});
  EXPECT_EQ(parse_priority("urgent"), std::nullopt);
  EXPECT_EQ(parse_priority(""), std::nullopt);
}

}  // namespace
}  // namespace herald
