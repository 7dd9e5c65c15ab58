#include "engine/lang/json.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <string>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace flowvi::lang {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

class JsonReader {
 public:
  JsonReader(absl::string_view text, const ModelLimits& limits) : text_(text), limits_(limits) {}

  absl::StatusOr<DataMap> ReadTop() {
    DataMap out;
    SkipSpace();
    if (pos_ == text_.size()) return out;
    if (!Consume('{')) return Error("expected '{': the data must be a JSON object");
    SkipSpace();
    if (Consume('}')) return Finish(std::move(out));
    while (true) {
      SkipSpace();
      const SourceLoc key_loc = Loc();
      std::string key;
      if (!ReadString(&key)) return status_;
      if (out.contains(key)) {
        return absl::InvalidArgumentError(FormatSourceMessage(
            text_, key_loc, absl::StrCat("duplicate member '", key, "'"), "data"));
      }
      SkipSpace();
      if (!Consume(':')) return Error("expected ':' after the member name");
      DataValue value;
      if (!ReadValue(&value, 1)) return status_;
      out.emplace(std::move(key), std::move(value));
      SkipSpace();
      if (Consume(',')) continue;
      if (Consume('}')) break;
      return Error("expected ',' or '}' in the object");
    }
    return Finish(std::move(out));
  }

 private:
  absl::StatusOr<DataMap> Finish(DataMap out) {
    SkipSpace();
    if (pos_ != text_.size()) return Error("expected the end of the data after the object");
    return out;
  }

  SourceLoc Loc() const { return SourceLoc{line_, static_cast<int>(pos_ - line_start_) + 1}; }

  const absl::Status& Error(absl::string_view message) {
    if (status_.ok()) {
      status_ = absl::InvalidArgumentError(FormatSourceMessage(
          text_, Loc(),
          pos_ < text_.size() ? message : absl::StrCat(message, " (found the end of the data)"),
          "data"));
    }
    return status_;
  }

  void SkipSpace() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == '\n') {
        ++line_;
        line_start_ = pos_ + 1;
      } else if (c != ' ' && c != '\t' && c != '\r') {
        return;
      }
      ++pos_;
    }
  }

  bool Consume(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  bool ReadString(std::string* out) {
    if (!Consume('"')) {
      Error("expected a string in double quotes");
      return false;
    }
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        Error("control character in a string");
        return false;
      }
      if (c == '\\') {
        if (pos_ + 1 >= text_.size()) break;
        const char e = text_[pos_ + 1];
        pos_ += 2;
        switch (e) {
          case '"':
          case '\\':
          case '/':
            out->push_back(e);
            break;
          case 'b':
            out->push_back('\b');
            break;
          case 'f':
            out->push_back('\f');
            break;
          case 'n':
            out->push_back('\n');
            break;
          case 'r':
            out->push_back('\r');
            break;
          case 't':
            out->push_back('\t');
            break;
          case 'u': {
            if (pos_ + 4 > text_.size()) break;
            unsigned code = 0;
            for (int i = 0; i < 4; ++i) {
              const char h = text_[pos_ + i];
              code <<= 4;
              if (h >= '0' && h <= '9') {
                code |= static_cast<unsigned>(h - '0');
              } else if (h >= 'a' && h <= 'f') {
                code |= static_cast<unsigned>(h - 'a' + 10);
              } else if (h >= 'A' && h <= 'F') {
                code |= static_cast<unsigned>(h - 'A' + 10);
              } else {
                Error("malformed \\u escape");
                return false;
              }
            }
            pos_ += 4;
            // Names are matched byte for byte; non-ASCII escapes cannot name a variable.
            out->push_back(code < 0x80 ? static_cast<char>(code) : '?');
            break;
          }
          default:
            --pos_;
            Error("malformed escape in a string");
            return false;
        }
        continue;
      }
      out->push_back(c);
      ++pos_;
    }
    Error("unterminated string");
    return false;
  }

  // Non-finite reals written as words: NaN, Inf, Infinity, with an optional sign.
  static bool NonFinite(absl::string_view word, double* out) {
    std::string w = absl::AsciiStrToLower(word);
    double sign = 1;
    if (!w.empty() && (w[0] == '-' || w[0] == '+')) {
      if (w[0] == '-') sign = -1;
      w.erase(0, 1);
    }
    if (w == "nan") {
      *out = std::numeric_limits<double>::quiet_NaN();
      return true;
    }
    if (w == "inf" || w == "infinity") {
      *out = sign * kInf;
      return true;
    }
    return false;
  }

  static void SetReal(DataValue* v, double x) {
    v->reals.push_back(x);
    v->all_int = false;
    v->first_real = 0;
  }

  bool ReadValue(DataValue* v, int depth) {
    if (depth > limits_.max_nesting) {
      if (status_.ok()) {
        status_ = absl::ResourceExhaustedError(
            FormatSourceMessage(text_, Loc(),
                                absl::StrCat("nesting too deep: exceeds ModelLimits::max_nesting (",
                                             limits_.max_nesting, ")"),
                                "data"));
      }
      return false;
    }
    SkipSpace();
    v->loc = Loc();
    if (pos_ >= text_.size()) {
      Error("expected a value");
      return false;
    }
    const char c = text_[pos_];
    if (c == '[') {
      ++pos_;
      SkipSpace();
      if (Consume(']')) {
        v->shape = {0};
        return true;
      }
      int64_t count = 0;
      std::vector<int64_t> elem_shape;
      while (true) {
        DataValue elem;
        if (!ReadValue(&elem, depth + 1)) return false;
        if (v->error.empty()) {
          if (!elem.error.empty()) {
            v->error = elem.error;
          } else if (count > 0 && elem.shape != elem_shape) {
            v->error = "a ragged array (its elements have different sizes)";
          } else {
            if (count == 0) elem_shape = elem.shape;
            if (v->first_real < 0 && elem.first_real >= 0) {
              v->first_real = static_cast<int64_t>(v->reals.size()) + elem.first_real;
            }
            v->reals.insert(v->reals.end(), elem.reals.begin(), elem.reals.end());
            if (v->all_int && elem.all_int) {
              v->ints.insert(v->ints.end(), elem.ints.begin(), elem.ints.end());
            } else {
              v->all_int = false;
              v->ints.clear();
            }
          }
        }
        ++count;
        SkipSpace();
        if (Consume(',')) continue;
        if (Consume(']')) break;
        Error("expected ',' or ']' in the array");
        return false;
      }
      if (v->error.empty()) {
        v->shape = {count};
        v->shape.insert(v->shape.end(), elem_shape.begin(), elem_shape.end());
      } else {
        v->reals.clear();
        v->ints.clear();
      }
      return true;
    }
    if (c == '{') {
      // Allowed for members the model does not use; skipped by reading it as members.
      ++pos_;
      SkipSpace();
      v->error = "an object";
      if (Consume('}')) return true;
      while (true) {
        SkipSpace();
        std::string key;
        if (!ReadString(&key)) return false;
        SkipSpace();
        if (!Consume(':')) {
          Error("expected ':' after the member name");
          return false;
        }
        DataValue ignored;
        if (!ReadValue(&ignored, depth + 1)) return false;
        SkipSpace();
        if (Consume(',')) continue;
        if (Consume('}')) return true;
        Error("expected ',' or '}' in the object");
        return false;
      }
    }
    if (c == '"') {
      std::string s;
      if (!ReadString(&s)) return false;
      double x;
      if (NonFinite(s, &x)) {
        SetReal(v, x);
      } else {
        v->error = "a string";
      }
      return true;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return ReadNumber(v);
    // Bare words: true, false, null, NaN, Infinity, ...
    size_t end = pos_;
    while (end < text_.size() && (absl::ascii_isalpha(static_cast<unsigned char>(text_[end])) ||
                                  text_[end] == '-' || text_[end] == '+')) {
      ++end;
    }
    const absl::string_view word = text_.substr(pos_, end - pos_);
    double x;
    if (word == "true" || word == "false") {
      v->error = "a boolean";
    } else if (word == "null") {
      v->error = "null";
    } else if (NonFinite(word, &x)) {
      SetReal(v, x);
    } else {
      Error("expected a number, array, string, object, true, false or null");
      return false;
    }
    pos_ = end;
    return true;
  }

  bool ReadNumber(DataValue* v) {
    const size_t start = pos_;
    if (text_[pos_] == '-') {
      ++pos_;
      // -Infinity, -Inf, -NaN
      if (pos_ < text_.size() && absl::ascii_isalpha(static_cast<unsigned char>(text_[pos_]))) {
        size_t end = pos_;
        while (end < text_.size() && absl::ascii_isalpha(static_cast<unsigned char>(text_[end])))
          ++end;
        double x;
        if (NonFinite(text_.substr(start, end - start), &x)) {
          pos_ = end;
          SetReal(v, x);
          return true;
        }
        Error("malformed number");
        return false;
      }
    }
    auto digits = [&]() {
      const size_t from = pos_;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
      return pos_ - from;
    };
    const size_t int_start = pos_;
    const size_t int_digits = digits();
    if (int_digits == 0 || (int_digits > 1 && text_[int_start] == '0')) {
      pos_ = start;
      Error("malformed number (JSON numbers have no leading zeros and need digits)");
      return false;
    }
    bool integer = true;
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      integer = false;
      if (digits() == 0) {
        Error("malformed number: expected digits after '.'");
        return false;
      }
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      integer = false;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (digits() == 0) {
        Error("malformed number: expected digits in the exponent");
        return false;
      }
    }
    const absl::string_view token = text_.substr(start, pos_ - start);
    if (integer) {
      int64_t i;
      const auto r = std::from_chars(token.data(), token.data() + token.size(), i);
      if (r.ec == std::errc()) {
        v->ints.push_back(i);
        v->reals.push_back(static_cast<double>(i));
        return true;
      }
    }
    double x;
    const auto r = std::from_chars(token.data(), token.data() + token.size(), x);
    if (r.ec == std::errc::result_out_of_range) {
      // Underflow reads as 0; overflow as an error.
      const bool tiny = token.find("e-") != absl::string_view::npos ||
                        token.find("E-") != absl::string_view::npos;
      if (!tiny) {
        pos_ = start;
        Error("number out of the range of a double");
        return false;
      }
      x = 0;
    } else if (r.ec != std::errc()) {
      pos_ = start;
      Error("malformed number");
      return false;
    }
    if (integer) {  // an integer literal beyond int64: a real value, but written as an integer
      v->reals.push_back(x);
      v->all_int = false;
      return true;
    }
    SetReal(v, x);
    return true;
  }

  absl::string_view text_;
  const ModelLimits& limits_;
  size_t pos_ = 0;
  int line_ = 1;
  size_t line_start_ = 0;
  absl::Status status_;
};

}  // namespace

absl::StatusOr<DataMap> ParseDataJson(absl::string_view json, const ModelLimits& limits) {
  if (static_cast<int64_t>(json.size()) > limits.max_data_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("data JSON is ", json.size(), " bytes: exceeds ModelLimits::max_data_bytes (",
                     limits.max_data_bytes, ")"));
  }
  JsonReader reader(json, limits);
  return reader.ReadTop();
}

}  // namespace flowvi::lang
