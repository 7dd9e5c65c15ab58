// Jobs over time: cancelling a running or queued fit, watching (concurrent, resumed, slow
// watchers), the bounded queue, and priority order.
#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "tests/server/test_server.h"

namespace flowvi::server::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

class JobsTest : public ServerTest {};

TEST_F(JobsTest, CancelMidFitEndsCancelledAndRegistersNothing) {
  const v1::Job submitted = SubmitOk(LongFitRequest("long"));
  const v1::Job running = WaitRunning(submitted.id(), 10);
  ASSERT_EQ(running.state(), v1::JOB_STATE_RUNNING);

  // A watcher attached while it runs sees it end CANCELLED.
  WatchResult watched;
  std::thread watcher([&] { watched = Watch(submitted.id()); });
  // Let the watcher attach and receive some progress.
  WaitRunning(submitted.id(), running.progress().iteration() + 1);
  absl::SleepFor(absl::Milliseconds(50));

  v1::Job cancelled;
  ASSERT_THAT(CancelJob(submitted.id(), &cancelled), IsOk());
  EXPECT_EQ(cancelled.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_TRUE(cancelled.done());
  EXPECT_EQ(cancelled.error_code(), static_cast<int>(grpc::StatusCode::CANCELLED));
  EXPECT_THAT(cancelled.error_message(), HasSubstr("CancelJob"));
  EXPECT_EQ(cancelled.model_ref(), "");
  EXPECT_GT(cancelled.progress().iteration(), 0);
  EXPECT_LT(cancelled.progress().iteration(), cancelled.progress().total_iterations());
  watcher.join();

  ExpectWellFormedWatch(watched, v1::JOB_STATE_CANCELLED);
  EXPECT_THAT(ProgressIterations(watched), Not(IsEmpty()));
  // A watch started afterwards ends the same way.
  ExpectWellFormedWatch(Watch(submitted.id()), v1::JOB_STATE_CANCELLED);

  EXPECT_THAT(AllModels(), IsEmpty());
  v1::Model model;
  EXPECT_THAT(GetModel("long", &model), StatusIs(grpc::StatusCode::NOT_FOUND));
  // The fit really stopped: its progress no longer moves.
  v1::Job later;
  absl::SleepFor(absl::Milliseconds(50));
  ASSERT_THAT(GetJob(submitted.id(), &later), IsOk());
  EXPECT_EQ(later.progress().iteration(), cancelled.progress().iteration());
  EXPECT_EQ(later.state(), v1::JOB_STATE_CANCELLED);
}

// A cancel that arrives after the last iteration, while the final diagnostics are computed
// (the job is still RUNNING), is honoured: the job ends CANCELLED and registers nothing.
TEST_F(JobsTest, CancelDuringDiagnosticsEndsCancelled) {
  v1::SubmitFitRequest r = FitRequest("m", 200, "planar*8");
  r.mutable_options()->set_diagnostic_draws(1000000);  // a few hundred ms of diagnostics
  const v1::Job submitted = SubmitOk(r);
  const v1::Job trained = WaitRunning(submitted.id(), 200);
  ASSERT_EQ(trained.state(), v1::JOB_STATE_RUNNING);
  ASSERT_EQ(trained.progress().iteration(), 200);

  v1::Job cancelled;
  ASSERT_THAT(CancelJob(submitted.id(), &cancelled), IsOk());
  EXPECT_EQ(cancelled.state(), v1::JOB_STATE_CANCELLED) << cancelled.ShortDebugString();
  EXPECT_EQ(cancelled.model_ref(), "");
  EXPECT_THAT(AllModels(), IsEmpty());
  ExpectWellFormedWatch(Watch(submitted.id()), v1::JOB_STATE_CANCELLED);
}

TEST_F(JobsTest, TwoConcurrentWatchersBothSeeTheWholeFit) {
  constexpr int64_t kIterations = 20000;  // a fit of a few hundred ms, so both attach mid-fit
  const v1::Job submitted = SubmitOk(FitRequest("m", kIterations));
  WatchResult a, b;
  std::thread ta([&] { a = Watch(submitted.id()); });
  std::thread tb([&] { b = Watch(submitted.id()); });
  ta.join();
  tb.join();
  for (const WatchResult* w : {&a, &b}) {
    ExpectWellFormedWatch(*w, v1::JOB_STATE_SUCCEEDED);
    ASSERT_FALSE(w->events.empty());
    EXPECT_EQ(w->events.front().snapshot().id(), submitted.id());
    EXPECT_FALSE(w->events.front().snapshot().done()) << "the watcher attached after the fit";
    const std::vector<int64_t> its = ProgressIterations(*w);
    ASSERT_FALSE(its.empty());
    EXPECT_EQ(its.back(), kIterations);
    for (const v1::WatchJobEvent& e : w->events) {
      if (e.has_progress()) {
        EXPECT_EQ(e.progress().total_iterations(), kIterations);
      }
    }
    EXPECT_EQ(w->events.back().final().model_ref(), "m/1");
    EXPECT_TRUE(w->events.back().final().has_diagnostics());
  }
}

TEST_F(JobsTest, WatchResumesAfterAnIteration) {
  constexpr int64_t kIterations = 20000;  // long enough for several progress reports
  const v1::Job done = FitAndWait(FitRequest("m", kIterations));
  ASSERT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED);

  const WatchResult full = Watch(done.id());
  ExpectWellFormedWatch(full, v1::JOB_STATE_SUCCEEDED);
  const std::vector<int64_t> all = ProgressIterations(full);
  ASSERT_GE(all.size(), 2u) << "the fit was too quick to report progress more than once";
  EXPECT_EQ(all.back(), kIterations);

  for (const int64_t k : {all[all.size() / 2], all[0], all[0] - 1, kIterations - 1}) {
    const WatchResult resumed = Watch(done.id(), k);
    ExpectWellFormedWatch(resumed, v1::JOB_STATE_SUCCEEDED);
    std::vector<int64_t> expected;
    std::copy_if(all.begin(), all.end(), std::back_inserter(expected),
                 [k](int64_t it) { return it > k; });
    EXPECT_EQ(ProgressIterations(resumed), expected) << "from_iteration " << k;
  }
  // Resuming from the end: the snapshot and the final job only.
  const WatchResult at_end = Watch(done.id(), kIterations);
  ExpectWellFormedWatch(at_end, v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(at_end.events.size(), 2u);
  const WatchResult past_end = Watch(done.id(), 100 * kIterations);
  ExpectWellFormedWatch(past_end, v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(past_end.events.size(), 2u);
}

// A watcher that stops reading neither blocks nor slows the fit, and when it reads again it
// gets the job's latest state, not a backlog of stale progress. The watcher's channel has a
// tiny HTTP/2 window (and no BDP probing) so that the server cannot run ahead of it into the
// transport's buffers.
TEST_F(JobsTest, SlowWatcherGetsTheLatestStateAndDoesNotHoldUpTheFit) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 0);
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  std::unique_ptr<v1::FlowVI::Stub> slow_stub = v1::FlowVI::NewStub(
      grpc::CreateCustomChannel(server_->address(), grpc::InsecureChannelCredentials(), args));

  constexpr int64_t kIterations = 100000;  // long enough for 10+ progress events
  const v1::Job submitted = SubmitOk(FitRequest("m", kIterations));
  std::unique_ptr<grpc::ClientContext> ctx = Context();
  v1::WatchJobRequest request;
  request.set_job_id(submitted.id());
  std::unique_ptr<grpc::ClientReader<v1::WatchJobEvent>> reader =
      slow_stub->WatchJob(ctx.get(), request);
  v1::WatchJobEvent event;
  ASSERT_TRUE(reader->Read(&event));
  ASSERT_TRUE(event.has_snapshot());

  // Read nothing while the fit runs to the end.
  const v1::Job done = WaitDone(submitted.id());
  ASSERT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED);

  std::vector<v1::WatchJobEvent> rest;
  while (reader->Read(&event)) rest.push_back(event);
  EXPECT_THAT(reader->Finish(), IsOk());
  ASSERT_FALSE(rest.empty());
  ASSERT_TRUE(rest.back().has_final());
  EXPECT_EQ(rest.back().final().state(), v1::JOB_STATE_SUCCEEDED);
  int64_t last = 0;
  for (size_t i = 0; i + 1 < rest.size(); ++i) {
    ASSERT_TRUE(rest[i].has_progress()) << rest[i].ShortDebugString();
    EXPECT_GT(rest[i].progress().iteration(), last);
    last = rest[i].progress().iteration();
  }
  EXPECT_EQ(last, kIterations);
  // Most of the progress was skipped: the slow watcher got the latest, not the backlog.
  const std::vector<int64_t> all = ProgressIterations(Watch(submitted.id()));
  ASSERT_GE(all.size(), 10u) << "the fit was too quick to test a slow watcher";
  EXPECT_LT(rest.size() - 1, all.size() / 2)
      << "the slow watcher got " << rest.size() - 1 << " of " << all.size() << " progress events";

  // The same fit with no watcher takes about as long: the watcher cost it nothing noticeable.
  const v1::Job unwatched = FitAndWait(FitRequest("m", kIterations));
  ASSERT_EQ(unwatched.state(), v1::JOB_STATE_SUCCEEDED);
  const absl::Duration watched_time = ToTime(done.end_time()) - ToTime(done.start_time());
  const absl::Duration unwatched_time =
      ToTime(unwatched.end_time()) - ToTime(unwatched.start_time());
  EXPECT_LT(watched_time, 3 * unwatched_time + absl::Milliseconds(200))
      << "watched " << watched_time << ", unwatched " << unwatched_time;
}

// A watcher that never reads again and goes away does not break the job or the server.
TEST_F(JobsTest, AbandonedWatcherDoesNotBreakTheJob) {
  const v1::Job submitted = SubmitOk(FitRequest("m", 3000));
  {
    std::unique_ptr<grpc::ClientContext> ctx = Context();
    v1::WatchJobRequest request;
    request.set_job_id(submitted.id());
    std::unique_ptr<grpc::ClientReader<v1::WatchJobEvent>> reader =
        stub_->WatchJob(ctx.get(), request);
    v1::WatchJobEvent event;
    ASSERT_TRUE(reader->Read(&event));
    ctx->TryCancel();
    while (reader->Read(&event)) {
    }
    EXPECT_THAT(reader->Finish(), StatusIs(grpc::StatusCode::CANCELLED));
  }
  const v1::Job done = WaitDone(submitted.id());
  EXPECT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED);
  ExpectWellFormedWatch(Watch(submitted.id()), v1::JOB_STATE_SUCCEEDED);
}

// One worker, a queue of two.
class SmallQueueTest : public ServerTest {
 protected:
  ServerOptions Options() const override {
    ServerOptions o = TestServerOptions();
    o.workers = 1;
    o.max_queued = 2;
    return o;
  }
};

TEST_F(SmallQueueTest, FullQueueIsResourceExhausted) {
  const v1::Job running = SubmitOk(LongFitRequest("a"));
  ASSERT_EQ(WaitRunning(running.id()).state(), v1::JOB_STATE_RUNNING);
  const v1::Job q1 = SubmitOk(FitRequest("b", 100));
  const v1::Job q2 = SubmitOk(FitRequest("c", 100));
  EXPECT_EQ(q1.state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(q2.state(), v1::JOB_STATE_QUEUED);

  v1::Job job;
  EXPECT_THAT(Submit(FitRequest("d", 100), &job),
              StatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED, HasSubstr("queue is full")));
  EXPECT_EQ(AllJobs().size(), 3u);
  // A new request with an idempotency key is refused too.
  v1::SubmitFitRequest keyed = FitRequest("e", 100);
  keyed.set_client_request_id("k");
  EXPECT_THAT(Submit(keyed, &job), StatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED));

  // Cancelling a queued job ends it at once, ends its watches, and frees its place.
  WatchResult watched;
  std::thread watcher([&] { watched = Watch(q2.id()); });
  absl::SleepFor(absl::Milliseconds(20));  // let the watcher attach (either way it must end)
  v1::Job cancelled;
  ASSERT_THAT(CancelJob(q2.id(), &cancelled), IsOk());
  watcher.join();
  ExpectWellFormedWatch(watched, v1::JOB_STATE_CANCELLED);
  EXPECT_THAT(ProgressIterations(watched), IsEmpty());
  EXPECT_EQ(cancelled.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_FALSE(cancelled.has_start_time());
  EXPECT_THAT(cancelled.error_message(), HasSubstr("queued"));
  const v1::Job q3 = SubmitOk(keyed);
  // The queue is full again, but a retry of an accepted request still gets its job.
  EXPECT_EQ(SubmitOk(keyed).id(), q3.id());
  EXPECT_THAT(Submit(FitRequest("d", 100), &job), StatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED));

  // Cancel everything; the worker then runs nothing that was cancelled.
  for (const std::string& id : {q1.id(), q3.id(), running.id()}) {
    ASSERT_THAT(CancelJob(id, &cancelled), IsOk()) << id;
    EXPECT_EQ(cancelled.state(), v1::JOB_STATE_CANCELLED) << id;
  }
  v1::ListJobsRequest cancelled_only;
  cancelled_only.add_states(v1::JOB_STATE_CANCELLED);
  v1::ListJobsResponse resp;
  ASSERT_THAT(ListJobs(cancelled_only, &resp), IsOk());
  EXPECT_EQ(resp.jobs_size(), 4);
  EXPECT_THAT(AllModels(), IsEmpty());

  // The queue has room again.
  const v1::Job after = FitAndWait(FitRequest("f", 100));
  EXPECT_EQ(after.state(), v1::JOB_STATE_SUCCEEDED);
}

// One worker: queued jobs run by priority, ties in submission order.
class PriorityTest : public ServerTest {
 protected:
  ServerOptions Options() const override {
    ServerOptions o = TestServerOptions();
    o.workers = 1;
    return o;
  }

  // Occupies the worker with a long fit, queues `requests`, releases the worker, waits for them
  // all, and returns their names in the order they started.
  std::vector<std::string> RunOrder(const std::vector<v1::SubmitFitRequest>& requests) {
    const v1::Job blocker = SubmitOk(LongFitRequest("blocker"));
    EXPECT_EQ(WaitRunning(blocker.id()).state(), v1::JOB_STATE_RUNNING);
    std::vector<std::string> ids;
    for (const v1::SubmitFitRequest& r : requests) {
      const v1::Job job = SubmitOk(r);
      EXPECT_EQ(job.state(), v1::JOB_STATE_QUEUED);
      ids.push_back(job.id());
    }
    v1::Job cancelled;
    EXPECT_THAT(CancelJob(blocker.id(), &cancelled), IsOk());
    EXPECT_EQ(cancelled.state(), v1::JOB_STATE_CANCELLED);
    std::vector<v1::Job> done;
    for (const std::string& id : ids) {
      done.push_back(WaitDone(id));
      EXPECT_EQ(done.back().state(), v1::JOB_STATE_SUCCEEDED) << done.back().ShortDebugString();
    }
    std::sort(done.begin(), done.end(), [](const v1::Job& a, const v1::Job& b) {
      return ToTime(a.start_time()) < ToTime(b.start_time());
    });
    std::vector<std::string> order;
    for (size_t i = 0; i < done.size(); ++i) {
      order.push_back(done[i].model_name());
      // One worker: each started after the one before it ended.
      if (i > 0) {
        EXPECT_GE(ToTime(done[i].start_time()), ToTime(done[i - 1].end_time()));
      }
    }
    return order;
  }
};

TEST_F(PriorityTest, HigherPriorityRunsFirst) {
  std::vector<v1::SubmitFitRequest> requests;
  for (const auto& [name, priority] :
       std::vector<std::pair<std::string, int>>{{"p0", 0}, {"p5", 5}, {"p1", 1}, {"pm3", -3}}) {
    v1::SubmitFitRequest r = FitRequest(name, 100);
    r.set_priority(priority);
    requests.push_back(r);
  }
  EXPECT_THAT(RunOrder(requests), ElementsAre("p5", "p1", "p0", "pm3"));
}

TEST_F(PriorityTest, EqualPrioritiesRunInSubmissionOrder) {
  std::vector<v1::SubmitFitRequest> requests;
  for (const auto& [name, priority] : std::vector<std::pair<std::string, int>>{
           {"a", 2}, {"b", 2}, {"c", 7}, {"d", 2}, {"e", 7}, {"f", 0}}) {
    v1::SubmitFitRequest r = FitRequest(name, 100);
    r.set_priority(priority);
    requests.push_back(r);
  }
  EXPECT_THAT(RunOrder(requests), ElementsAre("c", "e", "a", "b", "d", "f"));
}

}  // namespace
}  // namespace flowvi::server::testing
