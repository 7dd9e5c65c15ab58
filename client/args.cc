#include "client/args.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "client/client.h"

namespace flowvi::client {
namespace {

std::string Normalize(absl::string_view name) { return absl::StrReplaceAll(name, {{"_", "-"}}); }

const Flag* FindLong(const std::vector<Flag>& flags, absl::string_view name) {
  for (const Flag& f : flags) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

const Flag* FindShort(const std::vector<Flag>& flags, char c) {
  for (const Flag& f : flags) {
    if (f.short_name == c) return &f;
  }
  return nullptr;
}

// "-1.5", "-4:4", "-.5": arguments, not flags.
bool LooksNegativeNumber(absl::string_view token) {
  return token.size() >= 2 && token[0] == '-' &&
         (absl::ascii_isdigit(static_cast<unsigned char>(token[1])) || token[1] == '.');
}

bool IsHelp(absl::string_view token) { return token == "-h" || token == "--help"; }

std::optional<bool> ParseBool(absl::string_view text) {
  const std::string t = absl::AsciiStrToLower(text);
  if (t == "true" || t == "1" || t == "yes" || t == "on") return true;
  if (t == "false" || t == "0" || t == "no" || t == "off") return false;
  return std::nullopt;
}

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Appends `text` wrapped at `width` columns, continuation lines indented by `indent`.
void AppendWrapped(std::string* out, absl::string_view text, size_t first_column, size_t indent,
                   size_t width = 100) {
  size_t column = first_column;
  bool first_word = true;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (!first_word && column + 1 + word.size() > width) {
      absl::StrAppend(out, "\n", std::string(indent, ' '));
      column = indent;
    } else if (!first_word) {
      out->push_back(' ');
      ++column;
    }
    out->append(word.data(), word.size());
    column += word.size();
    first_word = false;
  }
}

}  // namespace

bool Args::Has(absl::string_view name) const { return values_.find(name) != values_.end(); }

bool Args::Switch(absl::string_view name) const {
  std::optional<std::string> v = Value(name);
  if (!v.has_value()) return false;
  return v->empty() || ParseBool(*v).value_or(false);
}

std::optional<std::string> Args::Value(absl::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::string Args::ValueOr(absl::string_view name, absl::string_view fallback) const {
  std::optional<std::string> v = Value(name);
  return v.has_value() ? *v : std::string(fallback);
}

std::vector<std::string> Args::Values(absl::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return {};
  return it->second;
}

absl::Status Args::Get(absl::string_view name, int64_t* out) const {
  std::optional<std::string> v = Value(name);
  if (!v.has_value()) return absl::OkStatus();
  int64_t parsed = 0;
  double real = 0;
  if (absl::SimpleAtoi(*v, &parsed)) {
    *out = parsed;
    return absl::OkStatus();
  }
  // Accept 2e4 and 20000.0 for whole numbers.
  if (absl::SimpleAtod(*v, &real) && std::isfinite(real) && real == std::floor(real) &&
      std::fabs(real) < 9e15) {
    *out = static_cast<int64_t>(real);
    return absl::OkStatus();
  }
  return UsageError(absl::StrCat("--", name, ": '", *v, "' is not a whole number"));
}

absl::Status Args::Get(absl::string_view name, int* out) const {
  int64_t value = *out;
  if (absl::Status s = Get(name, &value); !s.ok()) return s;
  if (value < INT32_MIN || value > INT32_MAX) {
    return UsageError(absl::StrCat("--", name, ": ", value, " is out of range"));
  }
  *out = static_cast<int>(value);
  return absl::OkStatus();
}

absl::Status Args::Get(absl::string_view name, uint64_t* out) const {
  std::optional<std::string> v = Value(name);
  if (!v.has_value()) return absl::OkStatus();
  uint64_t parsed = 0;
  if (!absl::SimpleAtoi(*v, &parsed)) {
    return UsageError(absl::StrCat("--", name, ": '", *v, "' is not a non-negative whole number"));
  }
  *out = parsed;
  return absl::OkStatus();
}

absl::Status Args::Get(absl::string_view name, double* out) const {
  std::optional<std::string> v = Value(name);
  if (!v.has_value()) return absl::OkStatus();
  double parsed = 0;
  if (!absl::SimpleAtod(*v, &parsed) || !std::isfinite(parsed)) {
    return UsageError(absl::StrCat("--", name, ": '", *v, "' is not a number"));
  }
  *out = parsed;
  return absl::OkStatus();
}

std::string SuggestCommand(const std::vector<Command>& commands, absl::string_view name) {
  std::string best;
  size_t best_distance = 3;  // suggest only within two edits
  for (const Command& c : commands) {
    if (absl::StartsWith(c.name, name) && name.size() >= 2) return c.name;
    const size_t d = EditDistance(c.name, name);
    if (d < best_distance) {
      best_distance = d;
      best = c.name;
    }
  }
  return best;
}

absl::StatusOr<CommandLine> ParseCommandLine(const std::vector<Command>& commands,
                                             const std::vector<Flag>& global_flags,
                                             const std::vector<std::string>& argv) {
  CommandLine out;
  std::vector<std::string> tokens = argv;
  // Help anywhere before `--` wins over every other problem on the line.
  for (const std::string& t : tokens) {
    if (t == "--") break;
    if (IsHelp(t)) out.help = true;
  }
  bool flags_done = false;
  bool help_command = false;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& token = tokens[i];
    const bool is_flag =
        !flags_done && token.size() >= 2 && token[0] == '-' && !LooksNegativeNumber(token);
    if (!flags_done && token == "--") {
      flags_done = true;
      continue;
    }
    if (!is_flag) {
      if (out.command == nullptr) {
        if (token == "help" && !help_command) {
          help_command = true;
          out.help = true;
          continue;
        }
        for (const Command& c : commands) {
          if (c.name == token) out.command = &c;
        }
        if (out.command == nullptr && help_command) {
          std::string message = absl::StrCat("no command '", token, "' to help with");
          if (std::string sug = SuggestCommand(commands, token); !sug.empty()) {
            absl::StrAppend(&message, "; did you mean '", sug, "'?");
          }
          return UsageError(message);
        }
        if (out.command == nullptr) {
          std::string message = absl::StrCat("unknown command '", token, "'");
          if (std::string s = SuggestCommand(commands, token); !s.empty()) {
            absl::StrAppend(&message, "; did you mean '", s, "'?");
          }
          absl::StrAppend(&message, " (flowvi --help lists the commands)");
          return UsageError(message);
        }
        continue;
      }
      if (help_command) continue;  // `help fit extra` ignores the rest
      out.args.AddPositional(token);
      continue;
    }
    if (IsHelp(token)) continue;
    const std::vector<Flag> no_flags;
    const std::vector<Flag>& local = out.command != nullptr ? out.command->flags : no_flags;
    const std::string where =
        out.command != nullptr ? absl::StrCat("flowvi ", out.command->name) : "flowvi";
    const Flag* flag = nullptr;
    std::optional<std::string> inline_value;
    std::string shown;
    if (token[1] == '-') {
      absl::string_view body = absl::string_view(token).substr(2);
      const size_t eq = body.find('=');
      const std::string name = Normalize(body.substr(0, eq));
      if (eq != absl::string_view::npos) inline_value = std::string(body.substr(eq + 1));
      flag = FindLong(local, name);
      if (flag == nullptr) flag = FindLong(global_flags, name);
      shown = absl::StrCat("--", name);
    } else {
      const char c = token[1];
      flag = FindShort(local, c);
      if (flag == nullptr) flag = FindShort(global_flags, c);
      if (token.size() > 2) inline_value = token.substr(token[2] == '=' ? 3 : 2);
      shown = absl::StrCat("-", std::string(1, c));
    }
    if (flag == nullptr) {
      if (out.help) continue;
      return UsageError(absl::StrCat("unknown flag ", shown, " for '", where, "' (", where,
                                     " --help lists the flags)"));
    }
    if (flag->value_name.empty()) {
      if (inline_value.has_value() && !ParseBool(*inline_value).has_value()) {
        return UsageError(absl::StrCat("--", flag->name, " is a switch; '", *inline_value,
                                       "' is not true or false"));
      }
      out.args.Add(flag->name, inline_value.value_or(""));
      continue;
    }
    if (!inline_value.has_value()) {
      if (i + 1 >= tokens.size()) {
        if (out.help) continue;
        return UsageError(
            absl::StrCat("--", flag->name, " needs a value (", flag->value_name, ")"));
      }
      inline_value = tokens[++i];
    }
    out.args.Add(flag->name, *inline_value);
  }
  if (out.help || out.command == nullptr) return out;
  const int n = static_cast<int>(out.args.positional().size());
  const Command& c = *out.command;
  if (n < c.min_args || (c.max_args >= 0 && n > c.max_args)) {
    std::string message;
    if (n < c.min_args) {
      message = absl::StrCat("'flowvi ", c.name, "' needs ", c.usage);
    } else {
      message =
          absl::StrCat("'flowvi ", c.name, "' takes ", c.max_args == 0 ? "no arguments" : c.usage,
                       "; got unexpected '", out.args.positional()[c.max_args], "'");
    }
    absl::StrAppend(&message, " (usage: flowvi ", c.name, c.usage.empty() ? "" : " ", c.usage,
                    " [flags])");
    return UsageError(message);
  }
  return out;
}

std::string FlagTable(const std::vector<Flag>& flags) {
  std::vector<std::string> left;
  size_t width = 0;
  for (const Flag& f : flags) {
    std::string l = f.short_name != 0 ? absl::StrCat("-", std::string(1, f.short_name), ", ")
                                      : std::string("    ");
    absl::StrAppend(&l, "--", f.name);
    if (!f.value_name.empty()) absl::StrAppend(&l, " ", f.value_name);
    width = std::max(width, l.size());
    left.push_back(std::move(l));
  }
  width = std::min<size_t>(width, 28);
  std::string out;
  for (size_t i = 0; i < flags.size(); ++i) {
    absl::StrAppend(&out, "  ", left[i]);
    if (left[i].size() > width) {
      absl::StrAppend(&out, "\n", std::string(width + 4, ' '));
    } else {
      out.append(width + 2 - left[i].size(), ' ');
    }
    const size_t column = width + 4;
    std::string help = flags[i].help;
    if (flags[i].repeated) absl::StrAppend(&help, " (repeatable)");
    AppendWrapped(&out, help, column, width + 4);
    out.push_back('\n');
  }
  return out;
}

std::string CommandHelp(absl::string_view program, const Command& command,
                        const std::vector<Flag>& global_flags) {
  std::string out =
      absl::StrCat("Usage: ", program, " ", command.name, command.usage.empty() ? "" : " ",
                   command.usage, command.flags.empty() ? "" : " [flags]", "\n\n");
  for (absl::string_view paragraph : absl::StrSplit(
           command.description.empty() ? command.summary : command.description, "\n\n")) {
    // Lines that start with spaces are kept as they are (lists, examples).
    if (absl::StartsWith(paragraph, " ")) {
      absl::StrAppend(&out, paragraph, "\n\n");
      continue;
    }
    AppendWrapped(&out, absl::StrReplaceAll(paragraph, {{"\n", " "}}), 0, 0);
    out.append("\n\n");
  }
  if (!command.flags.empty()) absl::StrAppend(&out, "Flags:\n", FlagTable(command.flags), "\n");
  absl::StrAppend(&out, "Global flags:\n", FlagTable(global_flags));
  if (!command.examples.empty()) {
    absl::StrAppend(&out, "\nExamples:\n");
    for (absl::string_view line : absl::StrSplit(command.examples, '\n', absl::SkipEmpty())) {
      absl::StrAppend(&out, "  ", line, "\n");
    }
  }
  return out;
}

}  // namespace flowvi::client
