// Hostile clients: every method of the service gets bytes that are not its request message,
// requests over the receive limit, and well-formed requests with absurd values. Each gets the
// code the API promises, and the server goes on serving (a crash would fail every later call).
// Authentication is on, so the requests reach the handlers' own checks as an admin would.
#include <unistd.h>

#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/server/generic_call.h"
#include "tests/server/test_server.h"

namespace flowvi::server::testing {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using Code = grpc::StatusCode;

constexpr char kAdminToken[] = "admin-token-1";
constexpr int kReceiveLimit = 1 << 20;

class FuzzRequestsTest : public ServerTest {
 protected:
  FuzzRequestsTest() : tokens_path_(absl::StrCat(::testing::TempDir(), "/fuzz_tokens_", getpid())) {
    std::ofstream(tokens_path_)
        << "ada admin 01a9119ca65b23539bbc977f36d9318334c72052593c35edb34cf3b162ec7136\n";
  }

  ServerOptions Options() const override {
    ServerOptions o = TestServerOptions();
    o.tokens_file = tokens_path_;
    o.limits.max_receive_message_bytes = kReceiveLimit;
    o.limits.max_samples = 1000;
    o.limits.max_points = 100;
    o.limits.model.max_program_bytes = 1024;
    o.limits.max_data_values = 1000;
    return o;
  }

  void SetUp() override {
    ServerTest::SetUp();
    ASSERT_NE(server_, nullptr);
    GenericResult r = Call("SubmitFit", FitRequest("m", 100).SerializeAsString());
    ASSERT_THAT(r.status, IsOk());
  }

  GenericResult Call(const std::string& method, const std::string& bytes) {
    return GenericCall(channel_, absl::StrCat("/flowvi.v1.FlowVI/", method), bytes,
                       {{"authorization", absl::StrCat("Bearer ", kAdminToken)}});
  }

  static std::vector<std::string> Methods() {
    std::vector<std::string> out;
    const google::protobuf::ServiceDescriptor* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName("flowvi.v1.FlowVI");
    for (int i = 0; i < service->method_count(); ++i) out.push_back(service->method(i)->name());
    return out;
  }

  void ExpectStillServing() {
    GenericResult r = Call("ListLayers", "");
    EXPECT_THAT(r.status, IsOk());
    GenericResult health = GenericCall(channel_, "/grpc.health.v1.Health/Check", "");
    ASSERT_THAT(health.status, IsOk());
    ASSERT_EQ(health.responses.size(), 1u);
    EXPECT_EQ(health.responses[0], std::string("\x08\x01", 2));  // SERVING
  }

  std::string tokens_path_;
};

TEST_F(FuzzRequestsTest, BytesThatAreNoMessageAreInvalidArguments) {
  // Each fails to parse as any message: a truncated varint, a field number 0, a length beyond
  // the end, the deprecated group wire types, an end-group with no start.
  const std::vector<std::string> garbage = {
      std::string("\x08", 1),
      std::string("\x08\xff\xff", 3),
      std::string("\x00\x01", 2),
      std::string("\x0a\x7f"
                  "abc",
                  5),
      std::string("\x0b", 1),
      std::string("\x0c", 1),
      std::string("\x0a\xff\xff\xff\xff\x0f", 6),
  };
  for (const std::string& method : Methods()) {
    for (const std::string& bytes : garbage) {
      GenericResult r = Call(method, bytes);
      EXPECT_THAT(r.status, StatusIs(Code::INVALID_ARGUMENT,
                                     HasSubstr("does not parse as the request message of "
                                               "flowvi.v1.FlowVI/" +
                                               method)));
    }
  }
  ExpectStillServing();
}

TEST_F(FuzzRequestsTest, RandomBytesNeverCrashOrGiveUnexpectedCodes) {
  std::mt19937 rng(20261121);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> length(1, 64);
  for (const std::string& method : Methods()) {
    for (int i = 0; i < 40; ++i) {
      std::string bytes(length(rng), '\0');
      for (char& c : bytes) c = static_cast<char>(byte(rng));
      GenericResult r = Call(method, bytes);
      // Unparsable: INTERNAL. Parsable by luck: the handlers' own validation (or success for
      // the methods that ignore their request, a job that ended for CancelJob).
      EXPECT_THAT(r.status.error_code(), AnyOf(Code::OK, Code::INTERNAL, Code::INVALID_ARGUMENT,
                                               Code::NOT_FOUND, Code::FAILED_PRECONDITION))
          << method << ": " << r.status.error_message();
    }
  }
  ExpectStillServing();
}

TEST_F(FuzzRequestsTest, RequestsOverTheReceiveLimitAreResourceExhausted) {
  // A valid LogDensityRequest-shaped payload just over the limit; every method refuses it
  // before parsing.
  v1::LogDensityRequest big;
  big.set_model("m");
  big.set_dim(2);
  big.mutable_points()->Resize(kReceiveLimit / 8 + 2, 0.5);
  const std::string bytes = big.SerializeAsString();
  ASSERT_GT(bytes.size(), static_cast<size_t>(kReceiveLimit));
  for (const std::string& method : Methods()) {
    GenericResult r = Call(method, bytes);
    EXPECT_THAT(r.status, StatusIs(Code::RESOURCE_EXHAUSTED)) << method;
  }
  ExpectStillServing();
}

TEST_F(FuzzRequestsTest, AbsurdValuesGetTheirOwnErrors) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  struct Case {
    std::string method;
    std::string bytes;
    Code code;
    std::string message;
  };
  std::vector<Case> cases;
  auto add = [&](const std::string& method, const google::protobuf::Message& m, Code code,
                 const std::string& message = "") {
    cases.push_back({method, m.SerializeAsString(), code, message});
  };

  add("SubmitFit", v1::SubmitFitRequest(), Code::INVALID_ARGUMENT);
  v1::SubmitFitRequest fit = FitRequest(std::string(10000, 'x'));
  add("SubmitFit", fit, Code::INVALID_ARGUMENT, "model_name");
  fit = FitRequest("m");
  fit.mutable_options()->set_iterations(-1);
  add("SubmitFit", fit, Code::INVALID_ARGUMENT, "iterations");
  fit = FitRequest("m");
  v1::ParamValue long_text;
  long_text.set_text(std::string(2000, '1'));
  (*fit.mutable_target()->mutable_builtin()->mutable_params())["dim"] = long_text;
  add("SubmitFit", fit, Code::RESOURCE_EXHAUSTED, "--max_program_kb");
  fit = FitRequest("m");
  v1::ParamValue many;
  many.mutable_real_vector()->mutable_values()->Resize(1001, 0.0);
  (*fit.mutable_target()->mutable_builtin()->mutable_params())["mean"] = many;
  add("SubmitFit", fit, Code::RESOURCE_EXHAUSTED, "--max_data_values");

  v1::WatchJobRequest watch;
  watch.set_job_id("job-000001");
  watch.set_from_iteration(-5);
  add("WatchJob", watch, Code::INVALID_ARGUMENT, "from_iteration");
  watch.set_from_iteration(0);
  watch.set_job_id(std::string("\xff\xfe\0job", 6));  // proto3 strings must be UTF-8
  add("WatchJob", watch, Code::INVALID_ARGUMENT, "does not parse");

  v1::GetJobRequest get_job;
  get_job.set_job_id(std::string(100000, 'j'));  // quoted in the error, which is cut short
  add("GetJob", get_job, Code::NOT_FOUND, "more bytes)");

  v1::ListJobsRequest list;
  list.set_page_size(-1);
  add("ListJobs", list, Code::INVALID_ARGUMENT, "page_size");
  list.set_page_size(0);
  list.set_page_token("before-not-a-number");
  add("ListJobs", list, Code::INVALID_ARGUMENT, "page_token");

  v1::CancelJobRequest cancel;
  cancel.set_job_id("");
  add("CancelJob", cancel, Code::NOT_FOUND);

  v1::GetModelRequest get_model;
  get_model.set_model("../../etc/passwd");
  add("GetModel", get_model, Code::INVALID_ARGUMENT);
  v1::DeleteModelRequest del;
  del.set_model("m/-1");
  add("DeleteModel", del, Code::INVALID_ARGUMENT);
  v1::SetAliasRequest alias;
  alias.set_name("m");
  alias.set_alias("7");
  alias.set_version(1);
  add("SetAlias", alias, Code::INVALID_ARGUMENT);

  v1::SampleRequest sample;
  sample.set_model("m");
  for (int64_t n : {int64_t{0}, int64_t{-1}, std::numeric_limits<int64_t>::min()}) {
    sample.set_n(n);
    add("Sample", sample, Code::INVALID_ARGUMENT, "n must be at least 1");
  }
  for (int64_t n : {int64_t{1001}, std::numeric_limits<int64_t>::max()}) {
    sample.set_n(n);
    // Exact integers in the message, not 9.22337e+18.
    add("Sample", sample, Code::RESOURCE_EXHAUSTED,
        absl::StrCat("n is ", n, ", over this server's limit of 1000 (--max_samples)"));
  }
  sample.set_n(10);
  sample.set_chunk_size(-3);
  add("Sample", sample, Code::INVALID_ARGUMENT, "chunk_size");

  v1::LogDensityRequest density;
  density.set_model("m");
  for (int dim : {0, -1, 3, std::numeric_limits<int>::max()}) {
    density.set_dim(dim);
    density.add_points(0.0);
    add("LogDensity", density, Code::INVALID_ARGUMENT, "dim");
  }
  density.set_dim(2);
  density.clear_points();
  density.add_points(1.0);
  add("LogDensity", density, Code::INVALID_ARGUMENT, "multiple");
  density.add_points(nan);
  add("LogDensity", density, Code::INVALID_ARGUMENT, "not finite");
  density.mutable_points()->Resize(2 * 101, 0.0);
  add("LogDensity", density, Code::RESOURCE_EXHAUSTED, "limit of 100 (--max_points)");

  v1::TargetLogDensityRequest target_density;
  target_density.mutable_target()->mutable_builtin()->set_name("u1");
  target_density.set_dim(0);
  add("TargetLogDensity", target_density, Code::INVALID_ARGUMENT, "dim");
  target_density.set_dim(2);
  target_density.add_points(nan);
  target_density.add_points(0.0);
  add("TargetLogDensity", target_density, Code::INVALID_ARGUMENT, "not finite");
  target_density.mutable_target()->mutable_builtin()->set_name(std::string(5000, 'u'));
  add("TargetLogDensity", target_density, Code::RESOURCE_EXHAUSTED, "--max_program_kb");
  target_density.mutable_target()->mutable_builtin()->set_name("u1");
  target_density.mutable_points()->Resize(2 * 101, 0.0);
  add("TargetLogDensity", target_density, Code::RESOURCE_EXHAUSTED, "limit of 100 (--max_points)");
  target_density.mutable_points()->Resize(3, 0.0);
  add("TargetLogDensity", target_density, Code::INVALID_ARGUMENT, "multiple of dim 2");

  for (const Case& c : cases) {
    GenericResult r = Call(c.method, c.bytes);
    EXPECT_THAT(r.status, StatusIs(c.code, HasSubstr(c.message)))
        << c.method << " with " << c.bytes.size() << " bytes";
  }
  ExpectStillServing();
}

}  // namespace
}  // namespace flowvi::server::testing
