#include "herald/api_tokens.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace herald {
namespace {

TEST(Scopes, ParseReadsACommaSeparatedListInAnyOrderWithSpacesAndRepeats) {
  auto scopes = parse_scopes("read, ingest,read");
  ASSERT_TRUE(scopes) << scopes.error().message;
  EXPECT_EQ(*scopes, Scope::ingest | Scope::read);
  EXPECT_TRUE(scopes->contains(Scope::read));
  EXPECT_FALSE(scopes->contains(Scope::admin));
  EXPECT_EQ(parse_scopes("ingest,read,audit,admin").value().bits(), 0x0F);
  EXPECT_EQ(parse_scopes("notify").value(), Scopes(Scope::notify));
  EXPECT_FALSE(parse_scopes("notify").value().contains(Scope::admin));
  // Bits beyond the known scopes are dropped.
  EXPECT_EQ(Scopes::from_bits(0xFFU).bits(), 0x1F);
}

TEST(Scopes, FormatListsTheScopesInTheirFixedOrderAndParseReadsItBack) {
  const Scopes all = Scope::admin | Scope::audit | Scope::read | Scope::ingest | Scope::notify;
  EXPECT_EQ(format_scopes(all), "ingest,read,audit,admin,notify");
  EXPECT_EQ(format_scopes(Scope::audit | Scope::ingest), "ingest,audit");
  EXPECT_EQ(format_scopes(Scope::notify | Scope::read), "read,notify");
  EXPECT_EQ(format_scopes(Scopes{}), "");
  for (unsigned bits = 1; bits < 32; ++bits) {
    const Scopes scopes = Scopes::from_bits(bits);
    EXPECT_EQ(parse_scopes(format_scopes(scopes)).value(), scopes) << bits;
  }
}

TEST(Scopes, ParseRefusesAnUnknownScopeNamingIt) {
  auto scopes = parse_scopes("read,write");
  ASSERT_FALSE(scopes);
  EXPECT_EQ(scopes.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(scopes.error().field, "scopes");
  EXPECT_NE(scopes.error().message.find("unknown scope 'write'"), std::string::npos)
      << scopes.error().message;
  EXPECT_NE(scopes.error().message.find("ingest, read, audit, admin or notify"), std::string::npos);
  // Names are case-sensitive, as they are printed.
  EXPECT_FALSE(parse_scopes("READ"));
}

TEST(Scopes, ParseRefusesAnEmptyListAndEmptyNames) {
  for (const char* text : {"", "  ", ",", "read,", ",read", "read,,ingest"}) {
    auto scopes = parse_scopes(text);
    ASSERT_FALSE(scopes) << "accepted '" << text << "'";
    EXPECT_EQ(scopes.error().field, "scopes");
  }
}

TEST(Scopes, ParseQuotesHostileInputCutAndWithoutControlCharacters) {
  const std::string hostile = "read,\x1b[31mevil\nline" + std::string(500, 'x');
  auto scopes = parse_scopes(hostile);
  ASSERT_FALSE(scopes);
  EXPECT_EQ(scopes.error().message.find('\n'), std::string::npos);
  EXPECT_EQ(scopes.error().message.find('\x1b'), std::string::npos);
  EXPECT_LT(scopes.error().message.size(), 200U);
}

TEST(ApiTokenGeneration, TokensHaveThePrefixAndFortyThreeBase64UrlCharacters) {
  const std::string token = generate_api_token().value();
  EXPECT_EQ(token.size(), api_token_length);
  EXPECT_TRUE(token.starts_with("hrld_"));
  EXPECT_EQ(token.find_first_not_of(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 5),
            std::string::npos)
      << token;
  EXPECT_TRUE(is_well_formed_api_token(token));
}

TEST(ApiTokenGeneration, TokensDoNotRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(generate_api_token().value());
  EXPECT_EQ(seen.size(), 1000U);
}

TEST(ApiTokenGeneration, WellFormedRefusesWrongPrefixLengthAlphabetAndPadding) {
  const std::string token = generate_api_token().value();
  EXPECT_FALSE(is_well_formed_api_token(""));
  EXPECT_FALSE(is_well_formed_api_token("hrld_"));
  EXPECT_FALSE(is_well_formed_api_token("xxxx_" + token.substr(5)));
  EXPECT_FALSE(is_well_formed_api_token(token + "A"));
  EXPECT_FALSE(is_well_formed_api_token(token.substr(0, token.size() - 1)));
  EXPECT_FALSE(is_well_formed_api_token(token.substr(0, token.size() - 1) + "="));
  EXPECT_FALSE(is_well_formed_api_token(token.substr(0, 10) + "+" + token.substr(11)));
  EXPECT_FALSE(
      is_well_formed_api_token(token.substr(0, 10) + std::string(1, '\0') + token.substr(11)));
  // 'B' sets a bit that 32 bytes cannot: no generated token ends in it.
  EXPECT_FALSE(is_well_formed_api_token(token.substr(0, token.size() - 1) + "B"));
  EXPECT_TRUE(is_well_formed_api_token(token.substr(0, token.size() - 1) + "E"));
  EXPECT_FALSE(is_well_formed_api_token(std::string(1 << 20, 'a')));
}

TEST(ApiTokenHash, IsTheSha256InLowerCaseHex) {
  // FIPS 180-2 test vector.
  EXPECT_EQ(api_token_sha256("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(check_api_token_sha256(api_token_sha256("hrld_x")));
}

TEST(ApiTokenHash, CheckRefusesWhatIsNotSixtyFourLowerCaseHexDigits) {
  for (const std::string& bad : {std::string(), std::string(63, 'a'), std::string(65, 'a'),
                                 std::string(64, 'A'), std::string(64, 'g')}) {
    auto checked = check_api_token_sha256(bad);
    ASSERT_FALSE(checked) << bad;
    EXPECT_EQ(checked.error().field, "token_sha256");
  }
}

TEST(ApiTokenName, AcceptsOneToSixtyFourLettersDigitsDotsUnderscoresAndHyphens) {
  for (const std::string& name :
       {std::string("a"), std::string("ingest-bot_2.prod"), std::string(64, 'Z')}) {
    EXPECT_TRUE(check_api_token_name(name)) << name;
  }
}

TEST(ApiTokenName, RefusesEmptyLongAndOtherCharactersNamingTheProblem) {
  auto empty = check_api_token_name("");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().field, "name");
  EXPECT_NE(empty.error().message.find("got ''"), std::string::npos);

  auto long_name = check_api_token_name(std::string(65, 'a'));
  ASSERT_FALSE(long_name);
  EXPECT_NE(long_name.error().message.find("65 characters long"), std::string::npos);

  for (const std::string& bad : {std::string("a b"), std::string("a/b"), std::string("é"),
                                 std::string("a\nb"), std::string("a\0b", 3)}) {
    auto checked = check_api_token_name(bad);
    ASSERT_FALSE(checked) << bad;
    EXPECT_EQ(checked.error().code, ErrorCode::invalid_argument);
    EXPECT_EQ(checked.error().message.find('\n'), std::string::npos);
  }
}

}  // namespace
}  // namespace herald
