#include "herald/error.hpp"

#include <gtest/gtest.h>

namespace herald {
namespace {

TEST(Error, ForFieldNamesTheFieldFirst) {
  const Error e = Error::for_field(ErrorCode::invalid_argument, "entity_id",
                                   "expected integer or string, got array");
  EXPECT_EQ(e.message, "field 'entity_id': expected integer or string, got array");
  EXPECT_EQ(e.field, "entity_id");
  EXPECT_EQ(e.code, ErrorCode::invalid_argument);
}

TEST(Error, CodesHaveStableNames) {
  EXPECT_EQ(to_string(ErrorCode::invalid_argument), "invalid_argument");
  EXPECT_EQ(to_string(ErrorCode::too_large), "too_large");
  EXPECT_EQ(to_string(ErrorCode::not_found), "not_found");
  EXPECT_EQ(to_string(ErrorCode::conflict), "conflict");
  EXPECT_EQ(to_string(ErrorCode::unavailable), "unavailable");
  EXPECT_EQ(to_string(ErrorCode::io), "io");
  EXPECT_EQ(to_string(ErrorCode::internal), "internal");
  EXPECT_EQ(to_string(ErrorCode::unauthenticated), "unauthenticated");
}

}  // namespace
}  // namespace herald
