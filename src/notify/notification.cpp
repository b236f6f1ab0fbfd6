#include "herald/notify/notification.hpp"

#include <array>
#include <utility>

namespace herald::notify {
namespace {

constexpr std::array<std::pair<Channel, std::string_view>, 5> channel_names{{
    {Channel::in_app, "in_app"},
    {Channel::discord, "discord"},
    {Channel::email, "email"},
    {Channel::webhook, "webhook"},
    {Channel::discord_channel, "discord_channel"},
}};

constexpr std::array<std::pair<DeliveryStatus, std::string_view>, 6> status_names{{
    {DeliveryStatus::pending, "pending"},
    {DeliveryStatus::sending, "sending"},
    {DeliveryStatus::sent, "sent"},
    {DeliveryStatus::retrying, "retrying"},
    {DeliveryStatus::failed, "failed"},
    {DeliveryStatus::dead, "dead"},
}};

}  // namespace

std::string_view to_string(Channel channel) noexcept {
  for (const auto& [value, name] : channel_names) {
    if (value == channel) return name;
  }
  return "unknown";
}

std::optional<Channel> parse_channel(std::string_view name) noexcept {
  for (const auto& [value, known] : channel_names) {
    if (known == name) return value;
  }
  return std::nullopt;
}

std::string_view to_string(DeliveryStatus status) noexcept {
  for (const auto& [value, name] : status_names) {
    if (value == status) return name;
  }
  return "unknown";
}

std::optional<DeliveryStatus> parse_delivery_status(std::string_view name) noexcept {
  for (const auto& [value, known] : status_names) {
    if (known == name) return value;
  }
  return std::nullopt;
}

}  // namespace herald::notify
