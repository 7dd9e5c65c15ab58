#include "client/args.h"

#include <string>
#include <vector>

#include "client/client.h"
#include "gtest/gtest.h"

namespace flowvi::client {
namespace {

std::vector<Command> Commands() {
  Command fit("fit", "TARGET FLOW", "submit a fit", 2, 2);
  fit.flags = {{"iters", "N", "steps"},
               {"lr", "X", "learning rate"},
               {"param", "K=V", "a parameter", 0, true},
               {"detach", "", "do not watch", 'd'}};
  Command sample("sample", "REF", "draw", 1, 1);
  sample.flags = {{"draws", "N", "how many", 'n'}, {"output", "FILE", "where", 'o'}};
  Command plot("plot", "REF", "draw a picture", 1, 1);
  plot.flags = {{"range", "A:B", "grid range"}};
  Command figure("figure", "REF...", "many", 1, -1);
  Command models("models", "", "list");
  return {fit, sample, plot, figure, models};
}

std::vector<Flag> Globals() {
  return {{"server", "ADDR", "address", 's'}, {"json", "", "json"}, {"help", "", "help", 'h'}};
}

absl::StatusOr<CommandLine> Parse(std::vector<std::string> argv) {
  static const std::vector<Command>* commands = new std::vector<Command>(Commands());
  return ParseCommandLine(*commands, Globals(), argv);
}

TEST(ArgsTest, CommandPositionalsAndFlagForms) {
  absl::StatusOr<CommandLine> cl =
      Parse({"fit", "u1", "planar*32", "--iters", "20000", "--lr=0.01", "-d"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  ASSERT_NE(cl->command, nullptr);
  EXPECT_EQ(cl->command->name, "fit");
  EXPECT_EQ(cl->args.positional(), (std::vector<std::string>{"u1", "planar*32"}));
  int64_t iters = 0;
  double lr = 0;
  ASSERT_TRUE(cl->args.Get("iters", &iters).ok());
  ASSERT_TRUE(cl->args.Get("lr", &lr).ok());
  EXPECT_EQ(iters, 20000);
  EXPECT_DOUBLE_EQ(lr, 0.01);
  EXPECT_TRUE(cl->args.Switch("detach"));
  EXPECT_FALSE(cl->help);
}

TEST(ArgsTest, GlobalFlagsAnywhere) {
  absl::StatusOr<CommandLine> cl = Parse({"--server", "h:1", "models", "--json"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->args.ValueOr("server", ""), "h:1");
  EXPECT_TRUE(cl->args.Switch("json"));
  cl = Parse({"models", "-s", "h:2"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->args.ValueOr("server", ""), "h:2");
}

TEST(ArgsTest, ShortFlagWithAttachedValue) {
  absl::StatusOr<CommandLine> cl = Parse({"sample", "m", "-n100", "-o", "x.csv"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  int64_t n = 0;
  ASSERT_TRUE(cl->args.Get("draws", &n).ok());
  EXPECT_EQ(n, 100);
  EXPECT_EQ(cl->args.ValueOr("output", ""), "x.csv");
}

TEST(ArgsTest, RepeatedFlagKeepsEveryValue) {
  absl::StatusOr<CommandLine> cl =
      Parse({"fit", "eight_schools", "planar", "--param", "centered=false", "--param=schools=2"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->args.Values("param"), (std::vector<std::string>{"centered=false", "schools=2"}));
}

TEST(ArgsTest, LastValueWinsForPlainFlags) {
  absl::StatusOr<CommandLine> cl = Parse({"fit", "a", "b", "--iters", "1", "--iters", "2"});
  ASSERT_TRUE(cl.ok());
  int64_t iters = 0;
  ASSERT_TRUE(cl->args.Get("iters", &iters).ok());
  EXPECT_EQ(iters, 2);
}

TEST(ArgsTest, NegativeNumbersAndDashAreArguments) {
  absl::StatusOr<CommandLine> cl = Parse({"plot", "m", "--range", "-4:4"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->args.ValueOr("range", ""), "-4:4");
  cl = Parse({"sample", "-"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->args.positional(), std::vector<std::string>{"-"});
}

TEST(ArgsTest, DoubleDashEndsFlags) {
  absl::StatusOr<CommandLine> cl = Parse({"figure", "--", "--odd-name", "b"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->args.positional(), (std::vector<std::string>{"--odd-name", "b"}));
}

TEST(ArgsTest, UnderscoreAndDashAreTheSame) {
  Command c("x", "", "x");
  c.flags = {{"cancel-on-interrupt", "", "c"}};
  absl::StatusOr<CommandLine> cl = ParseCommandLine({c}, {}, {"x", "--cancel_on_interrupt"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_TRUE(cl->args.Switch("cancel-on-interrupt"));
}

TEST(ArgsTest, SwitchAcceptsExplicitBooleans) {
  absl::StatusOr<CommandLine> cl = Parse({"fit", "a", "b", "--detach=false"});
  ASSERT_TRUE(cl.ok());
  EXPECT_TRUE(cl->args.Has("detach"));
  EXPECT_FALSE(cl->args.Switch("detach"));
  cl = Parse({"fit", "a", "b", "--detach=maybe"});
  ASSERT_FALSE(cl.ok());
  EXPECT_EQ(ExitCodeOf(cl.status()), kExitUsage);
}

TEST(ArgsTest, HelpWinsOverErrors) {
  absl::StatusOr<CommandLine> cl = Parse({"fit", "--bogus", "--help"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_TRUE(cl->help);
  EXPECT_EQ(cl->command->name, "fit");
  cl = Parse({"help", "sample"});
  ASSERT_TRUE(cl.ok());
  EXPECT_TRUE(cl->help);
  EXPECT_EQ(cl->command->name, "sample");
  cl = Parse({"-h"});
  ASSERT_TRUE(cl.ok());
  EXPECT_TRUE(cl->help);
  EXPECT_EQ(cl->command, nullptr);
}

TEST(ArgsTest, UsageErrors) {
  for (const std::vector<std::string>& argv :
       std::vector<std::vector<std::string>>{{"fitt", "u1"},                // unknown command
                                             {"fit", "u1"},                 // too few arguments
                                             {"fit", "a", "b", "c"},        // too many
                                             {"models", "extra"},           // none expected
                                             {"fit", "a", "b", "--bogus"},  // unknown flag
                                             {"fit", "a", "b", "--iters"},  // missing value
                                             {"sample", "m", "-x"}}) {      // unknown short flag
    absl::StatusOr<CommandLine> cl = Parse(argv);
    ASSERT_FALSE(cl.ok()) << argv[0];
    EXPECT_EQ(ExitCodeOf(cl.status()), kExitUsage);
    EXPECT_EQ(std::string(cl.status().message()).find('\n'), std::string::npos);
  }
}

TEST(ArgsTest, SuggestsCloseCommands) {
  absl::StatusOr<CommandLine> cl = Parse({"fitt"});
  ASSERT_FALSE(cl.ok());
  EXPECT_NE(std::string(cl.status().message()).find("did you mean 'fit'"), std::string::npos);
  EXPECT_EQ(SuggestCommand(Commands(), "modles"), "models");
  EXPECT_EQ(SuggestCommand(Commands(), "zzzzzz"), "");
}

TEST(ArgsTest, TypedGettersReportBadValues) {
  absl::StatusOr<CommandLine> cl = Parse({"fit", "a", "b", "--iters", "2e4", "--lr", "fast"});
  ASSERT_TRUE(cl.ok());
  int64_t iters = 0;
  ASSERT_TRUE(cl->args.Get("iters", &iters).ok());
  EXPECT_EQ(iters, 20000);
  double lr = 7;
  absl::Status s = cl->args.Get("lr", &lr);
  EXPECT_EQ(ExitCodeOf(s), kExitUsage);
  EXPECT_NE(std::string(s.message()).find("--lr"), std::string::npos);
  EXPECT_EQ(lr, 7);  // unchanged
  uint64_t seed = 3;
  EXPECT_TRUE(cl->args.Get("seed", &seed).ok());  // not given: unchanged
  EXPECT_EQ(seed, 3u);
}

TEST(ArgsTest, HelpTextListsFlagsAndExamples) {
  Command c = Commands()[0];
  c.examples = "flowvi fit u1 planar*32";
  const std::string help = CommandHelp("flowvi", c, Globals());
  EXPECT_NE(help.find("Usage: flowvi fit TARGET FLOW [flags]"), std::string::npos);
  EXPECT_NE(help.find("--iters N"), std::string::npos);
  EXPECT_NE(help.find("-d, --detach"), std::string::npos);
  EXPECT_NE(help.find("(repeatable)"), std::string::npos);
  EXPECT_NE(help.find("Global flags:"), std::string::npos);
  EXPECT_NE(help.find("  flowvi fit u1 planar*32"), std::string::npos);
}

TEST(ExitCodeTest, FromCanonicalCodesAndPayloads) {
  EXPECT_EQ(ExitCodeOf(absl::OkStatus()), kExitOk);
  EXPECT_EQ(ExitCodeOf(absl::UnavailableError("x")), kExitUnreachable);
  EXPECT_EQ(ExitCodeOf(absl::DeadlineExceededError("x")), kExitUnreachable);
  EXPECT_EQ(ExitCodeOf(absl::NotFoundError("x")), kExitNotFound);
  EXPECT_EQ(ExitCodeOf(absl::InvalidArgumentError("x")), kExitInvalid);
  EXPECT_EQ(ExitCodeOf(absl::FailedPreconditionError("x")), kExitError);
  EXPECT_EQ(ExitCodeOf(UsageError("x")), kExitUsage);
  EXPECT_EQ(ExitCodeOf(BadInputError("x")), kExitBadInput);
  EXPECT_EQ(ExitCodeOf(JobFailedError("x")), kExitJobFailed);
  EXPECT_EQ(ExitCodeOf(InterruptedError("x")), kExitInterrupted);
  EXPECT_EQ(OneLine("a\nb\r\nc\n"), "a; b; c");
}

TEST(ClientTest, UnreachableServerIsOneClearLine) {
  ClientOptions o;
  o.server = "127.0.0.1:1";
  o.timeout = absl::Seconds(5);
  Client client(o);
  absl::StatusOr<v1::ListModelsResponse> r =
      client.Call(&v1::FlowVI::Stub::ListModels, v1::ListModelsRequest(), "listing models");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(ExitCodeOf(r.status()), kExitUnreachable);
  const std::string m(r.status().message());
  EXPECT_NE(m.find("127.0.0.1:1"), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace flowvi::client
