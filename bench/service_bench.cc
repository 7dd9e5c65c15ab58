// End-to-end service benchmark over gRPC on loopback (issue #3):
//   - Sample of 1e5 draws and LogDensity of 1e5 points from a planar*32 2-D model, under 1 and
//     16 concurrent clients: throughput and p50/p99 latency;
//   - the cost of watching: the same fit with 8 WatchJob streams against none.
// It starts an in-process flowvi server on an ephemeral loopback port and stops it at the end.
// Bounded: each load phase runs for --seconds (default 3) per client count.
//
//   build/bench/service_bench [--seconds=3] [--fit_iterations=20000] [--fit_repeats=3]
//                             [--progress_interval_ms=100]
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "bench/trained_model.h"
#include "flowvi/v1/service.grpc.pb.h"
#include "server/registry.h"
#include "server/server.h"

ABSL_FLAG(double, seconds, 3.0, "duration of each load phase");
ABSL_FLAG(int64_t, fit_iterations, 20000, "iterations of the fit used for the watcher test");
ABSL_FLAG(int, fit_repeats, 3, "alternating repeats of the fit with and without watchers");
ABSL_FLAG(int, progress_interval_ms, 100, "the server's progress interval (100 is its default)");

namespace flowvi {
namespace {

using Clock = std::chrono::steady_clock;

std::unique_ptr<v1::FlowVI::Stub> NewStub(const std::string& address, int id) {
  grpc::ChannelArguments args;
  args.SetInt("flowvi.bench.client", id);  // distinct args: a connection per client
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  return v1::FlowVI::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
}

struct LoadResult {
  int64_t calls = 0;
  int64_t errors = 0;
  std::vector<double> latencies_ms;
  double seconds = 0;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

template <typename Call>
LoadResult RunLoad(const std::string& address, int clients, double seconds, Call call) {
  std::vector<LoadResult> per(clients);
  std::vector<std::thread> threads;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  const auto start = Clock::now();
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto stub = NewStub(address, c);
      for (int64_t i = 0; Clock::now() < end; ++i) {
        const auto t0 = Clock::now();
        const bool ok = call(*stub, c * 1000003 + i);
        per[c].latencies_ms.push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        ++per[c].calls;
        if (!ok) ++per[c].errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  LoadResult all;
  all.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto& r : per) {
    all.calls += r.calls;
    all.errors += r.errors;
    all.latencies_ms.insert(all.latencies_ms.end(), r.latencies_ms.begin(), r.latencies_ms.end());
  }
  return all;
}

void Print(const char* what, int clients, const LoadResult& r, int64_t items_per_call) {
  std::printf(
      "%-28s clients %2d  calls %5lld  errors %lld  %8.1f calls/s  %11.0f items/s  "
      "p50 %8.2f ms  p99 %8.2f ms\n",
      what, clients, static_cast<long long>(r.calls), static_cast<long long>(r.errors),
      static_cast<double>(r.calls) / r.seconds,
      static_cast<double>(r.calls * items_per_call) / r.seconds, Percentile(r.latencies_ms, 0.5),
      Percentile(r.latencies_ms, 0.99));
  std::fflush(stdout);
}

double Seconds(const google::protobuf::Timestamp& a, const google::protobuf::Timestamp& b) {
  return static_cast<double>(b.seconds() - a.seconds()) + 1e-9 * (b.nanos() - a.nanos());
}

// Runs one fit to completion with `watchers` WatchJob streams reading it; returns its
// duration from start to end as the server recorded it.
double TimedFit(const std::string& address, int watchers, int64_t iterations, int run) {
  auto stub = NewStub(address, 9000 + run);
  v1::SubmitFitRequest req;
  req.mutable_target()->mutable_builtin()->set_name("u1");
  req.mutable_flow()->set_text("planar*32");
  req.mutable_options()->set_iterations(iterations);
  req.mutable_options()->set_anneal_iterations(10000);
  req.mutable_options()->set_diagnostic_draws(1000);
  req.set_model_name("watchbench");
  v1::Job job;
  grpc::ClientContext ctx;
  if (!stub->SubmitFit(&ctx, req, &job).ok()) return -1;
  std::vector<std::thread> threads;
  std::atomic<int64_t> events{0};
  for (int w = 0; w < watchers; ++w) {
    threads.emplace_back([&, w] {
      auto s = NewStub(address, 10000 + 100 * run + w);
      grpc::ClientContext wctx;
      v1::WatchJobRequest wr;
      wr.set_job_id(job.id());
      auto reader = s->WatchJob(&wctx, wr);
      v1::WatchJobEvent ev;
      while (reader->Read(&ev)) events.fetch_add(1);
      (void)reader->Finish();
    });
  }
  v1::Job done;
  while (true) {
    grpc::ClientContext gctx;
    v1::GetJobRequest g;
    g.set_job_id(job.id());
    if (stub->GetJob(&gctx, g, &done).ok() && done.done()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (auto& t : threads) t.join();
  if (done.state() != v1::JOB_STATE_SUCCEEDED) return -1;
  return Seconds(done.start_time(), done.end_time());
}

int Main() {
  server::ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.metrics_listen = "";
  options.workers = 1;
  options.progress_interval = absl::Milliseconds(absl::GetFlag(FLAGS_progress_interval_ms));
  absl::StatusOr<std::unique_ptr<server::Server>> srv = server::Server::BuildAndStart(options);
  if (!srv.ok()) {
    std::fprintf(stderr, "server: %s\n", std::string(srv.status().message()).c_str());
    return 1;
  }
  const std::string address = (*srv)->address();

  if (absl::Status s = bench::RegisterTrainedU1Model(**srv, "bench", 5000); !s.ok()) {
    std::fprintf(stderr, "model: %s\n", std::string(s.message()).c_str());
    return 1;
  }

  const double seconds = absl::GetFlag(FLAGS_seconds);
  constexpr int64_t kN = 100000;
  // Points for LogDensity: draws of the model itself.
  std::vector<double> points;
  {
    auto stub = NewStub(address, 0);
    grpc::ClientContext ctx;
    v1::SampleRequest req;
    req.set_model("bench");
    req.set_n(kN);
    req.set_seed(1);
    auto reader = stub->Sample(&ctx, req);
    v1::SampleChunk chunk;
    while (reader->Read(&chunk))
      points.insert(points.end(), chunk.values().begin(), chunk.values().end());
    if (!reader->Finish().ok() || points.size() != 2 * kN) return 1;
  }
  v1::LogDensityRequest ld;
  ld.set_model("bench");
  ld.set_dim(2);
  ld.mutable_points()->Add(points.begin(), points.end());

  std::printf(
      "flowvi service benchmark: planar*32 on 2-D (u1), %lld draws / points per call, "
      "loopback gRPC, %d cores\n",
      static_cast<long long>(kN), static_cast<int>(std::thread::hardware_concurrency()));
  for (int clients : {1, 16}) {
    LoadResult r = RunLoad(address, clients, seconds, [&](v1::FlowVI::Stub& stub, int64_t seed) {
      grpc::ClientContext ctx;
      v1::SampleRequest req;
      req.set_model("bench");
      req.set_n(kN);
      req.set_seed(static_cast<uint64_t>(seed));
      auto reader = stub.Sample(&ctx, req);
      v1::SampleChunk chunk;
      int64_t got = 0;
      while (reader->Read(&chunk)) got += chunk.log_q_size();
      return reader->Finish().ok() && got == kN;
    });
    Print("Sample(1e5)", clients, r, kN);
    r = RunLoad(address, clients, seconds, [&](v1::FlowVI::Stub& stub, int64_t) {
      grpc::ClientContext ctx;
      v1::LogDensityResponse resp;
      return stub.LogDensity(&ctx, ld, &resp).ok() && resp.log_q_size() == kN;
    });
    Print("LogDensity(1e5)", clients, r, kN);
  }

  const int64_t iterations = absl::GetFlag(FLAGS_fit_iterations);
  std::vector<double> alone, watched;
  for (int run = 0; run < absl::GetFlag(FLAGS_fit_repeats); ++run) {
    alone.push_back(TimedFit(address, 0, iterations, 2 * run));
    watched.push_back(TimedFit(address, 8, iterations, 2 * run + 1));
  }
  const double a = Percentile(alone, 0.5), w = Percentile(watched, 0.5);
  std::printf(
      "fit u1 planar*32, %lld iterations, progress every %d ms: median %.3f s alone, "
      "%.3f s with 8 watchers: %+.1f%%\n",
      static_cast<long long>(iterations), absl::GetFlag(FLAGS_progress_interval_ms), a, w,
      100.0 * (w - a) / a);
  (*srv)->Shutdown();
  return 0;
}

}  // namespace
}  // namespace flowvi

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return flowvi::Main();
}
