// flowvi: the command line client of the flowvi service. See `flowvi --help`.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/args.h"
#include "client/client.h"
#include "client/commands.h"

namespace flowvi::client {
namespace {

constexpr char kVersion[] = "0.1.0";

std::vector<Flag> GlobalFlags() {
  return {
      {"server", "ADDR", "server address host:port (default: $FLOWVI_SERVER, else 127.0.0.1:50051)",
       's'},
      {"json", "", "machine output: the API's messages as JSON (samples: JSON lines)"},
      {"timeout", "SECONDS",
       "deadline of each request, e.g. 30 or 2m (default 30s; the "
       "streams of fit/watch and sample have none)"},
      {"help", "", "help for flowvi or a command", 'h'},
      {"version", "", "print the version"},
  };
}

std::string MainHelp(const std::vector<CommandEntry>& entries) {
  std::string out =
      "flowvi: fit normalizing flows to probability densities on a flowvi server, watch them\n"
      "train, and use the trained models.\n\n"
      "Usage: flowvi [global flags] COMMAND [ARGS] [flags]\n";
  const std::vector<std::pair<std::string, std::vector<std::string>>> groups = {
      {"Fitting", {"fit", "watch", "jobs", "cancel"}},
      {"Models", {"models", "model", "alias", "rm"}},
      {"Using models", {"sample", "logpdf", "plot", "figure"}},
      {"Server", {"targets", "layers", "health"}},
  };
  for (const auto& [title, names] : groups) {
    absl::StrAppend(&out, "\n", title, ":\n");
    for (const std::string& name : names) {
      for (const CommandEntry& e : entries) {
        if (e.command.name != name) continue;
        std::string left = absl::StrCat(name, " ", e.command.usage);
        if (left.size() < 24) left.append(24 - left.size(), ' ');
        absl::StrAppend(&out, "  ", left, " ", e.command.summary, "\n");
      }
    }
  }
  absl::StrAppend(&out, "\nGlobal flags (anywhere on the line):\n", FlagTable(GlobalFlags()));
  absl::StrAppend(&out,
                  "\nExit codes:\n"
                  "  0    success\n"
                  "  1    other errors (e.g. cancelling a job that has ended, a full queue)\n"
                  "  2    usage error: unknown command or flag, bad flag value\n"
                  "  3    server unreachable, not serving, or no answer within --timeout\n"
                  "  4    not found: unknown model, version, alias or job\n"
                  "  5    invalid argument, as the server said: bad flow spec, target, "
                  "parameter, option\n"
                  "  6    bad input file: unreadable, wrong column count, not a number, NaN\n"
                  "  7    the job failed or was cancelled (fit, watch)\n"
                  "  130  interrupted (Ctrl-C)\n"
                  "\nErrors are one line on standard error: 'flowvi: what went wrong'.\n"
                  "Run 'flowvi COMMAND --help' for a command's arguments, flags and examples.\n");
  return out;
}

absl::Status ParseTimeout(const Args& args, absl::Duration* out) {
  std::optional<std::string> text = args.Value("timeout");
  if (!text.has_value()) return absl::OkStatus();
  double seconds = 0;
  absl::Duration d;
  if (absl::SimpleAtod(*text, &seconds)) {
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(*text, &d)) {
    return UsageError(absl::StrCat("--timeout: '", *text, "' is not a duration (30, 30s, 2m)"));
  }
  if (d <= absl::ZeroDuration()) return UsageError("--timeout must be positive");
  *out = d;
  return absl::OkStatus();
}

int Fail(const absl::Status& status) {
  std::fflush(stdout);
  std::fprintf(stderr, "flowvi: %s\n", OneLine(status.message()).c_str());
  return ExitCodeOf(status);
}

int Main(int argc, char** argv) {
  std::vector<CommandEntry> entries;
  AddJobCommands(&entries);
  AddModelCommands(&entries);
  AddDataCommands(&entries);
  AddPlotCommands(&entries);
  AddInfoCommands(&entries);
  std::vector<Command> commands;
  for (const CommandEntry& e : entries) commands.push_back(e.command);
  const std::vector<Flag> global = GlobalFlags();

  absl::StatusOr<CommandLine> line =
      ParseCommandLine(commands, global, std::vector<std::string>(argv + 1, argv + argc));
  if (!line.ok()) return Fail(line.status());
  if (line->args.Switch("version")) {
    Out(absl::StrCat("flowvi ", kVersion, "\n"));
    return kExitOk;
  }
  if (line->help) {
    Out(line->command != nullptr ? CommandHelp("flowvi", *line->command, global)
                                 : MainHelp(entries));
    return kExitOk;
  }
  if (line->command == nullptr) {
    Err(MainHelp(entries));
    return kExitUsage;
  }

  ClientOptions options;
  options.server = line->args.ValueOr("server", DefaultServerAddress());
  if (options.server.empty()) return Fail(UsageError("--server: give an address (host:port)"));
  if (absl::Status s = ParseTimeout(line->args, &options.timeout); !s.ok()) return Fail(s);
  Client client(options);
  Context ctx{line->args, client};
  ctx.json = line->args.Switch("json");
  ctx.stdout_tty = isatty(STDOUT_FILENO) != 0;
  ctx.stderr_tty = isatty(STDERR_FILENO) != 0;
  const CommandEntry* entry = nullptr;
  for (const CommandEntry& e : entries) {
    if (e.command.name == line->command->name) entry = &e;
  }
  absl::Status status = entry->run(ctx);
  if (!status.ok()) return Fail(status);
  if (std::fflush(stdout) != 0) return Fail(absl::DataLossError("cannot write standard output"));
  return kExitOk;
}

}  // namespace
}  // namespace flowvi::client

int main(int argc, char** argv) { return flowvi::client::Main(argc, argv); }
