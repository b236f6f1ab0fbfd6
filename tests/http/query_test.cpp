#include "herald/http/query.hpp"

#include <gtest/gtest.h>

#include "herald/domain/catalog.hpp"
#include "herald/http/ingest.hpp"
#include "herald/http/rate_limiter.hpp"

namespace herald::http {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

TEST(ParseTarget, SplitsAndDecodesSegmentsAndParameters) {
  auto target = parse_target("/api/v1/events/a%20b?type=X&entity_id=%E2%9C%93&flag");
  ASSERT_TRUE(target);
  EXPECT_EQ(target->segments, (std::vector<std::string>{"api", "v1", "events", "a b"}));
  ASSERT_EQ(target->params.size(), 3u);
  EXPECT_EQ(target->params[1].second, "\xE2\x9C\x93");
  EXPECT_EQ(target->params[2].first, "flag");
  EXPECT_EQ(target->params[2].second, "");
}

TEST(ParseTarget, KeepsAPlusSignAsIs) {
  auto target = parse_target("/x?since=2026-01-01T10:00:00+01:00");
  ASSERT_TRUE(target);
  EXPECT_EQ(target->params[0].second, "2026-01-01T10:00:00+01:00");
}

TEST(ParseTarget, RefusesTraversalAndMalformedEscapes) {
  for (const char* bad : {"/a/../b", "/a/%2e%2e/b", "/a/./b", "/a/%2F", "/a//b", "/a%zz", "/a%4",
                          "relative", "/a?x=%C3%28", "/a?x=%00", "/a#frag"}) {
    auto target = parse_target(bad);
    ASSERT_FALSE(target) << bad;
    EXPECT_EQ(target.error().status, boost::beast::http::status::bad_request) << bad;
  }
  EXPECT_FALSE(parse_target("/" + std::string(9000, 'a')));
}

TEST(QueryParams, NamesTheUnknownParameter) {
  QueryParams params(Pairs{{"limit", "5"}, {"colour", "red"}});
  ASSERT_TRUE(params.take_integer("limit", 1, 10));
  auto unknown = params.reject_unknown();
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().field, "colour");
  EXPECT_EQ(unknown.error().message, "unknown query parameter 'colour'");
}

TEST(QueryParams, IntegersAreCheckedAgainstTheirRange) {
  for (const char* bad : {"-1", "1001", "1e3", "", " 5", "5 ", "0x10", "99999999999999999999"}) {
    QueryParams params(Pairs{{"limit", bad}});
    auto value = params.take_integer("limit", 1, 1000);
    ASSERT_FALSE(value) << bad;
    EXPECT_EQ(value.error().field, "limit");
  }
}

TEST(EventQuery, ReadsEveryFilter) {
  QueryParams params(Pairs{{"type", "UserCreatedEvent"},
                           {"type", "UserUpdatedEvent"},
                           {"organization", "7"},
                           {"entity_type", "User"},
                           {"entity_id", "42"},
                           {"since", "2026-01-01T00:00:00Z"},
                           {"until", "2026-02-01T00:00:00Z"},
                           {"after", "10"},
                           {"limit", "50"}});
  auto query = take_event_query(params, domain::platform_catalog(), true);
  ASSERT_TRUE(query) << query.error().message;
  EXPECT_EQ(query->filter.types.size(), 2u);
  EXPECT_EQ(query->filter.organization_id, 7);
  EXPECT_EQ(query->filter.entity_id, "42");
  EXPECT_EQ(query->after, 10);
  EXPECT_EQ(query->limit, 50u);
  EXPECT_TRUE(params.reject_unknown());
}

TEST(IngestBody, DecodesOneEventOrABatch) {
  const std::string one =
      R"({"event_type":"UserCreatedEvent","entity_type":"User","entity_id":5,"user_id":5})";
  auto single = decode_ingest_body(one, domain::platform_catalog());
  ASSERT_TRUE(single) << single.error().message;
  EXPECT_FALSE(single->batch);
  ASSERT_EQ(single->events.size(), 1u);
  auto batch = decode_ingest_body("[" + one + "," + one + "]", domain::platform_catalog());
  ASSERT_TRUE(batch);
  EXPECT_TRUE(batch->batch);
  EXPECT_EQ(batch->events.size(), 2u);
}

TEST(IngestBody, ErrorsNameTheEventAndField) {
  auto bad = decode_ingest_body(
      R"([{"event_type":"UserCreatedEvent","entity_id":5},{"event_type":"UserCreatedEvent","entity_id":[]}])",
      domain::platform_catalog());
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "invalid_event");
  EXPECT_EQ(bad.error().field, "events[1].entity_id");
  EXPECT_TRUE(bad.error().message.starts_with("events[1]: field 'entity_id'"))
      << bad.error().message;
  auto scalar = decode_ingest_body("42", domain::platform_catalog());
  ASSERT_FALSE(scalar);
  EXPECT_EQ(scalar.error().code, "invalid_json");
  auto too_many = decode_ingest_body("[{},{},{}]", domain::platform_catalog(), 2);
  ASSERT_FALSE(too_many);
  EXPECT_EQ(too_many.error().status, boost::beast::http::status::payload_too_large);
}

TEST(RateLimiter, AllowsTheBurstThenRefillsAtTheRate) {
  RateLimiter limiter(10, 3);
  const auto t0 = RateLimiter::Clock::now();
  EXPECT_FALSE(limiter.acquire(1, t0));
  EXPECT_FALSE(limiter.acquire(1, t0));
  EXPECT_FALSE(limiter.acquire(1, t0));
  auto wait = limiter.acquire(1, t0);
  ASSERT_TRUE(wait);
  EXPECT_EQ(wait->count(), 100);
  EXPECT_FALSE(limiter.acquire(2, t0)) << "each key has its own bucket";
  EXPECT_FALSE(limiter.acquire(1, t0 + std::chrono::milliseconds(100)));
  EXPECT_TRUE(limiter.acquire(1, t0 + std::chrono::milliseconds(100)));
}

}  // namespace
}  // namespace herald::http
