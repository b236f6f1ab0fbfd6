// Email delivery over SMTP (RFC 5321) with libcurl: one RFC 5322 message per delivery, MIME
// multipart/alternative (RFC 2046 section 5.1.4) with a text and an HTML part, each UTF-8 in
// base64 (RFC 2045 section 6.8, lines of 76 characters), and RFC 2047 encoded words for headers
// that are not ASCII.

#include <curl/curl.h>
#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <memory>

#include "herald/notify/html.hpp"
#include "herald/notify/sender.hpp"
#include "notify/base64.hpp"
#include "notify/curl_http.hpp"
#include "notify/sender_support.hpp"

namespace herald::notify {
namespace {

// An addr-spec (RFC 5322 section 3.4.1) restricted to what a notification needs: a dot-atom
// local part and a domain of letters, digits, hyphens and dots. Anything else (CR, LF, angle
// brackets, quotes, spaces, a second '@') is refused, so an address can never inject a header
// or an SMTP command.
bool is_valid_address(std::string_view address) {
  if (address.empty() || address.size() > 254) return false;
  const auto at = address.find('@');
  if (at == std::string_view::npos || at == 0 || at > 64 || at + 1 >= address.size()) {
    return false;
  }
  const std::string_view local = address.substr(0, at);
  const std::string_view domain = address.substr(at + 1);
  constexpr std::string_view local_extra = "!#$%&'*+-/=?^_`{|}~.";
  for (const char c : local) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && local_extra.find(c) == std::string_view::npos) return false;
  }
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos) {
    return false;
  }
  for (const char c : domain) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && c != '-' && c != '.') return false;
  }
  return domain.front() != '.' && domain.back() != '.' && domain.front() != '-' &&
         domain.find("..") == std::string_view::npos;
}

bool has_line_break(std::string_view text) {
  return text.find_first_of("\r\n") != std::string_view::npos;
}

bool is_plain_ascii(std::string_view text) {
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) return false;
  }
  return true;
}

// RFC 2047 encoded words ("=?UTF-8?B?...?="), each at most 75 characters, split on UTF-8
// character boundaries and folded onto continuation lines.
std::string encoded_words(std::string_view text) {
  constexpr std::size_t max_chunk = 45;  // 60 base64 characters + 12 of framing.
  std::string out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = std::min(text.size(), start + max_chunk);
    while (end < text.size() && end > start &&
           (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
      --end;
    }
    if (end == start) end = std::min(text.size(), start + max_chunk);
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + detail::base64_encode(text.substr(start, end - start)) + "?=";
    start = end;
  }
  return out;
}

// An unstructured header value (Subject): as is when short ASCII, encoded words otherwise.
std::string header_text(std::string_view text) {
  if (is_plain_ascii(text) && text.size() <= 900) return std::string(text);
  return encoded_words(text);
}

// A display name: a quoted string (RFC 5322 section 3.2.4) when ASCII, encoded words otherwise.
std::string display_name(std::string_view name) {
  if (!is_plain_ascii(name) || name.size() > 200) return encoded_words(name);
  std::string out = "\"";
  for (const char c : name) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

std::string mailbox(std::string_view name, std::string_view address) {
  if (name.empty()) return "<" + std::string(address) + ">";
  return display_name(name) + " <" + std::string(address) + ">";
}

// RFC 5322 section 3.3: "Fri, 27 Nov 2026 10:20:24 +0000".
std::string rfc5322_date(Timestamp now) {
  using namespace std::chrono;
  static constexpr std::array<std::string_view, 7> weekdays{"Sun", "Mon", "Tue", "Wed",
                                                            "Thu", "Fri", "Sat"};
  static constexpr std::array<std::string_view, 12> months{
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto day = floor<days>(now);
  const year_month_day date(day);
  const weekday wd(day);
  const hh_mm_ss time(floor<seconds>(now - day));
  return fmt::format("{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000", weekdays[wd.c_encoding()],
                     static_cast<unsigned>(date.day()),
                     months[static_cast<unsigned>(date.month()) - 1], static_cast<int>(date.year()),
                     time.hours().count(), time.minutes().count(), time.seconds().count());
}

std::string base64_lines(std::string_view bytes) {
  const std::string encoded = detail::base64_encode(bytes);
  std::string out;
  out.reserve(encoded.size() + encoded.size() / 76 * 2 + 2);
  for (std::size_t i = 0; i < encoded.size(); i += 76) {
    out.append(encoded, i, 76);
    out += "\r\n";
  }
  return out;
}

struct Upload {
  std::string_view data;
  std::size_t offset = 0;
};

std::size_t on_read(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto* upload = static_cast<Upload*>(user);
  const std::size_t n = std::min(size * count, upload->data.size() - upload->offset);
  std::copy_n(upload->data.data() + upload->offset, n, buffer);
  upload->offset += n;
  return n;
}

struct CurlHandleDeleter {
  void operator()(CURL* handle) const noexcept { curl_easy_cleanup(handle); }
};
struct CurlListDeleter {
  void operator()(curl_slist* list) const noexcept { curl_slist_free_all(list); }
};

class EmailSender final : public Sender {
 public:
  explicit EmailSender(EmailOptions options) : options_(std::move(options)) {
    detail::ensure_curl_initialized();
  }

  Channel channel() const noexcept override { return Channel::email; }

  SendResult send(const SendRequest& request) override {
    auto payload = detail::parse_payload(request.delivery.payload);
    if (!payload) return payload.error();
    auto to = detail::payload_string(*payload, "to");
    if (!to) return to.error();
    auto to_name = detail::payload_string(*payload, "to_name", false);
    if (!to_name) return to_name.error();
    auto title = detail::payload_string(*payload, "title");
    if (!title) return title.error();
    auto text = detail::payload_string(*payload, "text");
    if (!text) return text.error();
    auto html = detail::payload_string(*payload, "html");
    if (!html) return html.error();
    auto link = detail::payload_string(*payload, "link", false);
    if (!link) return link.error();

    if (!is_valid_address(*to)) {
      return detail::permanent("payload member 'to': invalid address");
    }
    if (has_line_break(*to_name))
      return detail::permanent("payload member 'to_name': invalid header");
    if (has_line_break(*title)) return detail::permanent("payload member 'title': invalid header");
    if (!is_valid_address(options_.from)) {
      return detail::permanent("email option 'from': invalid address");
    }
    if (has_line_break(options_.from_name) ||
        options_.message_id_domain.find_first_of("\r\n<> @") != std::string::npos) {
      return detail::permanent("email options 'from_name'/'message_id_domain': invalid header");
    }
    const std::string message = build_message(request, *to, *to_name, *title, *text, *html, *link);
    return transfer(*to, message);
  }

 private:
  std::string build_message(const SendRequest& request, std::string_view to,
                            std::string_view to_name, std::string_view title, std::string_view text,
                            std::string_view html, std::string_view link) const {
    const std::string event_id = request.delivery.event_id.to_string();
    const std::string boundary = fmt::format("=_herald_{}_{}", request.delivery.id,
                                             request.delivery.event_id.short_string());
    std::string plain(text);
    if (!link.empty()) plain += "\n\n" + std::string(link);
    // Normalise line ends to CRLF: the body of an Internet message is CRLF lines.
    const auto crlf = [](std::string_view in) {
      std::string out;
      for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '\r') continue;
        if (in[i] == '\n') out += '\r';
        out += in[i];
      }
      return out;
    };
    std::string document = "<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\"><title>" +
                           escape_html(title) + "</title></head><body>\r\n" + std::string(html);
    if (!link.empty()) {
      document += "\r\n<p><a href=\"" + escape_html(link) + "\">" + escape_html(link) + "</a></p>";
    }
    document += "\r\n</body></html>\r\n";

    std::string out;
    out += "From: " + mailbox(options_.from_name, options_.from) + "\r\n";
    out += "To: " + mailbox(to_name, to) + "\r\n";
    out += "Subject: " + header_text(title) + "\r\n";
    out += "Date: " + rfc5322_date(request.now) + "\r\n";
    // Stable per delivery: a repeat after a crash carries the same Message-ID.
    out += fmt::format("Message-ID: <{}.{}@{}>\r\n", request.delivery.id, event_id,
                       options_.message_id_domain);
    out += "MIME-Version: 1.0\r\n";
    // RFC 3834: an automatic message, so auto-responders stay quiet.
    out += "Auto-Submitted: auto-generated\r\n";
    out += "Content-Type: multipart/alternative; boundary=\"" + boundary + "\"\r\n";
    out += "\r\n";
    out += "--" + boundary + "\r\n";
    out += "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n";
    out += base64_lines(crlf(plain));
    out += "--" + boundary + "\r\n";
    out += "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n";
    out += base64_lines(crlf(document));
    out += "--" + boundary + "--\r\n";
    return out;
  }

  SendResult transfer(const std::string& to, const std::string& message) const {
    std::unique_ptr<CURL, CurlHandleDeleter> handle(curl_easy_init());
    if (!handle) return detail::transient("curl_easy_init failed");
    CURL* curl = handle.get();
    std::unique_ptr<curl_slist, CurlListDeleter> recipients(
        curl_slist_append(nullptr, ("<" + to + ">").c_str()));
    if (!recipients) return detail::transient("out of memory");
    Upload upload{message, 0};
    const std::string mail_from = "<" + options_.from + ">";
    char error_buffer[CURL_ERROR_SIZE] = {};

    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
    curl_easy_setopt(curl, CURLOPT_URL, options_.smtp_url.c_str());
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROXY, "");
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                     std::max(1L, static_cast<long>(options_.timeout.count())));
    curl_easy_setopt(curl, CURLOPT_MAIL_FROM, mail_from.c_str());
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, recipients.get());
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(message.size()));
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(curl, CURLOPT_READDATA, &upload);
    if (options_.starttls)
      curl_easy_setopt(curl, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
    if (!options_.username.empty()) {
      curl_easy_setopt(curl, CURLOPT_USERNAME, options_.username.c_str());
      curl_easy_setopt(curl, CURLOPT_PASSWORD, options_.password.c_str());
    }

    const CURLcode code = curl_easy_perform(curl);
    long reply = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply);
    const std::optional<int> status =
        reply > 0 ? std::optional<int>(static_cast<int>(reply)) : std::nullopt;
    if (code == CURLE_OK) return SendResult{SendOutcome::sent, status, {}, {}};

    const std::string what = fmt::format(
        "SMTP {}{}: {}", options_.smtp_url, status ? fmt::format(" replied {}", *status) : "",
        error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(code));
    if (status && *status >= 500 && *status < 600) return detail::permanent(what, status);
    if (status && *status >= 400 && *status < 500) return detail::transient(what, status);
    switch (code) {
      case CURLE_LOGIN_DENIED:
      case CURLE_UNSUPPORTED_PROTOCOL:
      case CURLE_URL_MALFORMAT:
      case CURLE_USE_SSL_FAILED:
        // The configuration is wrong; retrying the same delivery cannot help.
        return detail::permanent(what, status);
      default:
        // Refused, unreachable, timed out or cut off: the relay may be back later.
        return detail::transient(what, status);
    }
  }

  EmailOptions options_;
};

}  // namespace

std::unique_ptr<Sender> make_email_sender(const EmailOptions& options) {
  return std::make_unique<EmailSender>(options);
}

}  // namespace herald::notify
