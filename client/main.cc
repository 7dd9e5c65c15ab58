// flowvi: the command line client of the flowvi service. See `flowvi --help`.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
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
      {"tls", "", "connect with TLS (implied by --ca, --cert, --key)"},
      {"ca", "FILE", "PEM CA certificate(s) to trust for the server (default: the system's)"},
      {"cert", "FILE", "PEM client certificate, for servers that require one (mutual TLS)"},
      {"key", "FILE", "PEM private key of --cert"},
      {"token", "TOKEN",
       "bearer token (default: $FLOWVI_TOKEN; prefer --token-file: a flag shows in ps)"},
      {"token-file", "FILE", "read the bearer token from FILE (its first line)"},
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
                  "  8    not authenticated: no token, or one the server does not accept\n"
                  "  9    permission denied: the token's role does not allow the call\n"
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

absl::StatusOr<std::string> ReadFlagFile(const Args& args, absl::string_view flag) {
  const std::string path = *args.Value(flag);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return UsageError(
        absl::StrCat("--", flag, ": cannot read '", path, "': ", std::strerror(errno)));
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// --tls/--ca/--cert/--key and the token (--token, --token-file, $FLOWVI_TOKEN, in that order).
absl::Status ParseSecurity(const Args& args, ClientOptions* options) {
  options->tls = args.Switch("tls") || args.Has("ca") || args.Has("cert") || args.Has("key");
  if (args.Has("cert") != args.Has("key")) {
    return UsageError("--cert and --key go together: give both or neither");
  }
  for (const auto& [flag, out] :
       {std::pair<absl::string_view, std::string*>{"ca", &options->ca_pem},
        {"cert", &options->cert_pem},
        {"key", &options->key_pem}}) {
    if (!args.Has(flag)) continue;
    absl::StatusOr<std::string> pem = ReadFlagFile(args, flag);
    if (!pem.ok()) return pem.status();
    *out = *std::move(pem);
  }
  if (args.Has("token") && args.Has("token-file")) {
    return UsageError("give --token or --token-file, not both");
  }
  if (std::optional<std::string> token = args.Value("token")) {
    options->token = *token;
  } else if (args.Has("token-file")) {
    absl::StatusOr<std::string> text = ReadFlagFile(args, "token-file");
    if (!text.ok()) return text.status();
    options->token = std::string(
        absl::StripAsciiWhitespace(absl::string_view(*text).substr(0, text->find('\n'))));
    if (options->token.empty()) {
      return UsageError(absl::StrCat("--token-file: '", *args.Value("token-file"),
                                     "' holds no token on its first line"));
    }
  } else if (const char* env = std::getenv("FLOWVI_TOKEN"); env != nullptr) {
    options->token = std::string(absl::StripAsciiWhitespace(env));
  }
  // The token goes into an HTTP/2 header: refuse what cannot be one rather than let gRPC fail
  // the call obscurely.
  for (char c : options->token) {
    if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) {
      return UsageError("the token holds a space or a character that is not printable ASCII");
    }
  }
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
  if (absl::Status s = ParseSecurity(line->args, &options); !s.ok()) return Fail(s);
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
