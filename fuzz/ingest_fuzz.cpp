// libFuzzer target: the body of POST /api/v1/events, from bytes to stored-ready events.
//
// Beyond not crashing (ASan, UBSan), it checks a property: every event the decoder accepts
// encodes to JSON that decodes again to the same encoding, so what the store keeps is what was
// accepted.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "herald/domain/catalog.hpp"
#include "herald/http/ingest.hpp"
#include "herald/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const herald::EventCatalog& catalog = herald::domain::platform_catalog();
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto decoded = herald::http::decode_ingest_body(body, catalog);
  if (!decoded) {
    // Every refusal is a client error with a message.
    if (decoded.error().message.empty() || static_cast<unsigned>(decoded.error().status) < 400 ||
        static_cast<unsigned>(decoded.error().status) >= 500) {
      std::abort();
    }
    return 0;
  }
  for (const herald::EventPtr& event : decoded->events) {
    const std::string encoded = herald::encode_event(event);
    auto again = herald::decode_event(encoded, catalog);
    if (!again || herald::encode_event(*again) != encoded) std::abort();
  }
  return 0;
}
