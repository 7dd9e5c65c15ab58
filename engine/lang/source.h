// Source positions and the error messages that point at them.
//
// Every error the model language reports about a piece of text (the model source, the data JSON,
// the 2-D shorthand) has one shape:
//
//   3:17: unknown function 'expp'; expected one of ... (the message)
//     theta ~ normal(expp(mu), 1);
//                    ^
//
// i.e. "line:column: message", the offending line, and a caret under the column. Lines and
// columns are 1-based; columns count bytes (the language is ASCII outside comments).
#ifndef FLOWVI_ENGINE_LANG_SOURCE_H_
#define FLOWVI_ENGINE_LANG_SOURCE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace flowvi::lang {

struct SourceLoc {
  int line = 1;
  int col = 1;
};

// "line:col: message\n<the line>\n<caret under col>". Very long lines are shown as a window
// around the column. `what` (e.g. "data") prefixes the position when not empty: "data 1:5: ...".
std::string FormatSourceMessage(absl::string_view source, SourceLoc loc, absl::string_view message,
                                absl::string_view what = "");

// InvalidArgument with FormatSourceMessage's text.
absl::Status SourceError(absl::string_view source, SourceLoc loc, absl::string_view message,
                         absl::string_view what = "");

// ResourceExhausted with FormatSourceMessage's text: a ModelLimits bound was exceeded.
absl::Status SourceLimitError(absl::string_view source, SourceLoc loc, absl::string_view message,
                              absl::string_view what = "");

// The two halves of a located message, for messages completed later (run-time errors):
// prefix = "line:col: ", suffix = "\n<the line>\n<caret>".
struct LocatedParts {
  std::string prefix;
  std::string suffix;
};
LocatedParts SplitSourceMessage(absl::string_view source, SourceLoc loc,
                                absl::string_view what = "");

// The lines of a source, found once, for making many located messages.
class LineIndex {
 public:
  explicit LineIndex(absl::string_view source);
  // Line `line` (1-based) without its newline; empty past the end.
  absl::string_view Line(int line) const;
  // SplitSourceMessage without scanning the source.
  LocatedParts Split(SourceLoc loc, absl::string_view what = "") const;

 private:
  absl::string_view source_;
  std::vector<size_t> starts_;
};

}  // namespace flowvi::lang

#endif  // FLOWVI_ENGINE_LANG_SOURCE_H_
