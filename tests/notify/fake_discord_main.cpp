// herald_fake_discord: the fake Discord API as a process, for cluster tests. Prints the port it
// listens on as the first line of stdout, then serves until SIGTERM or SIGINT.
//
//   herald_fake_discord --port 0 [--bot-token T] [--webhook-token T] [--bucket-size N]
//                       [--bucket-reset-after SECONDS]

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

#include "fake_discord.hpp"

int main(int argc, char** argv) {
  herald::notify::testing::FakeDiscordOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) {
      std::cerr << "herald_fake_discord: " << flag << " needs a value\n";
      return 2;
    }
    const std::string value = argv[++i];
    try {
      if (flag == "--port") {
        const int port = std::stoi(value);
        if (port < 0 || port > 65535) throw std::out_of_range("port");
        options.port = static_cast<std::uint16_t>(port);
      } else if (flag == "--bot-token") {
        options.bot_token = value;
      } else if (flag == "--webhook-token") {
        options.webhook_token = value;
      } else if (flag == "--bucket-size") {
        options.bucket_size = std::stoi(value);
      } else if (flag == "--bucket-reset-after") {
        options.bucket_reset_after = std::stod(value);
      } else {
        std::cerr << "herald_fake_discord: unknown option " << flag << "\n";
        return 2;
      }
    } catch (const std::exception&) {
      std::cerr << "herald_fake_discord: " << flag << ": invalid value '" << value << "'\n";
      return 2;
    }
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  // Blocked before any thread starts, so only sigwait below receives them.
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  herald::notify::testing::FakeDiscord fake(options);
  std::cout << fake.port() << std::endl;
  int received = 0;
  sigwait(&signals, &received);
  fake.stop();
  return 0;
}
