#include "notify/curl_http.hpp"

#include <curl/curl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>

namespace herald::notify::detail {
namespace {

struct CurlHandleDeleter {
  void operator()(CURL* handle) const noexcept { curl_easy_cleanup(handle); }
};
struct CurlListDeleter {
  void operator()(curl_slist* list) const noexcept { curl_slist_free_all(list); }
};
using CurlHandle = std::unique_ptr<CURL, CurlHandleDeleter>;
using CurlList = std::unique_ptr<curl_slist, CurlListDeleter>;

struct Transfer {
  HttpResponse response;
  std::size_t max_body = 0;
  bool (*address_allowed)(const void*, std::size_t) = nullptr;
  bool address_refused = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  std::string& body = transfer->response.body;
  if (body.size() < transfer->max_body) {
    body.append(data, std::min(n, transfer->max_body - body.size()));
  }
  return n;
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  std::string_view line(data, n);
  // A new status line (after a 100 Continue) starts a new header block.
  if (line.starts_with("HTTP/")) {
    transfer->response.headers.clear();
    return n;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos || transfer->response.headers.size() >= 200) return n;
  std::string name(line.substr(0, colon));
  std::ranges::transform(name, name.begin(),
                         [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
    value.remove_suffix(1);
  }
  transfer->response.headers.emplace_back(std::move(name), std::string(value));
  return n;
}

curl_socket_t on_open_socket(void* user, curlsocktype purpose, curl_sockaddr* address) {
  auto* transfer = static_cast<Transfer*>(user);
  if (purpose == CURLSOCKTYPE_IPCXN && transfer->address_allowed != nullptr &&
      !transfer->address_allowed(&address->addr, address->addrlen)) {
    transfer->address_refused = true;
    return CURL_SOCKET_BAD;
  }
  return ::socket(address->family, address->socktype, address->protocol);
}

HttpFailure::Kind failure_kind(CURLcode code) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return HttpFailure::Kind::timeout;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
      return HttpFailure::Kind::connect;
    default:
      return HttpFailure::Kind::other;
  }
}

}  // namespace

void ensure_curl_initialized() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::optional<std::string_view> HttpResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return std::string_view(value);
  }
  return std::nullopt;
}

namespace {

// One easy handle per thread, reset between requests: a reset drops every option but keeps the
// handle's connection cache, so a worker thread sending to the same receiver again reuses its
// keep-alive connection instead of opening one per request. A reused connection was checked when
// it was opened (CURLOPT_OPENSOCKETFUNCTION), and libcurl reuses one only for the same scheme,
// host and port.
CURL* thread_handle() {
  thread_local CurlHandle handle(curl_easy_init());
  return handle.get();
}

// Resets the handle when a request ends, so that it keeps no pointer to the request's header
// lists, error buffer or transfer state past their lifetime.
struct ResetOnExit {
  CURL* curl;
  ~ResetOnExit() { curl_easy_reset(curl); }
};

}  // namespace

std::expected<HttpResponse, HttpFailure> perform_http(const HttpRequest& request) {
  ensure_curl_initialized();
  CURL* curl = thread_handle();
  if (curl == nullptr)
    return std::unexpected(HttpFailure{HttpFailure::Kind::other, "curl_easy_init failed"});

  Transfer transfer;
  transfer.max_body = request.max_response_body;
  transfer.address_allowed = request.address_allowed;

  CurlList headers;
  for (const auto& line : request.headers) {
    curl_slist* next = curl_slist_append(headers.get(), line.c_str());
    if (next == nullptr)
      return std::unexpected(HttpFailure{HttpFailure::Kind::other, "out of memory"});
    (void)headers.release();
    headers.reset(next);
  }
  // An empty Expect stops libcurl from waiting for "100 Continue" on larger bodies.
  {
    curl_slist* next = curl_slist_append(headers.get(), "Expect:");
    if (next == nullptr)
      return std::unexpected(HttpFailure{HttpFailure::Kind::other, "out of memory"});
    (void)headers.release();
    headers.reset(next);
  }
  CurlList resolve;
  for (const auto& entry : request.resolve) {
    curl_slist* next = curl_slist_append(resolve.get(), entry.c_str());
    if (next == nullptr)
      return std::unexpected(HttpFailure{HttpFailure::Kind::other, "out of memory"});
    (void)resolve.release();
    resolve.reset(next);
  }

  char error_buffer[CURL_ERROR_SIZE] = {};
  // Declared after everything the handle will point to, so it resets the handle first.
  const ResetOnExit reset{curl};
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  // Ignore http_proxy and friends: the address check must see the real target.
  curl_easy_setopt(curl, CURLOPT_PROXY, "");
  // Zero would mean "no timeout" to libcurl.
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   std::max(1L, static_cast<long>(request.timeout.count())));
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  if (request.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  if (resolve) curl_easy_setopt(curl, CURLOPT_RESOLVE, resolve.get());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
  curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, &transfer);

  const CURLcode code = curl_easy_perform(curl);
  if (transfer.address_refused) {
    return std::unexpected(
        HttpFailure{HttpFailure::Kind::refused, "the target address is not allowed"});
  }
  if (code != CURLE_OK) {
    std::string message = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(code);
    return std::unexpected(HttpFailure{failure_kind(code), std::move(message)});
  }
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  transfer.response.status = static_cast<int>(status);
  return std::move(transfer.response);
}

}  // namespace herald::notify::detail
