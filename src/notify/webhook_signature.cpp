// Standard Webhooks signatures (https://www.standardwebhooks.com, "Signature scheme"): the
// signed content is "<msg_id>.<timestamp>.<payload>", the key is the secret's bytes after the
// "whsec_" prefix, base64-decoded, and the signature is "v1," + base64(HMAC-SHA256).

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <string>

#include "herald/notify/sender.hpp"
#include "notify/base64.hpp"

namespace herald::notify {
namespace detail {
namespace {

constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int sextet(char c) {
  const auto at = alphabet.find(c);
  return at == std::string_view::npos ? -1 : static_cast<int>(at);
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const auto n = (std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16) |
                   (std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8) |
                   std::uint32_t{static_cast<unsigned char>(bytes[i + 2])};
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += alphabet[n & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const auto n = std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    const auto n = (std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16) |
                   (std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const int a = sextet(text[i]);
    const int b = sextet(text[i + 1]);
    if (a < 0 || b < 0) return std::nullopt;
    const bool pad2 = last && text[i + 2] == '=' && text[i + 3] == '=';
    const bool pad1 = last && !pad2 && text[i + 3] == '=';
    const int c = pad2 ? 0 : sextet(text[i + 2]);
    const int d = pad1 || pad2 ? 0 : sextet(text[i + 3]);
    if (c < 0 || d < 0) return std::nullopt;
    const auto n = (static_cast<std::uint32_t>(a) << 18) | (static_cast<std::uint32_t>(b) << 12) |
                   (static_cast<std::uint32_t>(c) << 6) | static_cast<std::uint32_t>(d);
    out += static_cast<char>((n >> 16) & 0xff);
    if (!pad2) out += static_cast<char>((n >> 8) & 0xff);
    if (!pad1 && !pad2) out += static_cast<char>(n & 0xff);
  }
  return out;
}

}  // namespace detail

std::expected<std::string, Error> webhook_signature(std::string_view secret, std::string_view id,
                                                    std::int64_t timestamp, std::string_view body) {
  constexpr std::string_view prefix = "whsec_";
  if (!secret.starts_with(prefix)) {
    return std::unexpected(Error::for_field(ErrorCode::invalid_argument, "secret",
                                            "expected a secret that starts with \"whsec_\""));
  }
  const auto key = detail::base64_decode(secret.substr(prefix.size()));
  if (!key || key->empty()) {
    return std::unexpected(Error::for_field(ErrorCode::invalid_argument, "secret",
                                            "expected base64 after \"whsec_\""));
  }
  std::string content;
  content.reserve(id.size() + body.size() + 24);
  content.append(id);
  content += '.';
  content += std::to_string(timestamp);
  content += '.';
  content.append(body);
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int mac_length = 0;
  if (HMAC(EVP_sha256(), key->data(), static_cast<int>(key->size()),
           reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac.data(),
           &mac_length) == nullptr) {
    return std::unexpected(Error{ErrorCode::internal, "HMAC-SHA256 failed", "secret"});
  }
  return "v1," + detail::base64_encode(
                     std::string_view(reinterpret_cast<const char*>(mac.data()), mac_length));
}

}  // namespace herald::notify
