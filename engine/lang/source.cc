#include "engine/lang/source.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"

namespace flowvi::lang {
namespace {

// Lines longer than this are shown as a window around the column.
constexpr int kWindow = 60;

// The located parts for `text`, the text of line loc.line.
LocatedParts PartsForLine(absl::string_view text, SourceLoc loc, absl::string_view what) {
  LocatedParts parts;
  parts.prefix = what.empty() ? absl::StrCat(loc.line, ":", loc.col, ": ")
                              : absl::StrCat(what, " ", loc.line, ":", loc.col, ": ");
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  int col = std::max(1, loc.col);
  std::string lead, tail;
  if (static_cast<int>(text.size()) > 2 * kWindow) {
    const int from = std::max(0, col - 1 - kWindow);
    const int to = std::min(static_cast<int>(text.size()), col - 1 + kWindow);
    if (from > 0) lead = "...";
    if (to < static_cast<int>(text.size())) tail = "...";
    text = text.substr(from, to - from);
    col = col - from + static_cast<int>(lead.size());
  }
  std::string caret;
  const std::string shown = absl::StrCat(lead, text, tail);
  // Keep tabs in the caret line so that the caret lines up under tabbed text.
  for (int i = 0; i < col - 1; ++i) {
    caret.push_back(i < static_cast<int>(shown.size()) && shown[i] == '\t' ? '\t' : ' ');
  }
  caret.push_back('^');
  parts.suffix = absl::StrCat("\n", shown, "\n", caret);
  return parts;
}

}  // namespace

LineIndex::LineIndex(absl::string_view source) : source_(source) {
  starts_.push_back(0);
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\n') starts_.push_back(i + 1);
  }
}

absl::string_view LineIndex::Line(int line) const {
  if (line < 1 || line > static_cast<int>(starts_.size())) return {};
  const size_t start = starts_[line - 1];
  const size_t end = line < static_cast<int>(starts_.size()) ? starts_[line] - 1 : source_.size();
  return source_.substr(start, end - start);
}

LocatedParts LineIndex::Split(SourceLoc loc, absl::string_view what) const {
  return PartsForLine(Line(loc.line), loc, what);
}

LocatedParts SplitSourceMessage(absl::string_view source, SourceLoc loc, absl::string_view what) {
  return LineIndex(source).Split(loc, what);
}

std::string FormatSourceMessage(absl::string_view source, SourceLoc loc, absl::string_view message,
                                absl::string_view what) {
  LocatedParts parts = SplitSourceMessage(source, loc, what);
  return absl::StrCat(parts.prefix, message, parts.suffix);
}

absl::Status SourceError(absl::string_view source, SourceLoc loc, absl::string_view message,
                         absl::string_view what) {
  return absl::InvalidArgumentError(FormatSourceMessage(source, loc, message, what));
}

absl::Status SourceLimitError(absl::string_view source, SourceLoc loc, absl::string_view message,
                              absl::string_view what) {
  return absl::ResourceExhaustedError(FormatSourceMessage(source, loc, message, what));
}

}  // namespace flowvi::lang
