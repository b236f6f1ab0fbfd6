#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <expected>
#include <string>

#include "herald/error.hpp"
#include "herald/notify/notification_store.hpp"

namespace herald::notify {

std::expected<std::string, Error> generate_webhook_secret() {
  // Standard Webhooks ("Signature scheme"): a secret of 24 to 64 random bytes, shown base64
  // encoded after the "whsec_" prefix.
  std::array<unsigned char, 24> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    const unsigned long code = ERR_get_error();
    std::array<char, 256> reason{};
    ERR_error_string_n(code, reason.data(), reason.size());
    return std::unexpected(Error{ErrorCode::internal,
                                 std::string("cannot generate a webhook secret: OpenSSL's random "
                                             "generator failed (") +
                                     reason.data() + ")",
                                 {}});
  }
  // 24 bytes encode to exactly 32 base64 characters, without padding; EVP_EncodeBlock adds a NUL.
  std::array<unsigned char, 33> encoded{};
  const int length = EVP_EncodeBlock(encoded.data(), bytes.data(), static_cast<int>(bytes.size()));
  return "whsec_" + std::string(reinterpret_cast<const char*>(encoded.data()),
                                static_cast<std::size_t>(length));
}

}  // namespace herald::notify
