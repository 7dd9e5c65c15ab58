#include "engine/lang/lexer.h"

#include <charconv>
#include <cmath>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace flowvi::lang {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsIdentChar(char c) { return IsIdentStart(c) || IsDigit(c) || c == '_'; }

struct Punct {
  const char* text;
  Tok kind;
};

// Longest first, so that "<=" wins over "<".
constexpr Punct kPuncts[] = {
    {"%/%", Tok::kIntDiv},
    {".*=", Tok::kEltTimesAssign},
    {"./=", Tok::kEltDivAssign},
    {"<=", Tok::kLe},
    {">=", Tok::kGe},
    {"==", Tok::kEqEq},
    {"!=", Tok::kNe},
    {"+=", Tok::kPlusAssign},
    {"-=", Tok::kMinusAssign},
    {"*=", Tok::kTimesAssign},
    {"/=", Tok::kDivAssign},
    {".*", Tok::kEltTimes},
    {"./", Tok::kEltDiv},
    {".^", Tok::kEltHat},
    {"&&", Tok::kAnd},
    {"||", Tok::kOr},
    {"{", Tok::kLBrace},
    {"}", Tok::kRBrace},
    {"(", Tok::kLParen},
    {")", Tok::kRParen},
    {"[", Tok::kLBracket},
    {"]", Tok::kRBracket},
    {",", Tok::kComma},
    {";", Tok::kSemi},
    {":", Tok::kColon},
    {"?", Tok::kQuestion},
    {"|", Tok::kBar},
    {"'", Tok::kQuote},
    {"<", Tok::kLt},
    {">", Tok::kGt},
    {"=", Tok::kAssign},
    {"+", Tok::kPlus},
    {"-", Tok::kMinus},
    {"*", Tok::kTimes},
    {"/", Tok::kDiv},
    {"%", Tok::kMod},
    {"^", Tok::kHat},
    {"!", Tok::kNot},
    {"~", Tok::kTilde},
};

}  // namespace

std::string Describe(Tok kind) {
  switch (kind) {
    case Tok::kEnd:
      return "end of input";
    case Tok::kIdent:
      return "identifier";
    case Tok::kInt:
      return "integer";
    case Tok::kReal:
      return "real number";
    default:
      break;
  }
  for (const Punct& p : kPuncts) {
    if (p.kind == kind) return absl::StrCat("'", p.text, "'");
  }
  return "token";
}

std::string Describe(const Token& token) {
  if (token.kind == Tok::kEnd) return "end of input";
  return absl::StrCat("'", token.text, "'");
}

absl::StatusOr<std::vector<Token>> Lex(absl::string_view source) {
  std::vector<Token> tokens;
  size_t i = 0;
  int line = 1;
  size_t line_start = 0;
  auto loc_at = [&](size_t pos) { return SourceLoc{line, static_cast<int>(pos - line_start) + 1}; };
  const size_t n = source.size();
  while (true) {
    // Whitespace and comments.
    while (i < n) {
      const char c = source[i];
      if (c == '\n') {
        ++i;
        ++line;
        line_start = i;
      } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
        ++i;
      } else if (c == '/' && i + 1 < n && source[i + 1] == '/') {
        while (i < n && source[i] != '\n') ++i;
      } else if (c == '/' && i + 1 < n && source[i + 1] == '*') {
        const SourceLoc start = loc_at(i);
        i += 2;
        bool closed = false;
        while (i < n) {
          if (source[i] == '*' && i + 1 < n && source[i + 1] == '/') {
            i += 2;
            closed = true;
            break;
          }
          if (source[i] == '\n') {
            ++line;
            line_start = i + 1;
          }
          ++i;
        }
        if (!closed) {
          return SourceError(source, start, "unterminated comment: expected '*/' to close it");
        }
      } else {
        break;
      }
    }
    Token tok;
    tok.loc = loc_at(i);
    if (i >= n) {
      tok.kind = Tok::kEnd;
      tokens.push_back(tok);
      return tokens;
    }
    const char c = source[i];
    const size_t start = i;
    if (IsIdentStart(c)) {
      while (i < n && IsIdentChar(source[i])) ++i;
      tok.kind = Tok::kIdent;
      tok.text = source.substr(start, i - start);
    } else if (IsDigit(c) || (c == '.' && i + 1 < n && IsDigit(source[i + 1]))) {
      bool is_real = false;
      while (i < n && IsDigit(source[i])) ++i;
      // A '.' starts a fraction unless it begins an elementwise operator (".*", "./", ".^").
      if (i < n && source[i] == '.' &&
          !(i + 1 < n && (source[i + 1] == '*' || source[i + 1] == '/' || source[i + 1] == '^'))) {
        is_real = true;
        ++i;
        while (i < n && IsDigit(source[i])) ++i;
      }
      if (i < n && (source[i] == 'e' || source[i] == 'E')) {
        size_t j = i + 1;
        if (j < n && (source[j] == '+' || source[j] == '-')) ++j;
        if (j < n && IsDigit(source[j])) {
          is_real = true;
          i = j;
          while (i < n && IsDigit(source[i])) ++i;
        } else {
          return SourceError(source, loc_at(i),
                             "malformed number: expected digits after the exponent 'e'");
        }
      }
      if (i < n && (IsIdentStart(source[i]) || source[i] == '_')) {
        return SourceError(source, loc_at(i),
                           "malformed number: expected an operator or delimiter after it");
      }
      tok.text = source.substr(start, i - start);
      if (is_real) {
        tok.kind = Tok::kReal;
        const auto r =
            std::from_chars(tok.text.data(), tok.text.data() + tok.text.size(), tok.real_value);
        if (r.ec == std::errc::result_out_of_range) {
          // Underflow to zero is harmless; overflow is an error.
          if (tok.text.find_first_of("123456789") != absl::string_view::npos &&
              tok.text.find("e-") == absl::string_view::npos &&
              tok.text.find("E-") == absl::string_view::npos) {
            return SourceError(source, tok.loc, "real literal out of range");
          }
          tok.real_value = 0;
        } else if (r.ec != std::errc()) {
          return SourceError(source, tok.loc, "malformed real literal");
        }
      } else {
        tok.kind = Tok::kInt;
        const auto r =
            std::from_chars(tok.text.data(), tok.text.data() + tok.text.size(), tok.int_value);
        if (r.ec != std::errc() || tok.int_value > 2147483647) {
          return SourceError(source, tok.loc,
                             "integer literal out of range: expected at most 2147483647 (int is "
                             "32-bit; write a real such as 1e10 instead)");
        }
      }
    } else {
      bool found = false;
      for (const Punct& p : kPuncts) {
        const absl::string_view text(p.text);
        if (source.substr(i, text.size()) == text) {
          tok.kind = p.kind;
          tok.text = source.substr(i, text.size());
          i += text.size();
          found = true;
          break;
        }
      }
      if (!found) {
        const unsigned char u = static_cast<unsigned char>(c);
        if (u >= 0x80) {
          return SourceError(source, tok.loc,
                             "non-ASCII character: only comments may contain them");
        }
        if (c == '#') {
          return SourceError(source, tok.loc,
                             "'#' comments are not supported: expected '//' or '/* */'");
        }
        if (c == '"') {
          return SourceError(source, tok.loc, "strings are not supported (print is not either)");
        }
        return SourceError(source, tok.loc,
                           u < 0x20 || u == 0x7f
                               ? absl::StrFormat("unexpected control character 0x%02x", u)
                               : absl::StrCat("unexpected character '", std::string(1, c), "'"));
      }
    }
    tokens.push_back(tok);
  }
}

}  // namespace flowvi::lang
