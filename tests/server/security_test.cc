// The pieces of the server's security: SHA-256 and the tokens file, the metrics credential,
// the loopback rule for listen addresses, and the options the server refuses to start with.
// Digests are checked against FIPS 180-2's examples and coreutils' sha256sum output.
#include "server/security.h"

#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/address.h"
#include "server/basic_auth.h"
#include "server/request_limits.h"
#include "server/server.h"
#include "server/token_table.h"

namespace flowvi::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// sha256("abc") from FIPS 180-2, appendix B.1; the others from `printf %s X | sha256sum`.
constexpr char kAbcDigest[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr char kEmptyDigest[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kReaderDigest[] =  // reader-token-1
    "8ed7a3cb498a69b97157eb5c685b8831eabdc118fce9a4c75425920ab3ddf6e0";
constexpr char kAdminDigest[] =  // admin-token-1
    "01a9119ca65b23539bbc977f36d9318334c72052593c35edb34cf3b162ec7136";

TEST(Sha256Test, MatchesPublishedDigests) {
  EXPECT_EQ(Sha256Hex("abc"), kAbcDigest);
  EXPECT_EQ(Sha256Hex(""), kEmptyDigest);
  EXPECT_EQ(Sha256Hex("reader-token-1"), kReaderDigest);
}

TEST(Sha256Test, ParsesHexOfEitherCaseOnly) {
  std::optional<Sha256Digest> lower = ParseSha256Hex(kAbcDigest);
  ASSERT_TRUE(lower.has_value());
  EXPECT_EQ((*lower)[0], 0xba);
  EXPECT_EQ((*lower)[31], 0xad);
  std::string upper = kAbcDigest;
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  ASSERT_TRUE(ParseSha256Hex(upper).has_value());
  EXPECT_TRUE(DigestsEqual(*lower, *ParseSha256Hex(upper)));
  EXPECT_FALSE(ParseSha256Hex(std::string(kAbcDigest).substr(1)).has_value());
  EXPECT_FALSE(ParseSha256Hex(absl::StrCat(kAbcDigest, "0")).has_value());
  std::string bad = kAbcDigest;
  bad[10] = 'g';
  EXPECT_FALSE(ParseSha256Hex(bad).has_value());
  Sha256Digest other = *lower;
  other[31] ^= 1;
  EXPECT_FALSE(DigestsEqual(*lower, other));
}

TEST(TokenTableTest, FindsThePrincipalOfEachToken) {
  absl::StatusOr<TokenTable> t =
      TokenTable::Parse(absl::StrCat("# comment\n\n  rita reader ", kReaderDigest,
                                     "  \r\nada\tadmin\t", kAdminDigest, "\n"),
                        "tokens");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->size(), 2u);
  std::optional<Principal> p = t->Find("reader-token-1");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->name, "rita");
  EXPECT_EQ(p->role, Role::kReader);
  p = t->Find("admin-token-1");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->name, "ada");
  EXPECT_EQ(p->role, Role::kAdmin);
  EXPECT_FALSE(t->Find("admin-token-").has_value());
  EXPECT_FALSE(t->Find("admin-token-1 ").has_value());
  EXPECT_FALSE(t->Find(kAdminDigest).has_value());  // the digest is not the token
  EXPECT_FALSE(t->Find("").has_value());
}

TEST(TokenTableTest, AnEmptyFileAcceptsNoToken) {
  absl::StatusOr<TokenTable> t = TokenTable::Parse("# nobody yet\n", "tokens");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_FALSE(t->Find("").has_value());
  EXPECT_FALSE(t->Find("anything").has_value());
}

TEST(TokenTableTest, RejectsMalformedFilesNamingTheLine) {
  const std::string ok = absl::StrCat("rita reader ", kReaderDigest, "\n");
  struct Case {
    std::string contents;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"rita reader\n", "line 1: expected '<name> <role> <sha256-hex-of-token>', found 2"},
      {absl::StrCat(ok, "x reader ", kAdminDigest, " extra\n"), "line 2: expected"},
      {absl::StrCat("bob owner ", kAdminDigest, "\n"), "unknown role 'owner'"},
      {absl::StrCat("b/ob reader ", kAdminDigest, "\n"), "line 1: the name must be"},
      {absl::StrCat(std::string(65, 'a'), " reader ", kAdminDigest, "\n"), "the name must be"},
      {"bob admin my-clear-token\n", "SHA-256 as 64 hex digits"},
      {absl::StrCat(ok, "rita admin ", kAdminDigest, "\n"), "line 2: the name 'rita' is already"},
      {absl::StrCat(ok, "ada admin ", kReaderDigest, "\n"), "line 2: the same token is already"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<TokenTable> t = TokenTable::Parse(c.contents, "tokens.txt");
    ASSERT_FALSE(t.ok()) << c.contents;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << c.contents;
    EXPECT_THAT(std::string(t.status().message()), HasSubstr("tokens.txt line")) << c.contents;
    EXPECT_THAT(std::string(t.status().message()), HasSubstr(c.message)) << c.contents;
    // A clear token mistakenly put in the file is not repeated in logs.
    EXPECT_THAT(std::string(t.status().message()), Not(HasSubstr("my-clear-token")));
  }
}

TEST(TokenTableTest, LoadReportsUnreadableFiles) {
  absl::StatusOr<TokenTable> t = TokenTable::Load("/nonexistent/flowvi/tokens");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("/nonexistent/flowvi/tokens"));
  t = TokenTable::Load(::testing::TempDir());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("not a regular file"));
}

TEST(BasicAuthTest, MatchesOnlyTheUserAndPassword) {
  // sha256("abc"): the password is "abc".
  absl::StatusOr<BasicAuthCredential> c =
      BasicAuthCredential::Parse(absl::StrCat("# prometheus\nprom ", kAbcDigest, "\n"), "f");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->Matches("prom", "abc"));
  EXPECT_FALSE(c->Matches("prom", "abd"));
  EXPECT_FALSE(c->Matches("prom", ""));
  EXPECT_FALSE(c->Matches("Prom", "abc"));
  EXPECT_FALSE(c->Matches("", "abc"));
  for (const std::string& bad :
       {std::string(""), std::string("prom\n"),
        absl::StrCat("prom ", kAbcDigest, "\nx ", kAbcDigest), std::string("prom abc")}) {
    EXPECT_EQ(BasicAuthCredential::Parse(bad, "f").status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(AddressTest, TellsLoopbackFromEverythingElse) {
  for (const char* a :
       {"127.0.0.1:50051", "127.0.0.1:0", "127.1.2.3:1", "localhost:50051", "LOCALHOST:1",
        "[::1]:50051", "[::ffff:127.0.0.1]:5", "unix:/tmp/sock", "unix-abstract:flowvi"}) {
    EXPECT_TRUE(IsLoopbackAddress(a)) << a;
  }
  for (const char* a : {"0.0.0.0:50051", ":50051", "9464", "[::]:50051", "10.0.0.1:50051",
                        "128.0.0.1:1", "example.com:50051", "::1:50051", "[::1:5", "",
                        "127.0.0.1.evil.com:1", "[::ffff:10.0.0.1]:5"}) {
    EXPECT_FALSE(IsLoopbackAddress(a)) << a;
  }
}

ServerOptions Loopback() {
  ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.metrics_listen = "127.0.0.1:0";
  return o;
}

TEST(SecurityOptionsTest, LoopbackNeedsNothing) {
  std::vector<std::string> warnings;
  EXPECT_TRUE(CheckSecurityOptions(Loopback(), &warnings).ok());
  EXPECT_TRUE(warnings.empty());
}

TEST(SecurityOptionsTest, OtherAddressesNeedTlsTokensAndMetricsAuthOrInsecure) {
  ServerOptions o = Loopback();
  o.listen = "0.0.0.0:50051";
  std::vector<std::string> warnings;
  absl::Status s = CheckSecurityOptions(o, &warnings);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("--tls_cert"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("--insecure"));

  o.tls_cert_file = "cert.pem";
  o.tls_key_file = "key.pem";
  s = CheckSecurityOptions(o, &warnings);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("--tokens_file"));

  o.tokens_file = "tokens";
  EXPECT_TRUE(CheckSecurityOptions(o, &warnings).ok());

  o.metrics_listen = "0.0.0.0:9464";
  s = CheckSecurityOptions(o, &warnings);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("--metrics_auth_file"));
  o.metrics_auth_file = "metrics-auth";
  EXPECT_TRUE(CheckSecurityOptions(o, &warnings).ok());
  EXPECT_TRUE(warnings.empty());

  ServerOptions open = Loopback();
  open.listen = "[::]:50051";
  open.metrics_listen = "9464";
  open.insecure = true;
  EXPECT_TRUE(CheckSecurityOptions(open, &warnings).ok());
  EXPECT_EQ(warnings.size(), 3u);  // no TLS, no tokens, open metrics
}

TEST(SecurityOptionsTest, HalfATlsConfigurationIsRefused) {
  std::vector<std::string> warnings;
  ServerOptions o = Loopback();
  o.tls_cert_file = "cert.pem";
  EXPECT_EQ(CheckSecurityOptions(o, &warnings).code(), absl::StatusCode::kInvalidArgument);
  o = Loopback();
  o.tls_key_file = "key.pem";
  EXPECT_EQ(CheckSecurityOptions(o, &warnings).code(), absl::StatusCode::kInvalidArgument);
  o = Loopback();
  o.tls_client_ca_file = "ca.pem";
  absl::Status s = CheckSecurityOptions(o, &warnings);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("--tls_client_ca"));
}

TEST(SecurityOptionsTest, TheServerRefusesToStartOnAnOpenAddress) {
  ServerOptions o = Loopback();
  o.listen = "0.0.0.0:0";
  o.metrics_listen = "";
  absl::StatusOr<std::unique_ptr<Server>> s = Server::BuildAndStart(o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  o.tokens_file = "/nonexistent/flowvi/tokens";
  o.insecure = true;
  s = Server::BuildAndStart(o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  o.tokens_file = "";
  o.tls_cert_file = "/nonexistent/cert.pem";
  o.tls_key_file = "/nonexistent/key.pem";
  s = Server::BuildAndStart(o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("--tls_cert"));
}

TEST(RequestLimitsTest, MeasuresTextAndNumbersAnywhereInATarget) {
  v1::Target t;
  t.mutable_builtin()->set_name("gaussian");  // 8 bytes
  v1::ParamValue mean;
  for (int i = 0; i < 5; ++i) mean.mutable_real_vector()->add_values(i);
  (*t.mutable_builtin()->mutable_params())["mean"] = mean;  // key: 4 bytes, 5 values
  v1::ParamValue text;
  text.set_text("[1,2,3]");                                // 7 bytes
  (*t.mutable_builtin()->mutable_params())["cov"] = text;  // key: 3 bytes
  const MessageSize size = MeasureMessage(t);
  EXPECT_EQ(size.text_bytes, 8 + 4 + 7 + 3);
  EXPECT_EQ(size.numeric_values, 5);

  Limits lim;
  lim.model.max_program_bytes = 22;
  lim.max_data_values = 5;
  EXPECT_TRUE(CheckTargetSize(t, lim).ok());
  lim.model.max_program_bytes = 21;
  absl::Status s = CheckTargetSize(t, lim);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(s.message()), HasSubstr("--max_program_kb"));
  lim.model.max_program_bytes = 22;
  lim.max_data_values = 4;
  s = CheckTargetSize(t, lim);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(s.message()), HasSubstr("--max_data_values"));
}

}  // namespace
}  // namespace flowvi::server
