// Tokens of the model language. Comments are // to end of line and /* ... */; outside comments
// the source must be ASCII.
#ifndef FLOWVI_ENGINE_LANG_LEXER_H_
#define FLOWVI_ENGINE_LANG_LEXER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/lang/source.h"

namespace flowvi::lang {

enum class Tok : uint8_t {
  kEnd,
  kIdent,
  kInt,
  kReal,
  kLBrace,
  kRBrace,
  kLParen,
  kRParen,
  kLBracket,
  kRBracket,
  kComma,
  kSemi,
  kColon,
  kQuestion,
  kBar,
  kQuote,
  kLt,
  kLe,
  kGt,
  kGe,
  kEqEq,
  kNe,
  kAssign,
  kPlusAssign,
  kMinusAssign,
  kTimesAssign,
  kDivAssign,
  kEltTimesAssign,
  kEltDivAssign,
  kPlus,
  kMinus,
  kTimes,
  kDiv,
  kMod,
  kIntDiv,
  kEltTimes,
  kEltDiv,
  kHat,
  kEltHat,
  kNot,
  kAnd,
  kOr,
  kTilde,
};

struct Token {
  Tok kind = Tok::kEnd;
  absl::string_view text;
  SourceLoc loc;
  int64_t int_value = 0;
  double real_value = 0;
};

// How a token reads in an error message: "'theta'", "';'", "end of input".
std::string Describe(const Token& token);

// The spelling of a token kind: "';'", "identifier", ...
std::string Describe(Tok kind);

// Splits `source` into tokens, ending with one kEnd. Errors (a stray character, an unclosed
// comment, an integer literal out of range) are InvalidArgument with line:column and a caret.
absl::StatusOr<std::vector<Token>> Lex(absl::string_view source);

}  // namespace flowvi::lang

#endif  // FLOWVI_ENGINE_LANG_LEXER_H_
