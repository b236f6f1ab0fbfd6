#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "herald/notify/sender.hpp"
#include "smtp_server.hpp"

namespace herald::notify {
namespace {

using testing::free_port;
using testing::SmtpServer;

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string decode_base64(std::string text) {
  std::erase_if(text, [](char c) { return c == '\r' || c == '\n' || c == ' '; });
  std::string out(text.size() / 4 * 3 + 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return "<bad base64>";
  std::size_t length = static_cast<std::size_t>(n);
  if (text.ends_with("==")) {
    length -= 2;
  } else if (text.ends_with("=")) {
    length -= 1;
  }
  out.resize(length);
  return out;
}

std::string without_cr(std::string text) {
  std::erase(text, '\r');
  return text;
}

// A message as the test reads it: unfolded headers and the MIME parts' decoded bodies.
struct ParsedMessage {
  std::multimap<std::string, std::string> headers;
  std::map<std::string, std::string> parts;  // content type → decoded body
  std::size_t longest_line = 0;

  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

ParsedMessage parse_message(const std::string& raw) {
  ParsedMessage parsed;
  const std::string text = without_cr(raw);
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line))
    parsed.longest_line = std::max(parsed.longest_line, line.size());

  const auto split = text.find("\n\n");
  std::istringstream head(text.substr(0, split));
  std::string name;
  while (std::getline(head, line)) {
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      auto last = parsed.headers.find(name);
      for (auto it = parsed.headers.begin(); it != parsed.headers.end(); ++it) {
        if (it->first == name) last = it;
      }
      last->second += line;
      continue;
    }
    const auto colon = line.find(':');
    name = line.substr(0, colon);
    parsed.headers.emplace(name, line.substr(colon + 2));
  }
  const std::string content_type = parsed.header("Content-Type");
  const auto b = content_type.find("boundary=\"");
  if (b == std::string::npos) return parsed;
  const std::string boundary =
      "--" + content_type.substr(b + 10, content_type.find('"', b + 10) - b - 10);
  std::string body = text.substr(split + 2);
  std::size_t at = body.find(boundary);
  while (at != std::string::npos) {
    const std::size_t start = at + boundary.size();
    if (body.compare(start, 2, "--") == 0) break;
    const std::size_t next = body.find(boundary, start);
    const std::string part = body.substr(start + 1, next - start - 1);
    const auto part_split = part.find("\n\n");
    const std::string part_head = part.substr(0, part_split);
    const auto type_at = part_head.find("Content-Type: ");
    const std::string type =
        part_head.substr(type_at + 14, part_head.find(';', type_at) - type_at - 14);
    EXPECT_NE(part_head.find("Content-Transfer-Encoding: base64"), std::string::npos);
    EXPECT_NE(part_head.find("charset=utf-8"), std::string::npos);
    parsed.parts[type] = without_cr(decode_base64(part.substr(part_split + 2)));
    at = next;
  }
  return parsed;
}

// "=?UTF-8?B?...?=" words, possibly folded, back to text.
std::string decode_encoded_words(const std::string& value) {
  std::string out;
  std::size_t at = 0;
  while ((at = value.find("=?UTF-8?B?", at)) != std::string::npos) {
    const auto end = value.find("?=", at + 10);
    out += decode_base64(value.substr(at + 10, end - at - 10));
    at = end + 2;
  }
  return out;
}

class EmailSenderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new SmtpServer(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(server_->ready()) << "aiosmtpd did not start (python3-aiosmtpd installed?)";
  }

  static EmailOptions options() {
    return EmailOptions{.smtp_url = server_->url(),
                        .from = "herald@example.org",
                        .from_name = "Tournament herald",
                        .message_id_domain = "herald.test",
                        .timeout = 10s};
  }

  static DeliveryRecord delivery(const boost::json::object& payload) {
    DeliveryRecord record;
    record.id = 77;
    record.event_id = *EventId::parse("0190f5a2-7c3e-7d4a-9b1e-0123456789ab");
    record.channel = Channel::email;
    record.recipient = "user:42";
    record.kind = "race_approved";
    record.payload = boost::json::serialize(payload);
    return record;
  }

  static boost::json::object payload(std::string to = "ada@example.org") {
    return boost::json::object{{"to", to},
                               {"to_name", "Ada Lovelace"},
                               {"title", "Your race was approved"},
                               {"text", "Race 7 was approved.\nGood luck!"},
                               {"html", "<p>Race <b>7</b> was approved.</p>"},
                               {"link", "/races/7"}};
  }

  // 2026-11-27T10:20:24Z, a Friday.
  static Timestamp at() {
    return std::chrono::sys_days(std::chrono::year(2026) / 11 / 27) + 10h + 20min + 24s;
  }

  static SendResult send(Sender& sender, const DeliveryRecord& record) {
    return sender.send(SendRequest{record, nullptr, at()});
  }

  // The message delivered after `before` messages, once it is in the Maildir.
  static std::optional<std::string> wait_for_message(std::size_t before) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto messages = server_->messages();
      if (messages.size() > before) {
        for (const auto& m : messages) {
          if (std::find(seen_.begin(), seen_.end(), m) == seen_.end()) {
            seen_.push_back(m);
            return m;
          }
        }
      }
      std::this_thread::sleep_for(20ms);
    }
    return std::nullopt;
  }

  static inline SmtpServer* server_ = nullptr;
  static inline std::vector<std::string> seen_;
};

TEST_F(EmailSenderTest, DeliversAMultipartMessageWithEveryHeaderAndBothParts) {
  auto sender = make_email_sender(options());
  EXPECT_EQ(sender->channel(), Channel::email);
  const std::size_t before = server_->messages().size();
  const DeliveryRecord record = delivery(payload());
  const SendResult result = send(*sender, record);
  ASSERT_EQ(result.outcome, SendOutcome::sent) << result.error;
  EXPECT_EQ(result.status_code, 250);
  const auto raw = wait_for_message(before);
  ASSERT_TRUE(raw.has_value());
  const ParsedMessage message = parse_message(*raw);
  EXPECT_EQ(message.header("From"), "\"Tournament herald\" <herald@example.org>");
  EXPECT_EQ(message.header("To"), "\"Ada Lovelace\" <ada@example.org>");
  EXPECT_EQ(message.header("Subject"), "Your race was approved");
  EXPECT_EQ(message.header("Date"), "Fri, 27 Nov 2026 10:20:24 +0000");
  EXPECT_EQ(message.header("Message-ID"), "<77.0190f5a2-7c3e-7d4a-9b1e-0123456789ab@herald.test>");
  EXPECT_EQ(message.header("MIME-Version"), "1.0");
  EXPECT_TRUE(message.header("Content-Type").starts_with("multipart/alternative; boundary="));
  EXPECT_EQ(message.header("X-MailFrom"), "herald@example.org");
  EXPECT_EQ(message.header("X-RcptTo"), "ada@example.org");
  ASSERT_EQ(message.parts.size(), 2u);
  EXPECT_EQ(message.parts.at("text/plain"), "Race 7 was approved.\nGood luck!\n\n/races/7");
  const std::string& html = message.parts.at("text/html");
  EXPECT_NE(html.find("<p>Race <b>7</b> was approved.</p>"), std::string::npos) << html;
  EXPECT_NE(html.find("<a href=\"/races/7\">"), std::string::npos) << html;
  EXPECT_NE(html.find("<meta charset=\"utf-8\">"), std::string::npos) << html;
  EXPECT_LE(message.longest_line, 998u);
}

TEST_F(EmailSenderTest, EncodesNonAsciiSubjectsAndNamesAsEncodedWords) {
  auto sender = make_email_sender(options());
  auto fields = payload();
  std::string title = "Course valid\u00e9e \u2014 \U0001F389 ";
  for (int i = 0; i < 6; ++i) title += "encore une fois, f\u00e9licitations ! ";
  fields["title"] = title;
  fields["to_name"] = "Zo\u00e9 M\u00fcller";
  const std::size_t before = server_->messages().size();
  ASSERT_EQ(send(*sender, delivery(fields)).outcome, SendOutcome::sent);
  const auto raw = wait_for_message(before);
  ASSERT_TRUE(raw.has_value());
  const ParsedMessage message = parse_message(*raw);
  const std::string subject = message.header("Subject");
  EXPECT_TRUE(subject.starts_with("=?UTF-8?B?")) << subject;
  EXPECT_EQ(decode_encoded_words(subject), title);
  EXPECT_EQ(decode_encoded_words(message.header("To")), "Zo\u00e9 M\u00fcller");
  EXPECT_TRUE(message.header("To").ends_with(" <ada@example.org>"));
  // Every encoded word stays within RFC 2047's 75 characters.
  std::istringstream raw_lines(without_cr(*raw));
  std::string line;
  while (std::getline(raw_lines, line)) {
    if (line.find("=?UTF-8?B?") != std::string::npos) {
      const auto word = line.substr(line.find("=?UTF-8?B?"));
      EXPECT_LE(word.size(), 75u) << word;
    }
  }
}

TEST_F(EmailSenderTest, KeepsTheMessageIdStableWhenADeliveryIsRepeated) {
  auto sender = make_email_sender(options());
  const DeliveryRecord record = delivery(payload());
  const std::size_t before = server_->messages().size();
  ASSERT_EQ(send(*sender, record).outcome, SendOutcome::sent);
  const auto first = wait_for_message(before);
  ASSERT_EQ(send(*sender, record).outcome, SendOutcome::sent);
  const auto second = wait_for_message(before + 1);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(parse_message(*first).header("Message-ID"),
            parse_message(*second).header("Message-ID"));
}

TEST_F(EmailSenderTest, AnUnknownRecipientIsPermanentWithTheReplyCode) {
  auto sender = make_email_sender(options());
  const SendResult result = send(*sender, delivery(payload("unknown@example.org")));
  EXPECT_EQ(result.outcome, SendOutcome::permanent);
  EXPECT_EQ(result.status_code, 550);
  EXPECT_NE(result.error.find("550"), std::string::npos) << result.error;
}

TEST_F(EmailSenderTest, ABusyMailboxIsTransientWithTheReplyCode) {
  auto sender = make_email_sender(options());
  const SendResult result = send(*sender, delivery(payload("busy@example.org")));
  EXPECT_EQ(result.outcome, SendOutcome::transient);
  EXPECT_EQ(result.status_code, 451);
}

TEST_F(EmailSenderTest, RefusesHeaderInjectionAndBadAddressesWithoutSending) {
  auto sender = make_email_sender(options());
  const std::size_t before = server_->messages().size();
  const std::vector<std::pair<std::string, std::string>> bad_to = {
      {"ada@example.org\r\nBcc: eve@example.org", "invalid address"},
      {"ada@example.org\nBcc: eve@example.org", "invalid address"},
      {"<ada@example.org>", "invalid address"},
      {"ada@example.org>, <eve@example.org", "invalid address"},
      {"not-an-address", "invalid address"},
      {"ada @example.org", "invalid address"},
      {"ada@@example.org", "invalid address"},
      {"", "invalid address"},
      {std::string(300, 'a') + "@example.org", "invalid address"},
  };
  for (const auto& [to, expected] : bad_to) {
    const SendResult result = send(*sender, delivery(payload(to)));
    EXPECT_EQ(result.outcome, SendOutcome::permanent) << to;
    EXPECT_NE(result.error.find(expected), std::string::npos) << to << ": " << result.error;
    EXPECT_NE(result.error.find("'to'"), std::string::npos) << result.error;
  }
  for (const char* field : {"title", "to_name"}) {
    auto fields = payload();
    fields[field] = "Hello\r\nBcc: eve@example.org";
    const SendResult result = send(*sender, delivery(fields));
    EXPECT_EQ(result.outcome, SendOutcome::permanent) << field;
    EXPECT_NE(result.error.find("invalid header"), std::string::npos) << result.error;
    EXPECT_NE(result.error.find(field), std::string::npos) << result.error;
  }
  EXPECT_EQ(server_->messages().size(), before);
}

TEST_F(EmailSenderTest, MalformedPayloadsArePermanentAndNameTheMember) {
  auto sender = make_email_sender(options());
  for (const char* member : {"to", "title", "text", "html"}) {
    auto fields = payload();
    fields.erase(member);
    const SendResult result = send(*sender, delivery(fields));
    EXPECT_EQ(result.outcome, SendOutcome::permanent) << member;
    EXPECT_NE(result.error.find(std::string("'") + member + "': missing"), std::string::npos)
        << result.error;
  }
  DeliveryRecord record = delivery(payload());
  record.payload = "{\"to\":";
  EXPECT_NE(send(*sender, record).error.find("not valid JSON"), std::string::npos);
  auto fields = payload();
  fields["to"] = 42;
  EXPECT_NE(send(*sender, delivery(fields)).error.find("'to': expected a string"),
            std::string::npos);
}

TEST_F(EmailSenderTest, ABadFromOptionIsPermanent) {
  auto bad = options();
  bad.from = "herald@example.org>\r\nRCPT TO:<eve@example.org";
  const SendResult result = send(*make_email_sender(bad), delivery(payload()));
  EXPECT_EQ(result.outcome, SendOutcome::permanent);
  EXPECT_NE(result.error.find("'from'"), std::string::npos) << result.error;
}

TEST(EmailSender, AServerThatIsDownIsTransient) {
  const std::uint16_t port = free_port();
  auto sender =
      make_email_sender(EmailOptions{.smtp_url = "smtp://127.0.0.1:" + std::to_string(port),
                                     .from = "herald@example.org",
                                     .timeout = 5s});
  DeliveryRecord record;
  record.id = 1;
  record.event_id = EventId::generate();
  record.payload = R"({"to":"ada@example.org","title":"t","text":"x","html":"<p>x</p>"})";
  const SendResult result = sender->send(SendRequest{record, nullptr, now()});
  EXPECT_EQ(result.outcome, SendOutcome::transient);
  EXPECT_FALSE(result.status_code.has_value());
  EXPECT_FALSE(result.error.empty());
}

TEST(EmailSender, AServerThatNeverGreetsIsATransientTimeout) {
  // A listener that never accepts: the connection completes in the backlog, no greeting comes.
  net::io_context io;
  tcp::acceptor silent(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  auto sender = make_email_sender(
      EmailOptions{.smtp_url = "smtp://127.0.0.1:" + std::to_string(silent.local_endpoint().port()),
                   .from = "herald@example.org",
                   .timeout = 400ms});
  DeliveryRecord record;
  record.id = 1;
  record.event_id = EventId::generate();
  record.payload = R"({"to":"ada@example.org","title":"t","text":"x","html":"<p>x</p>"})";
  const auto started = std::chrono::steady_clock::now();
  const SendResult result = sender->send(SendRequest{record, nullptr, now()});
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(result.outcome, SendOutcome::transient);
  EXPECT_FALSE(result.status_code.has_value());
  EXPECT_NE(result.error.find("timed out"), std::string::npos) << result.error;
  EXPECT_LT(took, 3s);
}

}  // namespace
}  // namespace herald::notify
