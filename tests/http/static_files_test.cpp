// The dashboard's embedded files served at `/` by a real server on loopback.

#include "http/static_files.hpp"

#include <gtest/gtest.h>

#include <string>

#include "http_test_support.hpp"

namespace herald::testing {
namespace {

using bhttp::verb;
using http::detail::content_type_for;
using http::detail::embedded_web_files;

TEST(StaticFiles, EmbedsEveryDashboardFileAtBuildTime) {
  bool index = false;
  bool app = false;
  for (const auto& file : embedded_web_files()) {
    EXPECT_FALSE(file.content.empty()) << file.path;
    EXPECT_EQ(file.digest.size(), 16u) << file.path;
    index = index || file.path == "index.html";
    app = app || file.path == "js/app.js";
  }
  EXPECT_TRUE(index);
  EXPECT_TRUE(app);
}

TEST(StaticFiles, NamesContentTypesByExtension) {
  EXPECT_EQ(content_type_for("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(content_type_for("js/app.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(content_type_for("css/app.css"), "text/css; charset=utf-8");
  EXPECT_EQ(content_type_for("favicon.svg"), "image/svg+xml");
  EXPECT_EQ(content_type_for("LOGO.PNG"), "image/png");
  EXPECT_EQ(content_type_for("archive.bin"), "application/octet-stream");
  EXPECT_EQ(content_type_for("noextension"), "application/octet-stream");
}

TEST(StaticFiles, ServesIndexAtTheRootWithAStrictPolicyAndNoToken) {
  TestServer server;
  HttpClient client(server.port());
  const HttpReply reply = client.get("/");
  ASSERT_EQ(reply.status, 200u) << reply.body;
  EXPECT_EQ(reply.header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(reply.body.find("<!doctype html>"), std::string::npos);
  EXPECT_EQ(reply.header("X-Content-Type-Options"), "nosniff");
  EXPECT_NE(reply.header("Content-Security-Policy").find("default-src 'self'"), std::string::npos);
  EXPECT_EQ(reply.header("Content-Security-Policy").find("unsafe-inline"), std::string::npos);
  EXPECT_EQ(reply.header("Cache-Control"), "no-cache");
  EXPECT_EQ(reply.header("ETag").size(), 18u) << reply.header("ETag");
}

TEST(StaticFiles, ServesScriptsAsJavaScriptModules) {
  TestServer server;
  HttpClient client(server.port());
  const HttpReply reply = client.get("/js/app.js");
  ASSERT_EQ(reply.status, 200u) << reply.body;
  EXPECT_EQ(reply.header("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_NE(reply.body.find("import"), std::string::npos);
}

TEST(StaticFiles, AnswersNotModifiedWhenIfNoneMatchNamesTheETag) {
  TestServer server;
  HttpClient client(server.port());
  const std::string etag = client.get("/css/app.css").header("ETag");
  ASSERT_FALSE(etag.empty());
  const HttpReply same = client.send(verb::get, "/css/app.css", {}, {}, {},
                                     {{"If-None-Match", "\"other\", W/" + etag}});
  EXPECT_EQ(same.status, 304u);
  EXPECT_TRUE(same.body.empty());
  EXPECT_EQ(same.header("ETag"), etag);
  const HttpReply changed = client.send(verb::get, "/css/app.css", {}, {}, {},
                                        {{"If-None-Match", "\"0123456789abcdef\""}});
  EXPECT_EQ(changed.status, 200u);
  EXPECT_FALSE(changed.body.empty());
}

TEST(StaticFiles, AnswersNotFoundForAnUnknownFile) {
  TestServer server;
  HttpClient client(server.port());
  const HttpReply reply = client.get("/js/missing.js");
  EXPECT_EQ(reply.status, 404u);
  EXPECT_EQ(reply.json().as_object().at("error").as_object().at("code").as_string(), "not_found");
  // An API path that does not exist is still the API's 404, not a file lookup.
  EXPECT_EQ(client.get("/api/v1/nothing", server.tokens().all).status, 404u);
}

TEST(StaticFiles, RefusesTraversalOutOfTheWebDirectory) {
  TestServer server;
  HttpClient client(server.port());
  for (const char* hostile : {"/../etc/passwd", "/%2e%2e/etc/passwd", "/js/..%2f..%2fetc/passwd",
                              "/js/%2e%2e/%2e%2e/CMakeLists.txt", "/js%5c..%5capp.js"}) {
    const HttpReply reply = client.get(hostile);
    EXPECT_TRUE(reply.status == 400u || reply.status == 404u)
        << hostile << " gave " << reply.status;
    EXPECT_EQ(reply.body.find("<!doctype"), std::string::npos) << hostile;
    EXPECT_EQ(reply.body.find("cmake_minimum_required"), std::string::npos) << hostile;
  }
}

TEST(StaticFiles, RefusesMethodsOtherThanGet) {
  TestServer server;
  HttpClient client(server.port());
  const HttpReply reply = client.send(verb::post, "/", {}, "{}", "application/json");
  EXPECT_EQ(reply.status, 405u);
  EXPECT_EQ(reply.header("Allow"), "GET");
}

}  // namespace
}  // namespace herald::testing
