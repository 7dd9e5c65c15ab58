// Calls any method of a server by its full name with raw request bytes (for tests that go
// over every method of a service, or send bytes no stub would): one request message, then every
// response message until the status. Works for unary and server-streaming methods alike (the
// wire form is the same). Header-only: tests/server builds every *_test.cc into one binary.
#ifndef FLOWVI_TESTS_SERVER_GENERIC_CALL_H_
#define FLOWVI_TESTS_SERVER_GENERIC_CALL_H_

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace flowvi::server::testing {

struct GenericResult {
  grpc::Status status;
  std::vector<std::string> responses;
};

class GenericCallReactor : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  GenericCallReactor(grpc::GenericStub* stub, const std::string& method, const std::string& bytes,
                     const std::vector<std::pair<std::string, std::string>>& metadata,
                     absl::Duration timeout) {
    grpc::Slice slice(bytes);
    request_ = grpc::ByteBuffer(&slice, 1);
    for (const auto& [key, value] : metadata) ctx_.AddMetadata(key, value);
    ctx_.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
    stub->PrepareBidiStreamingCall(&ctx_, method, grpc::StubOptions(), this);
    StartWriteLast(&request_, grpc::WriteOptions());
    StartRead(&response_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    std::vector<grpc::Slice> slices;
    std::string out;
    if (response_.Dump(&slices).ok()) {
      for (const grpc::Slice& s : slices) {
        out.append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
    }
    {
      absl::MutexLock lock(&mu_);
      result_.responses.push_back(std::move(out));
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& s) override {
    absl::MutexLock lock(&mu_);
    result_.status = s;
    done_ = true;
  }

  GenericResult Await() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
    return result_;
  }

 private:
  grpc::ClientContext ctx_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  GenericResult result_ ABSL_GUARDED_BY(mu_);
};

// `method` is "/package.Service/Method".
inline GenericResult GenericCall(
    const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
    const std::string& bytes, const std::vector<std::pair<std::string, std::string>>& metadata = {},
    absl::Duration timeout = absl::Seconds(30)) {
  grpc::GenericStub stub(channel);
  GenericCallReactor reactor(&stub, method, bytes, metadata, timeout);
  return reactor.Await();
}

}  // namespace flowvi::server::testing

#endif  // FLOWVI_TESTS_SERVER_GENERIC_CALL_H_
