#include "herald/domain/catalog.hpp"

#include <boost/mp11/algorithm.hpp>

#include "herald/domain/events.hpp"

namespace herald::domain {

void register_platform_events(herald::EventCatalog& catalog) {
  boost::mp11::mp_for_each<boost::mp11::mp_transform<boost::mp11::mp_identity, PlatformEvents>>(
      [&](auto identity) { catalog.add<typename decltype(identity)::type>(); });
}

const herald::EventCatalog& platform_catalog() {
  // C++11 guarantees one thread initializes a function-local static while others wait.
  static const herald::EventCatalog catalog = [] {
    herald::EventCatalog built;
    register_platform_events(built);
    return built;
  }();
  return catalog;
}

}  // namespace herald::domain
