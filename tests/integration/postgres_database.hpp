#pragma once

// A throwaway PostgreSQL database per test, for suites parameterized over backends.

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <exception>
#include <pqxx/pqxx>
#include <string>
#include <utility>

namespace herald::test {

/// The test name suffix of a backend-parameterized suite: the backend ("sqlite", "postgres").
inline std::string backend_name(const ::testing::TestParamInfo<std::string>& backend) {
  return backend.param;
}

/// A fresh PostgreSQL database on the server `server_url` names (HERALD_TEST_PG_URL), called
/// `<prefix>_<pid>_<n>`, dropped at the end.
class PostgresDatabase {
 public:
  PostgresDatabase(std::string server_url, const std::string& prefix)
      : server_url_(std::move(server_url)) {
    static std::atomic<int> counter{0};
    name_ = prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
    pqxx::connection admin(server_url_);
    pqxx::nontransaction tx(admin);
    tx.exec0("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    tx.exec0("CREATE DATABASE " + name_);
    // Keep the user, host, port and query; swap the database name.
    const auto query = server_url_.find('?');
    const std::string base = server_url_.substr(0, query);
    url_ = base.substr(0, base.rfind('/') + 1) + name_ +
           (query == std::string::npos ? "" : server_url_.substr(query));
  }
  ~PostgresDatabase() {
    try {
      pqxx::connection admin(server_url_);
      pqxx::nontransaction tx(admin);
      tx.exec0("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (const std::exception&) {
      // The server is gone already; with_postgres.sh removes it with its data.
    }
  }
  PostgresDatabase(const PostgresDatabase&) = delete;
  PostgresDatabase& operator=(const PostgresDatabase&) = delete;

  const std::string& url() const { return url_; }

 private:
  std::string server_url_;
  std::string name_;
  std::string url_;
};

}  // namespace herald::test
