// The `flowvi` subcommands. Each cmd_*.cc file registers a group of them; main.cc parses the
// command line, builds the Context and runs the chosen command.
//
// A command returns OK or a status whose exit code and one-line message main.cc reports (see
// client.h). Commands write results to standard output and progress to standard error.
#ifndef FLOWVI_CLIENT_COMMANDS_H_
#define FLOWVI_CLIENT_COMMANDS_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/args.h"
#include "client/client.h"
#include "client/output.h"

namespace flowvi::client {

struct Context {
  const Args& args;
  Client& client;
  // --json: machine output (proto3 JSON of the API's messages) instead of tables.
  bool json = false;
  bool stdout_tty = false;
  bool stderr_tty = false;
};

struct CommandEntry {
  Command command;
  std::function<absl::Status(Context&)> run;
};

// fit, watch, jobs, cancel.
void AddJobCommands(std::vector<CommandEntry>* out);
// models, model, alias, rm.
void AddModelCommands(std::vector<CommandEntry>* out);
// sample, logpdf.
void AddDataCommands(std::vector<CommandEntry>* out);
// plot, figure.
void AddPlotCommands(std::vector<CommandEntry>* out);
// targets, layers, health.
void AddInfoCommands(std::vector<CommandEntry>* out);

}  // namespace flowvi::client

#endif  // FLOWVI_CLIENT_COMMANDS_H_
