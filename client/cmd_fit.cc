// fit, watch, jobs, cancel.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/commands.h"
#include "client/io.h"
#include "client/output.h"

namespace flowvi::client {
namespace {

// Ctrl-C while watching: the first stops the watch (the job goes on unless
// --cancel-on-interrupt); a second one ends the process at once.
std::atomic<bool> g_interrupted{false};

void OnInterrupt(int) {
  if (g_interrupted.exchange(true)) _exit(kExitInterrupted);
}

void InstallInterruptHandler() {
  struct sigaction sa = {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
}

// Cancels `ctx` when Ctrl-C arrives, from a helper thread (gRPC calls are not
// async-signal-safe).
class InterruptWatcher {
 public:
  explicit InterruptWatcher(grpc::ClientContext* ctx)
      : thread_([this, ctx] {
          while (!done_.load()) {
            if (g_interrupted.load()) {
              ctx->TryCancel();
              return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
          }
        }) {}
  ~InterruptWatcher() {
    done_.store(true);
    thread_.join();
  }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

std::string JobTitle(const v1::Job& job) {
  std::string s =
      absl::StrCat(job.id(), ": ", TargetText(job.target()), " with ", FlowText(job.flow()));
  if (job.dim() > 0) {
    absl::StrAppend(&s, " (", job.dim(), job.dim() == 1 ? " dimension, " : " dimensions, ",
                    Thousands(job.num_params()), " parameters)");
  }
  if (!job.model_name().empty()) absl::StrAppend(&s, " -> model ", job.model_name());
  return s;
}

std::string ProgressLine(const v1::Job& job, const v1::Progress& p) {
  const int64_t total =
      p.total_iterations() > 0 ? p.total_iterations() : job.options().iterations();
  const double pct =
      total > 0 ? 100.0 * static_cast<double>(p.iteration()) / static_cast<double>(total) : 0.0;
  std::string line = absl::StrFormat("%s  %s/%s (%3.0f%%)", job.id(), Thousands(p.iteration()),
                                     Thousands(total), pct);
  if (job.target().has_data()) {
    // A density fit: log-likelihoods (nats per point) instead of the ELBO.
    absl::StrAppend(&line, "  train LL ",
                    p.has_train_log_likelihood() ? Fixed(p.train_log_likelihood(), 4) : "-");
    if (p.has_held_out_log_likelihood()) {
      absl::StrAppend(&line, "  held-out LL ", Fixed(p.held_out_log_likelihood(), 4));
    }
  } else {
    absl::StrAppend(&line, "  ELBO ", Fixed(p.elbo(), 4));
  }
  if (p.iterations_per_second() > 0) {
    absl::StrAppend(&line, "  ", Thousands(std::llround(p.iterations_per_second())), " it/s");
  }
  if (p.iteration() < total) {
    absl::StrAppend(&line, "  ETA ",
                    p.iterations_per_second() > 0 ? Seconds(p.eta_seconds()) : "-");
  } else {
    absl::StrAppend(&line, "  ", Seconds(p.elapsed_seconds()));
  }
  return line;
}

// Shows progress on standard error: one line redrawn in place on a terminal, plain lines at
// every tenth of the run otherwise.
class ProgressView {
 public:
  ProgressView(bool tty, bool quiet) : tty_(tty), quiet_(quiet) {}

  void Title(const v1::Job& job) {
    if (quiet_) return;
    Err(absl::StrCat(JobTitle(job), "\n"));
  }

  void State(const v1::Job& job) {
    if (quiet_ || job.state() != v1::JOB_STATE_QUEUED || queued_shown_) return;
    queued_shown_ = true;
    Show(absl::StrCat(job.id(), "  queued (waiting for a fit worker)"));
  }

  // A job that had ended before the watch began: its recorded progress is not replayed.
  void SkipProgress() { skip_ = true; }

  void Update(const v1::Job& job, const v1::Progress& p) {
    if (quiet_ || skip_) return;
    const int64_t total = p.total_iterations() > 0 ? p.total_iterations() : 1;
    const int64_t tenth = std::min<int64_t>(10, p.iteration() * 10 / total);
    if (tty_) {
      const absl::Time now = absl::Now();
      if (now - last_draw_ < absl::Milliseconds(80) && p.iteration() < total) return;
      last_draw_ = now;
      Show(ProgressLine(job, p));
    } else if (tenth > last_tenth_) {
      last_tenth_ = tenth;
      Show(ProgressLine(job, p));
    }
  }

  // Leaves the terminal on a fresh line.
  void End() {
    if (tty_ && drawn_) Err("\n");
    drawn_ = false;
  }

 private:
  void Show(const std::string& line) {
    if (tty_) {
      Err(absl::StrCat("\r\033[K", line));
      drawn_ = true;
    } else {
      Err(absl::StrCat(line, "\n"));
    }
  }

  bool tty_;
  bool quiet_;
  bool skip_ = false;
  bool queued_shown_ = false;
  bool drawn_ = false;
  int64_t last_tenth_ = 0;
  absl::Time last_draw_ = absl::InfinitePast();
};

std::string Hint(const std::string& id) {
  return absl::StrCat("re-attach with 'flowvi watch ", id, "', cancel with 'flowvi cancel ", id,
                      "'");
}

// Prints what a finished job produced; an error status for a failed or cancelled one.
absl::Status ReportFinal(Context& ctx, const v1::Job& job, bool quiet) {
  if (job.state() == v1::JOB_STATE_SUCCEEDED) {
    if (ctx.json) {
      Out(ToJson(job));
    } else if (quiet) {
      Out(absl::StrCat(job.model_ref(), "\n"));
    } else {
      const double seconds = job.progress().elapsed_seconds();
      Out(absl::StrCat(job.id(), " succeeded: model ", job.model_ref(), " (",
                       TargetText(job.target()), ", ", FlowText(job.flow()), ", ",
                       Thousands(job.options().iterations()), " iterations",
                       seconds > 0 ? absl::StrCat(" in ", Seconds(seconds)) : "", ")\n"));
      if (job.has_density_fit()) {
        Out(DensityFitText(job.density_fit(), 2));
      } else {
        Out(DiagnosticsText(job.diagnostics(), 2));
      }
    }
    return absl::OkStatus();
  }
  if (ctx.json) Out(ToJson(job));
  if (job.state() == v1::JOB_STATE_CANCELLED) {
    return JobFailedError(absl::StrCat(
        job.id(), " was cancelled",
        job.error_message().empty() ? "" : absl::StrCat(" (", OneLine(job.error_message()), ")")));
  }
  return JobFailedError(absl::StrCat(
      job.id(),
      " failed: ", job.error_message().empty() ? "no reason given" : OneLine(job.error_message())));
}

absl::Status CancelJob(Context& ctx, const std::string& id, v1::Job* out) {
  v1::CancelJobRequest request;
  request.set_job_id(id);
  absl::StatusOr<v1::Job> job =
      ctx.client.Call(&v1::FlowVI::Stub::CancelJob, request, absl::StrCat("cancelling ", id));
  if (!job.ok()) return job.status();
  *out = *std::move(job);
  return absl::OkStatus();
}

// Follows a job to its end. Ctrl-C stops following (and cancels it with cancel_on_interrupt).
absl::Status Watch(Context& ctx, const std::string& id, int64_t from_iteration,
                   bool cancel_on_interrupt, bool quiet) {
  InstallInterruptHandler();
  ProgressView view(ctx.stderr_tty, quiet || (ctx.json && !ctx.stderr_tty));
  v1::WatchJobRequest request;
  request.set_job_id(id);
  request.set_from_iteration(from_iteration);
  std::unique_ptr<grpc::ClientContext> rpc = ctx.client.NewContext(/*deadline=*/false);
  v1::Job job;
  bool have_final = false;
  v1::ServerStopping stopping;
  bool have_stopping = false;
  grpc::Status status;
  {
    InterruptWatcher interrupt(rpc.get());
    std::unique_ptr<grpc::ClientReader<v1::WatchJobEvent>> reader =
        ctx.client.stub()->WatchJob(rpc.get(), request);
    v1::WatchJobEvent event;
    while (reader->Read(&event)) {
      switch (event.event_case()) {
        case v1::WatchJobEvent::kSnapshot:
          job = event.snapshot();
          view.Title(job);
          view.State(job);
          if (job.done()) view.SkipProgress();
          break;
        case v1::WatchJobEvent::kProgress:
          *job.mutable_progress() = event.progress();
          if (job.state() == v1::JOB_STATE_QUEUED) job.set_state(v1::JOB_STATE_RUNNING);
          view.Update(job, event.progress());
          break;
        case v1::WatchJobEvent::kFinal:
          job = event.final();
          have_final = true;
          break;
        case v1::WatchJobEvent::kStopping:
          stopping = event.stopping();
          have_stopping = true;
          break;
        case v1::WatchJobEvent::EVENT_NOT_SET:
          break;
      }
    }
    status = reader->Finish();
  }
  view.End();
  if (g_interrupted.load() && !have_final) {
    if (job.id().empty()) job.set_id(id);
    if (cancel_on_interrupt) {
      v1::Job cancelled;
      absl::Status s = CancelJob(ctx, id, &cancelled);
      if (!s.ok()) {
        return InterruptedError(
            absl::StrCat("interrupted; cancelling ", id, " failed: ", s.message()));
      }
      return InterruptedError(absl::StrCat("interrupted; ", id, " ", StateText(cancelled.state())));
    }
    return InterruptedError(
        absl::StrCat("stopped watching ", id, "; it keeps running on the server: ", Hint(id)));
  }
  if (have_stopping && !have_final) {
    return WithExitCode(
        absl::UnavailableError(absl::StrCat(
            "the server is shutting down",
            stopping.message().empty() ? "" : absl::StrCat(" (", OneLine(stopping.message()), ")"),
            "; ", id, " resumes when it restarts: re-attach with 'flowvi watch ", id,
            " --from-iteration ", stopping.last_iteration(), "'")),
        kExitUnreachable);
  }
  if (!status.ok()) return ctx.client.FromRpc(status, absl::StrCat("watching ", id));
  if (!have_final) {
    // The stream ended without the final event (should not happen): ask once.
    absl::StatusOr<v1::Job> latest = ctx.client.GetJob(id);
    if (!latest.ok()) return latest.status();
    job = *std::move(latest);
    if (!job.done()) {
      return absl::UnknownError(absl::StrCat("the watch of ", id, " ended early; ", Hint(id)));
    }
  }
  return ReportFinal(ctx, job, quiet);
}

absl::Status AddParam(const std::string& text, v1::BuiltinTarget* target) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return UsageError(
        absl::StrCat("--param '", text, "': expected NAME=VALUE, e.g. centered=false"));
  }
  (*target->mutable_params())[text.substr(0, eq)].set_text(text.substr(eq + 1));
  return absl::OkStatus();
}

// The target of `flowvi fit`: a built-in named by the first positional argument, a program
// (--model FILE [--data FILE.json]) or a 2-D expression (--expr). Returns the default model name.
absl::StatusOr<std::string> SetTarget(const Args& a, v1::Target* target) {
  const bool program = a.Has("model"), expr = a.Has("expr");
  // Without --model, --data is a points file: fit the data's density.
  const bool points = a.Has("data") && !program;
  const size_t want = program || expr || points ? 1 : 2;
  if (program && expr) return UsageError("give --model or --expr, not both");
  if (points && expr) return UsageError("give --data POINTS or --expr, not both");
  if (a.positional().size() != want) {
    return UsageError(want == 1 ? "with --model, --expr or --data POINTS give only FLOW, e.g. "
                                  "'realnvp*4'"
                                : "give TARGET and FLOW (or --model FILE / --expr EXPR / "
                                  "--data POINTS and FLOW)");
  }
  if (points) {
    if (!a.Values("param").empty()) return UsageError("--param does not apply to --data POINTS");
    const std::string path = a.ValueOr("data", "");
    absl::StatusOr<Table> table = ReadTable(path);
    if (!table.ok()) return table.status();
    v1::DataSet* data = target->mutable_data();
    data->set_dim(table->cols);
    data->mutable_values()->Add(table->values.begin(), table->values.end());
    for (const std::string& h : table->header) data->add_column_names(h);
    std::string name = path.substr(path.find_last_of('/') + 1);
    name = name.substr(0, name.find('.'));
    return name.empty() || name == "-" ? std::string("data") : name;
  }
  if (!a.Values("param").empty() && want == 1) {  // --model or --expr
    return UsageError("--param sets a built-in target's parameters; a program takes --data");
  }
  if (expr) {
    target->set_expression(a.ValueOr("expr", ""));
    return std::string("expr");
  }
  if (program) {
    const std::string path = a.ValueOr("model", "");
    absl::StatusOr<std::string> source = ReadFile(path);
    if (!source.ok()) return source.status();
    target->mutable_program()->set_source(*std::move(source));
    if (a.Has("data")) {
      absl::StatusOr<std::string> data = ReadFile(a.ValueOr("data", ""));
      if (!data.ok()) return data.status();
      target->mutable_program()->set_data_json(*std::move(data));
    }
    // "models/eight_schools.stan" registers as "eight_schools".
    std::string name = path.substr(path.find_last_of('/') + 1);
    name = name.substr(0, name.find('.'));
    return name.empty() ? std::string("model") : name;
  }
  v1::BuiltinTarget* builtin = target->mutable_builtin();
  builtin->set_name(a.positional()[0]);
  for (const std::string& p : a.Values("param")) {
    if (absl::Status s = AddParam(p, builtin); !s.ok()) return s;
  }
  return a.positional()[0];
}

// Values per SubmitFitStream chunk: 1 MiB of doubles. Larger data sets go through the stream.
constexpr size_t kChunkValues = (1 << 20) / sizeof(double);

// SubmitFitStream: the request without values, then the points in ~1 MiB chunks.
absl::StatusOr<v1::Job> SubmitStreamed(Context& ctx, v1::SubmitFitRequest request) {
  std::vector<double> values(request.target().data().values().begin(),
                             request.target().data().values().end());
  request.mutable_target()->mutable_data()->clear_values();
  std::unique_ptr<grpc::ClientContext> rpc = ctx.client.NewContext();
  v1::Job job;
  std::unique_ptr<grpc::ClientWriter<v1::SubmitFitChunk>> writer =
      ctx.client.stub()->SubmitFitStream(rpc.get(), &job);
  v1::SubmitFitChunk chunk;
  *chunk.mutable_request() = std::move(request);
  chunk.set_num_values(static_cast<int64_t>(values.size()));
  bool open = writer->Write(chunk);
  for (size_t start = 0; open && start < values.size(); start += kChunkValues) {
    chunk.Clear();
    const size_t end = std::min(values.size(), start + kChunkValues);
    chunk.mutable_values()->Add(values.begin() + static_cast<std::ptrdiff_t>(start),
                                values.begin() + static_cast<std::ptrdiff_t>(end));
    open = writer->Write(chunk);  // false: the server has answered early (an error)
  }
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  if (!s.ok()) return ctx.client.FromRpc(s, "submitting the fit");
  return job;
}

absl::Status RunFit(Context& ctx) {
  const Args& a = ctx.args;
  v1::SubmitFitRequest request;
  absl::StatusOr<std::string> default_name = SetTarget(a, request.mutable_target());
  if (!default_name.ok()) return default_name.status();
  request.mutable_flow()->set_text(a.positional().back());
  request.set_model_name(a.ValueOr("name", *default_name));
  v1::FitOptions* o = request.mutable_options();
  int64_t iters = -1, anneal = -1, draws = -1;
  int batch = -1, priority = 0;
  double lr = -1, clip = -1;
  uint64_t seed = 0;
  for (absl::Status s :
       {a.Get("iters", &iters), a.Get("batch", &batch), a.Get("lr", &lr), a.Get("seed", &seed),
        a.Get("anneal", &anneal), a.Get("max-grad-norm", &clip), a.Get("diagnostic-draws", &draws),
        a.Get("priority", &priority)}) {
    if (!s.ok()) return s;
  }
  if (a.Has("iters")) o->set_iterations(iters);
  if (a.Has("batch")) o->set_batch_size(batch);
  if (a.Has("lr")) o->set_learning_rate(lr);
  if (a.Has("seed")) o->set_seed(seed);
  if (a.Has("anneal")) o->set_anneal_iterations(anneal);
  if (a.Has("max-grad-norm")) o->set_max_grad_norm(clip);
  if (a.Has("diagnostic-draws")) o->set_diagnostic_draws(draws);
  double validation = -1;
  int patience = -1;
  int64_t eval_every = -1;
  for (absl::Status s : {a.Get("validation", &validation), a.Get("patience", &patience),
                         a.Get("eval-interval", &eval_every)}) {
    if (!s.ok()) return s;
  }
  if (a.Has("validation")) o->set_validation_fraction(validation);
  if (a.Has("patience")) o->set_patience(patience);
  if (a.Has("eval-interval")) o->set_eval_interval(eval_every);
  if (std::optional<std::string> opt = a.Value("optimizer")) {
    const std::string name = absl::AsciiStrToLower(*opt);
    if (name == "adam") {
      o->set_optimizer(v1::OPTIMIZER_ADAM);
    } else if (name == "rmsprop") {
      o->set_optimizer(v1::OPTIMIZER_RMSPROP);
    } else {
      return UsageError(absl::StrCat("--optimizer: '", *opt, "' is not adam or rmsprop"));
    }
  }
  request.set_priority(priority);
  request.set_client_request_id(a.ValueOr("request-id", ""));
  absl::StatusOr<v1::Job> job =
      request.target().has_data() &&
              request.target().data().values_size() > static_cast<int>(kChunkValues)
          ? SubmitStreamed(ctx, std::move(request))
          : ctx.client.Call(&v1::FlowVI::Stub::SubmitFit, request, "submitting the fit");
  if (!job.ok()) return job.status();
  const bool quiet = a.Switch("quiet");
  if (a.Switch("detach")) {
    if (ctx.json) {
      Out(ToJson(*job));
    } else if (quiet) {
      Out(absl::StrCat(job->id(), "\n"));
    } else {
      Out(absl::StrCat("submitted ", JobTitle(*job), "\n  watch with 'flowvi watch ", job->id(),
                       "', cancel with 'flowvi cancel ", job->id(), "'\n"));
    }
    return absl::OkStatus();
  }
  return Watch(ctx, job->id(), 0, a.Switch("cancel-on-interrupt"), quiet);
}

absl::Status RunWatch(Context& ctx) {
  int64_t from = 0;
  if (absl::Status s = ctx.args.Get("from-iteration", &from); !s.ok()) return s;
  return Watch(ctx, ctx.args.positional()[0], from, ctx.args.Switch("cancel-on-interrupt"),
               ctx.args.Switch("quiet"));
}

absl::StatusOr<std::vector<v1::JobState>> ParseStates(const std::string& text) {
  std::vector<v1::JobState> out;
  for (absl::string_view s : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    const std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(s));
    v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
    for (v1::JobState candidate :
         {v1::JOB_STATE_QUEUED, v1::JOB_STATE_RUNNING, v1::JOB_STATE_SUCCEEDED,
          v1::JOB_STATE_FAILED, v1::JOB_STATE_CANCELLED}) {
      if (StateText(candidate) == name) state = candidate;
    }
    if (name == "canceled") state = v1::JOB_STATE_CANCELLED;
    if (state == v1::JOB_STATE_UNSPECIFIED) {
      return UsageError(absl::StrCat("--state: '", s,
                                     "' is not one of queued, running, succeeded, failed, "
                                     "cancelled"));
    }
    out.push_back(state);
  }
  return out;
}

absl::Status RunJobs(Context& ctx) {
  int64_t limit = 50;
  if (absl::Status s = ctx.args.Get("limit", &limit); !s.ok()) return s;
  if (limit < 1) return UsageError("--limit must be at least 1");
  v1::ListJobsRequest request;
  if (std::optional<std::string> states = ctx.args.Value("state")) {
    absl::StatusOr<std::vector<v1::JobState>> parsed = ParseStates(*states);
    if (!parsed.ok()) return parsed.status();
    for (v1::JobState s : *parsed) request.add_states(s);
  }
  v1::ListJobsResponse all;
  while (all.jobs_size() < limit) {
    request.set_page_size(static_cast<int>(std::min<int64_t>(1000, limit - all.jobs_size())));
    absl::StatusOr<v1::ListJobsResponse> page =
        ctx.client.Call(&v1::FlowVI::Stub::ListJobs, request, "listing jobs");
    if (!page.ok()) return page.status();
    for (v1::Job& j : *page->mutable_jobs()) *all.add_jobs() = std::move(j);
    if (page->next_page_token().empty()) break;
    request.set_page_token(page->next_page_token());
  }
  if (ctx.json) {
    Out(ToJson(all));
    return absl::OkStatus();
  }
  if (all.jobs().empty()) {
    Err("no jobs\n");
    return absl::OkStatus();
  }
  TextTable t({"JOB", "STATE", "MODEL", "TARGET", "FLOW", "PROGRESS", "ELBO", "AGE"});
  for (const v1::Job& j : all.jobs()) {
    const int64_t total = j.options().iterations();
    std::string progress =
        j.state() == v1::JOB_STATE_SUCCEEDED
            ? "100%"
            : (total > 0 ? absl::StrFormat("%.0f%%",
                                           100.0 * static_cast<double>(j.progress().iteration()) /
                                               static_cast<double>(total))
                         : "-");
    std::string elbo = "-";
    if (j.target().has_data()) {
      // A density fit: its held-out (else train) log-likelihood, marked as such.
      const v1::DensityFit& f = j.density_fit();
      const v1::Progress& p = j.progress();
      if (j.has_density_fit()) {
        elbo =
            absl::StrCat("LL ", Fixed(f.has_held_out_log_likelihood() ? f.held_out_log_likelihood()
                                                                      : f.train_log_likelihood(),
                                      4));
      } else if (p.has_held_out_log_likelihood() || p.has_train_log_likelihood()) {
        elbo =
            absl::StrCat("LL ", Fixed(p.has_held_out_log_likelihood() ? p.held_out_log_likelihood()
                                                                      : p.train_log_likelihood(),
                                      4));
      }
    } else if (j.state() == v1::JOB_STATE_SUCCEEDED) {
      elbo = Fixed(j.diagnostics().elbo(), 4);
    } else if (j.progress().iteration() > 0) {
      elbo = Fixed(j.progress().elbo(), 4);
    }
    t.AddRow({j.id(), StateText(j.state()), j.model_ref().empty() ? j.model_name() : j.model_ref(),
              TargetText(j.target()), FlowText(j.flow()), progress, elbo, Age(j.create_time())});
  }
  Out(t.Render());
  return absl::OkStatus();
}

absl::Status RunCancel(Context& ctx) {
  const std::string& id = ctx.args.positional()[0];
  v1::Job job;
  if (absl::Status s = CancelJob(ctx, id, &job); !s.ok()) return s;
  if (ctx.json) {
    Out(ToJson(job));
  } else {
    Out(absl::StrCat(job.id(), " ", StateText(job.state()),
                     job.state() == v1::JOB_STATE_CANCELLED ? "" : " (cancellation requested)",
                     "\n"));
  }
  return absl::OkStatus();
}

}  // namespace

void AddJobCommands(std::vector<CommandEntry>* out) {
  Command fit("fit", "[TARGET] FLOW", "submit a fit and watch it train", 1, 2);
  fit.description =
      "Submits a fit of the flow FLOW (e.g. planar*32, radial*8,planar*8, meanfield) to the "
      "built-in target TARGET (see 'flowvi targets'), to a program in flowvi's model language "
      "(--model FILE.stan with --data FILE.json, CmdStan's JSON format; see engine/lang/README.md) "
      "or to a 2-D log density in z1 and z2 (--expr), or learns the density of the points in "
      "--data POINTS (CSV or .npy; maximum likelihood with a held-out split and early stopping; "
      "large files are streamed in 1 MiB chunks), then follows it with a progress line "
      "(iteration / total, ELBO, iterations per second, ETA) on standard error — redrawn in "
      "place on a terminal, a plain line at every tenth of the run otherwise — and ends with the "
      "fit's diagnostics: ELBO ± standard error, PSIS k̂ with its reading, the "
      "importance-sampling ESS and log Ẑ.\n\n"
      "Ctrl-C stops watching and leaves the job running (the message says how to re-attach or "
      "cancel); with --cancel-on-interrupt it cancels the job. Unset options take the server's "
      "defaults. The model is registered as --name (default: the target's name, or the program "
      "file's name without extension), as a new version on each fit. A program's model reports, "
      "samples and densities are in the space the program declares (a <lower=0> parameter stays "
      "positive).";
  fit.flags = {
      {"iters", "N", "optimizer steps (server default 10000)"},
      {"batch", "N", "Monte Carlo draws per step (default 100)"},
      {"lr", "X", "learning rate (default 1e-3)"},
      {"seed", "N", "random seed; same request and seed, same result (default 0)"},
      {"anneal", "N", "anneal beta from 0.01 to 1 over N iterations (default 0: off)"},
      {"optimizer", "NAME", "adam (default) or rmsprop"},
      {"max-grad-norm", "X", "clip the gradient's L2 norm (default 0: off)"},
      {"diagnostic-draws", "N", "draws for the final diagnostics (default 20000)"},
      {"name", "NAME", "model name to register the result under (default: TARGET)"},
      {"param", "K=V", "a target parameter, e.g. centered=false", 0, true},
      {"model", "FILE", "fit the program in FILE (flowvi's Stan-like model language)"},
      {"data", "FILE",
       "with --model: the program's data, CmdStan JSON; without: points (CSV or .npy, one per "
       "row) whose density to fit"},
      {"validation", "X", "data fits: fraction of points held out (default 0.1; 0: none)"},
      {"patience", "N",
       "data fits: stop after N evaluations without a better held-out LL "
       "(default 10; 0: never)"},
      {"eval-interval", "N", "data fits: steps between held-out evaluations (default 100)"},
      {"expr", "EXPR", "fit a 2-D log density in z1, z2, e.g. '-0.5*(z1^2+square(z2-z1^2))'"},
      {"priority", "N", "higher runs first (default 0)"},
      {"request-id", "KEY", "idempotency key: resubmitting with it returns the same job"},
      {"detach", "", "submit and return at once", 'd'},
      {"cancel-on-interrupt", "", "Ctrl-C cancels the job instead of leaving it running"},
      {"quiet", "", "no progress; print only the job id (--detach) or the model ref", 'q'}};
  fit.examples =
      "flowvi fit u1 'planar*32' --iters 20000 --anneal 10000\n"
      "flowvi fit eight_schools 'planar*16' --param centered=true --name es\n"
      "flowvi fit banana meanfield --detach\n"
      "flowvi fit --model schools.stan --data schools.json 'planar*16'\n"
      "flowvi fit --expr '-0.5*(z1^2 + square(2*z2 - z1^2))' 'planar*8'\n"
      "flowvi fit --data points.csv 'realnvp*4' --iters 5000 --validation 0.2 --patience 20";
  out->push_back({fit, RunFit});

  Command watch("watch", "JOB", "follow a job's progress to its end", 1, 1);
  watch.description =
      "Follows JOB like 'flowvi fit' does after submitting, and prints its diagnostics when it "
      "succeeds. Works on finished jobs too. Exit code 7 when the job failed or was cancelled.";
  watch.flags = {{"from-iteration", "N", "only progress after iteration N"},
                 {"cancel-on-interrupt", "", "Ctrl-C cancels the job"},
                 {"quiet", "", "no progress; print only the model ref", 'q'}};
  watch.examples = "flowvi watch job-000003";
  out->push_back({watch, RunWatch});

  Command jobs("jobs", "", "list jobs, newest first");
  jobs.flags = {{"state", "S[,S]",
                 "only these states: queued, running, succeeded, failed, "
                 "cancelled"},
                {"limit", "N", "at most N jobs (default 50)"}};
  jobs.examples = "flowvi jobs --state running,queued";
  out->push_back({jobs, RunJobs});

  Command cancel("cancel", "JOB", "cancel a queued or running job", 1, 1);
  cancel.examples = "flowvi cancel job-000003";
  out->push_back({cancel, RunCancel});
}

}  // namespace flowvi::client
