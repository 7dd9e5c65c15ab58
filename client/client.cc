#include "client/client.h"

#include <grpcpp/generic/generic_stub.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace flowvi::client {
namespace {

constexpr char kExitCodePayload[] = "flowvi.dev/cli-exit-code";
constexpr char kDefaultServer[] = "127.0.0.1:50051";

// Loopback addresses never go through an HTTP proxy from the environment.
bool IsLoopback(absl::string_view address) {
  absl::ConsumePrefix(&address, "dns:///");
  absl::ConsumePrefix(&address, "ipv4:");
  absl::ConsumePrefix(&address, "ipv6:");
  return absl::StartsWith(address, "127.") || absl::StartsWith(address, "localhost:") ||
         address == "localhost" || absl::StartsWith(address, "[::1]");
}

// "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Failed to connect
// to remote host: Connection refused" -> "connection refused".
std::string ConnectReason(absl::string_view message) {
  const std::string lower = absl::AsciiStrToLower(message);
  if (absl::StrContains(lower, "connection refused")) return "connection refused";
  if (absl::StrContains(lower, "dns resolution failed") ||
      absl::StrContains(lower, "name or service not known")) {
    return "cannot resolve the host name";
  }
  if (absl::StrContains(lower, "timeout") || absl::StrContains(lower, "timed out")) {
    return "connection timed out";
  }
  if (absl::StrContains(lower, "shutting down")) return std::string(message);
  if (absl::StrContains(lower, "handshake") || absl::StrContains(lower, "ssl") ||
      absl::StrContains(lower, "certificate")) {
    return "TLS handshake failed";
  }
  return "";
}

}  // namespace

absl::Status WithExitCode(absl::Status status, ExitCode code) {
  status.SetPayload(kExitCodePayload, absl::Cord(absl::StrCat(static_cast<int>(code))));
  return status;
}

absl::Status UsageError(absl::string_view message) {
  return WithExitCode(absl::InvalidArgumentError(message), kExitUsage);
}

absl::Status BadInputError(absl::string_view message) {
  return WithExitCode(absl::InvalidArgumentError(message), kExitBadInput);
}

absl::Status JobFailedError(absl::string_view message) {
  return WithExitCode(absl::AbortedError(message), kExitJobFailed);
}

absl::Status InterruptedError(absl::string_view message) {
  return WithExitCode(absl::CancelledError(message), kExitInterrupted);
}

int ExitCodeOf(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  if (auto payload = status.GetPayload(kExitCodePayload)) {
    int code = 0;
    if (absl::SimpleAtoi(std::string(*payload), &code)) return code;
  }
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnreachable;
    case absl::StatusCode::kNotFound:
      return kExitNotFound;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return kExitInvalid;
    case absl::StatusCode::kUnauthenticated:
      return kExitUnauthenticated;
    case absl::StatusCode::kPermissionDenied:
      return kExitPermissionDenied;
    default:
      return kExitError;
  }
}

std::string OneLine(absl::string_view message) {
  std::string out = absl::StrReplaceAll(absl::StripAsciiWhitespace(message),
                                        {{"\r\n", "; "}, {"\n", "; "}, {"\r", "; "}});
  return out;
}

std::string DefaultServerAddress() {
  const char* env = std::getenv("FLOWVI_SERVER");
  if (env != nullptr && *env != '\0') return env;
  return kDefaultServer;
}

Client::Client(ClientOptions options) : options_(std::move(options)) {
  if (options_.server.empty()) options_.server = DefaultServerAddress();
  grpc::ChannelArguments args;
  if (IsLoopback(options_.server)) args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  // Large Sample/LogDensity messages: the server bounds them, not the client.
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (options_.tls) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options_.ca_pem;
    ssl.pem_cert_chain = options_.cert_pem;
    ssl.pem_private_key = options_.key_pem;
    credentials = grpc::SslCredentials(ssl);
  }
  channel_ = grpc::CreateCustomChannel(options_.server, credentials, args);
  stub_ = v1::FlowVI::NewStub(channel_);
}

std::unique_ptr<grpc::ClientContext> Client::NewContext(bool deadline) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (deadline) ctx->set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  if (!options_.token.empty()) ctx->AddMetadata("authorization", "Bearer " + options_.token);
  return ctx;
}

absl::Status Client::FromRpc(const grpc::Status& status, absl::string_view what) const {
  const std::string message = OneLine(status.error_message());
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      return absl::OkStatus();
    case grpc::StatusCode::UNAVAILABLE: {
      std::string reason = ConnectReason(message);
      if (reason.empty()) reason = message.empty() ? "unavailable" : message;
      if (reason == "TLS handshake failed") {
        return absl::UnavailableError(absl::StrCat(
            "cannot reach the flowvi server at ", options_.server,
            " (TLS handshake failed: is its certificate signed by the CA given with --ca, and "
            "for its name? does it require a client certificate, --cert and --key?)"));
      }
      return absl::UnavailableError(absl::StrCat(
          "cannot reach the flowvi server at ", options_.server, " (", reason,
          "); is flowvi-server running", options_.tls ? "" : ", and without TLS (else --tls)",
          "? (--server or FLOWVI_SERVER sets the address)"));
    }
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return absl::DeadlineExceededError(absl::StrCat(
          "no answer from the flowvi server at ", options_.server, " within ",
          absl::FormatDuration(options_.timeout), " while ", what, " (--timeout sets the limit)"));
    case grpc::StatusCode::UNIMPLEMENTED:
      return absl::UnimplementedError(
          absl::StrCat("the server at ", options_.server, " does not implement this call (", what,
                       "); is it a flowvi server of the same version?"));
    case grpc::StatusCode::CANCELLED:
      return absl::CancelledError(absl::StrCat(what, ": cancelled"));
    case grpc::StatusCode::UNAUTHENTICATED:
      return absl::UnauthenticatedError(
          absl::StrCat("not authenticated while ", what, ": ", message));
    case grpc::StatusCode::PERMISSION_DENIED:
      return absl::PermissionDeniedError(
          absl::StrCat("permission denied while ", what, ": ", message));
    default:
      break;
  }
  const auto code = static_cast<absl::StatusCode>(status.error_code());
  return absl::Status(code, message.empty() ? absl::StrCat(what, " failed") : message);
}

absl::StatusOr<v1::Model> Client::GetModel(absl::string_view ref, bool include_parameters) {
  v1::GetModelRequest request;
  request.set_model(std::string(ref));
  request.set_include_parameters(include_parameters);
  return Call(&v1::FlowVI::Stub::GetModel, request, absl::StrCat("getting model ", ref));
}

absl::StatusOr<v1::Job> Client::GetJob(absl::string_view id) {
  v1::GetJobRequest request;
  request.set_job_id(std::string(id));
  return Call(&v1::FlowVI::Stub::GetJob, request, absl::StrCat("getting job ", id));
}

absl::StatusOr<std::string> Client::HealthCheck() {
  // grpc.health.v1.HealthCheckRequest{service: ""} is the empty message; the response is
  // HealthCheckResponse{status = 1 (enum)}. Encoded by hand: the client has no generated code
  // for the health service, and two fields do not justify it.
  grpc::GenericStub generic(channel_);
  std::unique_ptr<grpc::ClientContext> ctx = NewContext();
  grpc::ByteBuffer request;
  grpc::Slice empty("");
  request = grpc::ByteBuffer(&empty, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  generic.UnaryCall(ctx.get(), "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                    &response, [&](grpc::Status s) {
                      status = std::move(s);
                      done.Notify();
                    });
  done.WaitForNotification();
  if (!status.ok()) return FromRpc(status, "checking health");
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return absl::InternalError("unreadable health response");
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  uint32_t value = 0;  // UNKNOWN when absent
  while (uint32_t tag = in.ReadTag()) {
    if (tag == 8) {  // field 1, varint
      if (!in.ReadVarint32(&value)) return absl::InternalError("unreadable health response");
    } else if (!google::protobuf::internal::WireFormatLite::SkipField(&in, tag)) {
      return absl::InternalError("unreadable health response");
    }
  }
  switch (value) {
    case 1:
      return std::string("SERVING");
    case 2:
      return std::string("NOT_SERVING");
    case 3:
      return std::string("SERVICE_UNKNOWN");
    default:
      return std::string("UNKNOWN");
  }
}

}  // namespace flowvi::client
