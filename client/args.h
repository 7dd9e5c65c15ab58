// Command-line parsing for `flowvi`: one level of subcommands, each with its own flags, plus
// global flags accepted anywhere on the line.
//
//   flowvi [global flags] COMMAND [ARGS...] [flags]
//
// Flags: `--name value`, `--name=value`, `-n value`, `-nVALUE`; switches: `--detach`
// (`--detach=false` also works). '_' and '-' are the same in flag names. `--` ends the flags.
// A lone `-` and negative numbers (`-4:4`, `-1.5`) are arguments, not flags. `-h`/`--help`
// anywhere asks for help. A flag given twice keeps the last value unless it is `repeated`.
#ifndef FLOWVI_CLIENT_ARGS_H_
#define FLOWVI_CLIENT_ARGS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace flowvi::client {

struct Flag {
  Flag(std::string name_, std::string value_name_, std::string help_, char short_name_ = 0,
       bool repeated_ = false)
      : name(std::move(name_)),
        value_name(std::move(value_name_)),
        help(std::move(help_)),
        short_name(short_name_),
        repeated(repeated_) {}

  // Long name without the dashes, e.g. "iters".
  std::string name;
  // Placeholder of the value in help, e.g. "N"; empty for a switch (no value).
  std::string value_name;
  std::string help;
  // One-letter alias (`-n`), or 0.
  char short_name = 0;
  // May be given several times; every value is kept (see Args::Values).
  bool repeated = false;
};

class Args;

struct Command {
  Command(std::string name_, std::string usage_, std::string summary_, int min_args_ = 0,
          int max_args_ = 0)
      : name(std::move(name_)),
        usage(std::move(usage_)),
        summary(std::move(summary_)),
        min_args(min_args_),
        max_args(max_args_) {}

  std::string name;
  // The arguments in the usage line, e.g. "TARGET FLOW".
  std::string usage;
  // One line for the command list.
  std::string summary;
  // Paragraphs for `flowvi COMMAND --help` (may be empty).
  std::string description;
  int min_args = 0;
  // -1: no limit.
  int max_args = 0;
  std::vector<Flag> flags;
  // Example command lines for the help, one a line.
  std::string examples;
};

// What was given for one command.
class Args {
 public:
  const std::vector<std::string>& positional() const { return positional_; }
  // Whether the flag was given (a switch given as --x=false counts as given).
  bool Has(absl::string_view name) const;
  // A switch: true when given without a value or with a true value.
  bool Switch(absl::string_view name) const;
  // The last value given.
  std::optional<std::string> Value(absl::string_view name) const;
  std::string ValueOr(absl::string_view name, absl::string_view fallback) const;
  // Every value of a repeated flag, in order.
  std::vector<std::string> Values(absl::string_view name) const;

  // Typed values: leave *out unchanged when the flag was not given; a usage error naming the
  // flag when the value does not parse.
  absl::Status Get(absl::string_view name, int64_t* out) const;
  absl::Status Get(absl::string_view name, int* out) const;
  absl::Status Get(absl::string_view name, uint64_t* out) const;
  absl::Status Get(absl::string_view name, double* out) const;

  // For the parser.
  void Add(const std::string& name, std::string value) {
    values_[name].push_back(std::move(value));
  }
  void AddPositional(std::string value) { positional_.push_back(std::move(value)); }

 private:
  std::map<std::string, std::vector<std::string>, std::less<>> values_;
  std::vector<std::string> positional_;
};

struct CommandLine {
  // Null when no command was given.
  const Command* command = nullptr;
  Args args;
  // -h/--help was given (or the command was `help [COMMAND]`).
  bool help = false;
};

// Parses argv (without the program name). Usage errors (exit code 2) for an unknown command or
// flag, a missing flag value, or the wrong number of arguments (not checked when help is
// asked for). `help [COMMAND]` is understood as COMMAND --help.
absl::StatusOr<CommandLine> ParseCommandLine(const std::vector<Command>& commands,
                                             const std::vector<Flag>& global_flags,
                                             const std::vector<std::string>& argv);

// `flowvi COMMAND --help`.
std::string CommandHelp(absl::string_view program, const Command& command,
                        const std::vector<Flag>& global_flags);
// Flag lines of a help text ("  -n, --samples N   help ..."), wrapped.
std::string FlagTable(const std::vector<Flag>& flags);

// The closest command name to `name` when one is close enough to suggest, else "".
std::string SuggestCommand(const std::vector<Command>& commands, absl::string_view name);

}  // namespace flowvi::client

#endif  // FLOWVI_CLIENT_ARGS_H_
