#include "notify/target_guard.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstring>
#include <memory>

#include "notify/curl_http.hpp"

namespace herald::notify::detail {
namespace {

bool forbidden_v4(std::uint32_t host_order) {
  const auto in = [&](std::uint32_t network, int prefix) {
    const std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
    return (host_order & mask) == (network & mask);
  };
  return in(0x00000000, 8)      // 0.0.0.0/8, "this network" (0.0.0.0 reaches the host itself)
         || in(0x0A000000, 8)   // 10/8, RFC 1918
         || in(0x64400000, 10)  // 100.64/10, shared address space (RFC 6598, CGNAT)
         || in(0x7F000000, 8)   // 127/8, loopback
         || in(0xA9FE0000, 16)  // 169.254/16, link-local (cloud metadata lives here)
         || in(0xAC100000, 12)  // 172.16/12, RFC 1918
         || in(0xC0000000, 24)  // 192.0.0/24, IETF protocol assignments
         || in(0xC0A80000, 16)  // 192.168/16, RFC 1918
         || in(0xC6120000, 15)  // 198.18/15, benchmarking
         || in(0xE0000000, 4)   // 224/4, multicast
         || in(0xF0000000, 4);  // 240/4, reserved and 255.255.255.255 broadcast
}

std::uint32_t v4_at(const unsigned char* bytes) {
  return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
         (std::uint32_t{bytes[2]} << 8) | std::uint32_t{bytes[3]};
}

bool forbidden_v6(const unsigned char* b) {
  static constexpr std::array<unsigned char, 16> zero{};
  // ::/128 (unspecified) and ::1/128 (loopback).
  if (std::memcmp(b, zero.data(), 15) == 0 && (b[15] == 0 || b[15] == 1)) return true;
  // ::ffff:a.b.c.d (IPv4-mapped), ::a.b.c.d (IPv4-compatible, deprecated) and
  // ::ffff:0:a.b.c.d (IPv4-translated): judge the embedded IPv4 address.
  if (std::memcmp(b, zero.data(), 10) == 0 && b[10] == 0xff && b[11] == 0xff) {
    return forbidden_v4(v4_at(b + 12));
  }
  if (std::memcmp(b, zero.data(), 12) == 0) return forbidden_v4(v4_at(b + 12));
  if (std::memcmp(b, zero.data(), 8) == 0 && b[8] == 0xff && b[9] == 0xff && b[10] == 0 &&
      b[11] == 0) {
    return forbidden_v4(v4_at(b + 12));
  }
  // 64:ff9b::/96, NAT64: the embedded IPv4 address is what gets reached.
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b &&
      std::memcmp(b + 4, zero.data(), 8) == 0) {
    return forbidden_v4(v4_at(b + 12));
  }
  if ((b[0] & 0xfe) == 0xfc) return true;                  // fc00::/7, unique local
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return true;  // fe80::/10, link-local
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return true;  // fec0::/10, old site-local
  if (b[0] == 0xff) return true;                           // ff00::/8, multicast
  return false;
}

struct CurlUrlDeleter {
  void operator()(CURLU* url) const noexcept { curl_url_cleanup(url); }
};
struct CurlStringDeleter {
  void operator()(char* text) const noexcept { curl_free(text); }
};
using CurlString = std::unique_ptr<char, CurlStringDeleter>;

CurlString url_part(CURLU* url, CURLUPart part, unsigned flags = 0) {
  char* text = nullptr;
  if (curl_url_get(url, part, &text, flags) != CURLUE_OK) return CurlString(nullptr);
  return CurlString(text);
}

struct AddrinfoDeleter {
  void operator()(addrinfo* list) const noexcept { freeaddrinfo(list); }
};

std::string address_text(const sockaddr* address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, text, sizeof text);
  } else if (address->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, text,
              sizeof text);
  }
  return text;
}

}  // namespace

bool is_forbidden_address(std::string_view address) {
  const std::string text(address);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) return forbidden_v4(ntohl(v4.s_addr));
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) return forbidden_v6(v6.s6_addr);
  return true;
}

bool is_allowed_socket_address(const void* sockaddr_bytes, std::size_t length) {
  sockaddr_storage storage{};
  if (length > sizeof storage || length < sizeof(sa_family_t)) return false;
  std::memcpy(&storage, sockaddr_bytes, length);
  if (storage.ss_family == AF_INET && length >= sizeof(sockaddr_in)) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(storage);
    return !forbidden_v4(ntohl(v4.sin_addr.s_addr));
  }
  if (storage.ss_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(storage);
    return !forbidden_v6(v6.sin6_addr.s6_addr);
  }
  return false;
}

std::expected<CheckedTarget, Error> check_target(std::string_view url, bool allow_private) {
  ensure_curl_initialized();
  // libcurl's own parser decides the host, so the check and the request cannot disagree on it.
  std::unique_ptr<CURLU, CurlUrlDeleter> parsed(curl_url());
  const std::string url_text(url);
  if (!parsed || url_text.size() > 2048 ||
      curl_url_set(parsed.get(), CURLUPART_URL, url_text.c_str(), 0) != CURLUE_OK) {
    return std::unexpected(Error::for_field(ErrorCode::invalid_argument, "url",
                                            "expected an absolute http or https URL"));
  }
  const CurlString scheme = url_part(parsed.get(), CURLUPART_SCHEME);
  if (!scheme ||
      (std::strcmp(scheme.get(), "http") != 0 && std::strcmp(scheme.get(), "https") != 0)) {
    return std::unexpected(
        Error::for_field(ErrorCode::invalid_argument, "url", "expected the scheme http or https"));
  }
  const CurlString host_part = url_part(parsed.get(), CURLUPART_HOST);
  const CurlString port_part = url_part(parsed.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
  if (!host_part || host_part.get()[0] == '\0' || !port_part) {
    return std::unexpected(Error::for_field(ErrorCode::invalid_argument, "url", "expected a host"));
  }
  CheckedTarget target;
  target.host = host_part.get();
  target.port = static_cast<std::uint16_t>(std::atoi(port_part.get()));
  if (allow_private) return target;

  std::string lookup = target.host;
  const bool literal_v6 = lookup.size() > 2 && lookup.front() == '[' && lookup.back() == ']';
  if (literal_v6) lookup = lookup.substr(1, lookup.size() - 2);
  // A zone index ("fe80::1%eth0") only ever names a local interface.
  if (lookup.find('%') != std::string::npos) {
    return std::unexpected(Error::for_field(
        ErrorCode::conflict, "url",
        "the target host '" + target.host + "' is a link-local address, which is not allowed"));
  }

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* raw = nullptr;
  if (const int rc = getaddrinfo(lookup.c_str(), nullptr, &hints, &raw); rc != 0) {
    return std::unexpected(
        Error::for_field(ErrorCode::unavailable, "url",
                         "the host '" + target.host + "' does not resolve: " + gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, AddrinfoDeleter> list(raw);
  std::string pinned;
  for (const addrinfo* entry = list.get(); entry != nullptr; entry = entry->ai_next) {
    const std::string address = address_text(entry->ai_addr);
    if (address.empty()) continue;
    if (is_forbidden_address(address)) {
      return std::unexpected(Error::for_field(
          ErrorCode::conflict, "url",
          "the target host '" + target.host + "' resolves to " + address +
              ", a loopback, private or link-local address, which is not allowed"));
    }
    if (!pinned.empty()) pinned += ',';
    pinned += entry->ai_family == AF_INET6 ? "[" + address + "]" : address;
  }
  if (pinned.empty()) {
    return std::unexpected(Error::for_field(ErrorCode::unavailable, "url",
                                            "the host '" + target.host + "' has no address"));
  }
  if (!literal_v6) {
    target.resolve.push_back(target.host + ":" + std::to_string(target.port) + ":" + pinned);
  }
  return target;
}

}  // namespace herald::notify::detail
