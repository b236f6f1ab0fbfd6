#include "notify/target_guard.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

namespace herald::notify::detail {
namespace {

TEST(TargetGuard, RefusesLoopbackPrivateSharedAndLinkLocalIpv4) {
  for (const char* address : {"127.0.0.1", "127.255.0.9", "10.0.0.1", "172.16.0.1",
                              "172.31.255.255", "192.168.1.1", "100.64.0.1", "100.127.255.255",
                              "169.254.169.254", "0.0.0.0", "255.255.255.255", "224.0.0.1"}) {
    EXPECT_TRUE(is_forbidden_address(address)) << address;
  }
}

TEST(TargetGuard, AllowsPublicIpv4IncludingNeighboursOfPrivateRanges) {
  for (const char* address : {"93.184.216.34", "8.8.8.8", "172.32.0.1", "172.15.255.255",
                              "100.128.0.1", "100.63.255.255", "192.169.0.1", "169.255.0.1"}) {
    EXPECT_FALSE(is_forbidden_address(address)) << address;
  }
}

TEST(TargetGuard, RefusesIpv6LoopbackUniqueLocalLinkLocalAndMappedPrivateIpv4) {
  for (const char* address :
       {"::1", "::", "fe80::1", "febf::1", "fc00::1", "fd12:3456::1", "::ffff:127.0.0.1",
        "::ffff:10.1.2.3", "::ffff:169.254.169.254", "::127.0.0.1", "64:ff9b::7f00:1", "ff02::1"}) {
    EXPECT_TRUE(is_forbidden_address(address)) << address;
  }
}

TEST(TargetGuard, AllowsPublicIpv6AndMappedPublicIpv4) {
  for (const char* address :
       {"2606:2800:220:1:248:1893:25c8:1946", "2001:4860:4860::8888", "::ffff:93.184.216.34"}) {
    EXPECT_FALSE(is_forbidden_address(address)) << address;
  }
}

TEST(TargetGuard, TreatsUnparsableAddressesAsForbidden) {
  EXPECT_TRUE(is_forbidden_address(""));
  EXPECT_TRUE(is_forbidden_address("localhost"));
  EXPECT_TRUE(is_forbidden_address("1.2.3"));
}

TEST(TargetGuard, ChecksSocketAddressesAsTheConnectionSeesThem) {
  sockaddr_in loopback{};
  loopback.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &loopback.sin_addr);
  EXPECT_FALSE(is_allowed_socket_address(&loopback, sizeof loopback));
  sockaddr_in pub{};
  pub.sin_family = AF_INET;
  inet_pton(AF_INET, "93.184.216.34", &pub.sin_addr);
  EXPECT_TRUE(is_allowed_socket_address(&pub, sizeof pub));
  sockaddr_in6 mapped{};
  mapped.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "::ffff:192.168.0.1", &mapped.sin6_addr);
  EXPECT_FALSE(is_allowed_socket_address(&mapped, sizeof mapped));
  EXPECT_FALSE(is_allowed_socket_address(&pub, 1));
}

TEST(TargetGuard, RefusesUrlsOnLocalhostAndPrivateLiterals) {
  for (const char* url : {"http://localhost:8080/hook", "http://127.0.0.1/", "http://[::1]:80/",
                          "https://[fe80::1]/x", "http://[::ffff:127.0.0.1]/",
                          "http://169.254.169.254/latest/meta-data", "http://0.0.0.0:9/",
                          "http://2130706433/", "http://0x7f.0.0.1/", "http://10.1.1.1/"}) {
    const auto checked = check_target(url, false);
    ASSERT_FALSE(checked.has_value()) << url;
    EXPECT_EQ(checked.error().code, ErrorCode::conflict) << url << ": " << checked.error().message;
    EXPECT_NE(checked.error().message.find("not allowed"), std::string::npos);
  }
}

TEST(TargetGuard, AllowsPrivateTargetsWhenTold) {
  const auto checked = check_target("http://127.0.0.1:8080/hook", true);
  ASSERT_TRUE(checked.has_value()) << checked.error().message;
  EXPECT_EQ(checked->host, "127.0.0.1");
  EXPECT_EQ(checked->port, 8080);
}

TEST(TargetGuard, AllowsAPublicLiteralWithoutPinning) {
  const auto checked = check_target("https://93.184.216.34/hook", false);
  ASSERT_TRUE(checked.has_value()) << checked.error().message;
  EXPECT_EQ(checked->port, 443);
  // A literal needs no resolution: nothing for a second DNS answer to change.
  EXPECT_TRUE(checked->resolve.empty() ||
              checked->resolve.front() == "93.184.216.34:443:93.184.216.34");
}

TEST(TargetGuard, RefusesMalformedUrlsAndOtherSchemes) {
  for (const char* url : {"", "not a url", "ftp://93.184.216.34/", "file:///etc/passwd",
                          "gopher://x/", "http://", "//93.184.216.34/"}) {
    const auto checked = check_target(url, false);
    ASSERT_FALSE(checked.has_value()) << url;
    EXPECT_EQ(checked.error().code, ErrorCode::invalid_argument) << url;
    EXPECT_EQ(checked.error().field, "url");
  }
  const std::string oversized = "http://93.184.216.34/" + std::string(5000, 'a');
  EXPECT_FALSE(check_target(oversized, false).has_value());
}

}  // namespace
}  // namespace herald::notify::detail
