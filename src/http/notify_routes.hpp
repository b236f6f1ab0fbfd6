#pragma once

// The notification endpoints (docs/http-api.md, "Notifications"): kinds, users' preferences,
// email and inbox (with its stream), deliveries, webhook endpoints and announcement channels.

#include <string>
#include <string_view>
#include <vector>

#include "herald/http/query.hpp"
#include "routes.hpp"

namespace herald::http::detail {

/// True when `resource` (the segment after /api/v1/) is one of the notification endpoints'.
bool is_notification_resource(std::string_view resource) noexcept;

/// Routes and answers a request under /api/v1/ whose resource `is_notification_resource`;
/// `segments` is the whole path ("api", "v1", …).
void handle_notification_request(RouteContext context, const std::vector<std::string>& segments,
                                 QueryParams& params);

}  // namespace herald::http::detail
