#include "engine/core/params.h"

#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace flowvi {
namespace {

absl::StatusOr<double> ParseReal(absl::string_view text) {
  double v = 0;
  absl::string_view t = absl::StripAsciiWhitespace(text);
  if (!absl::SimpleAtod(t, &v) || !std::isfinite(v)) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not a finite real number"));
  }
  return v;
}

std::string FormatReal(double v) { return absl::StrFormat("%.17g", v); }

}  // namespace

absl::string_view ParamTypeName(ParamType type) {
  switch (type) {
    case ParamType::kBool:
      return "bool";
    case ParamType::kInt:
      return "int";
    case ParamType::kReal:
      return "real";
    case ParamType::kRealVector:
      return "real vector";
  }
  return "unknown";
}

absl::StatusOr<ParamValue> ParseParamValue(ParamType type, absl::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  switch (type) {
    case ParamType::kBool: {
      const std::string lower = absl::AsciiStrToLower(t);
      if (lower == "true" || lower == "1") return ParamValue(true);
      if (lower == "false" || lower == "0") return ParamValue(false);
      return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not a bool (true or false)"));
    }
    case ParamType::kInt: {
      int64_t v = 0;
      if (!absl::SimpleAtoi(t, &v)) {
        return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not an integer"));
      }
      return ParamValue(v);
    }
    case ParamType::kReal: {
      absl::StatusOr<double> v = ParseReal(t);
      if (!v.ok()) return v.status();
      return ParamValue(*v);
    }
    case ParamType::kRealVector: {
      absl::string_view body = t;
      const bool open = absl::ConsumePrefix(&body, "[");
      const bool close = absl::ConsumeSuffix(&body, "]");
      if (open != close) {
        return absl::InvalidArgumentError(absl::StrCat("'", text, "' has unbalanced brackets"));
      }
      std::vector<double> values;
      if (!absl::StripAsciiWhitespace(body).empty()) {
        for (absl::string_view piece : absl::StrSplit(body, ',')) {
          absl::StatusOr<double> v = ParseReal(piece);
          if (!v.ok()) {
            return absl::InvalidArgumentError(
                absl::StrCat("in vector '", text, "': ", v.status().message()));
          }
          values.push_back(*v);
        }
      }
      return ParamValue(std::move(values));
    }
  }
  return absl::InternalError("unhandled parameter type");
}

std::string FormatParamValue(const ParamValue& value) {
  struct Visitor {
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(int64_t i) const { return absl::StrCat(i); }
    std::string operator()(double d) const { return FormatReal(d); }
    std::string operator()(const std::vector<double>& v) const {
      return absl::StrCat(
          "[",
          absl::StrJoin(v, ",", [](std::string* out, double d) { out->append(FormatReal(d)); }),
          "]");
    }
  };
  return std::visit(Visitor{}, value);
}

absl::StatusOr<ParamMap> ResolveParams(const std::vector<ParamSpec>& specs, const ParamMap& given,
                                       absl::string_view owner) {
  ParamMap out;
  for (const auto& [name, value] : given) {
    const ParamSpec* spec = nullptr;
    for (const ParamSpec& s : specs) {
      if (s.name == name) spec = &s;
    }
    if (spec == nullptr) {
      std::vector<std::string> names;
      for (const ParamSpec& s : specs) names.push_back(s.name);
      return absl::InvalidArgumentError(
          absl::StrCat(owner, " has no parameter '", name, "'",
                       names.empty() ? std::string("; it takes none")
                                     : absl::StrCat("; it takes: ", absl::StrJoin(names, ", "))));
    }
    ParamValue v = value;
    if (spec->type == ParamType::kReal && std::holds_alternative<int64_t>(v)) {
      v = static_cast<double>(std::get<int64_t>(v));
    }
    if (spec->type == ParamType::kInt && std::holds_alternative<double>(v)) {
      const double d = std::get<double>(v);
      if (std::floor(d) == d && std::abs(d) < 9.0e15) v = static_cast<int64_t>(d);
    }
    if (spec->type == ParamType::kRealVector && std::holds_alternative<double>(v)) {
      v = std::vector<double>{std::get<double>(v)};
    }
    const bool type_ok =
        (spec->type == ParamType::kBool && std::holds_alternative<bool>(v)) ||
        (spec->type == ParamType::kInt && std::holds_alternative<int64_t>(v)) ||
        (spec->type == ParamType::kReal && std::holds_alternative<double>(v)) ||
        (spec->type == ParamType::kRealVector && std::holds_alternative<std::vector<double>>(v));
    if (!type_ok) {
      return absl::InvalidArgumentError(absl::StrCat(owner, " parameter '", name, "' must be a ",
                                                     ParamTypeName(spec->type), ", got ",
                                                     FormatParamValue(value)));
    }
    if (spec->type == ParamType::kReal && !std::isfinite(std::get<double>(v))) {
      return absl::InvalidArgumentError(
          absl::StrCat(owner, " parameter '", name, "' must be finite"));
    }
    if (spec->type == ParamType::kRealVector) {
      for (double d : std::get<std::vector<double>>(v)) {
        if (!std::isfinite(d)) {
          return absl::InvalidArgumentError(
              absl::StrCat(owner, " parameter '", name, "' must be all finite"));
        }
      }
    }
    out.emplace(name, std::move(v));
  }
  for (const ParamSpec& s : specs) {
    if (!out.contains(s.name)) out.emplace(s.name, s.default_value);
  }
  return out;
}

bool GetBool(const ParamMap& params, absl::string_view name) {
  return std::get<bool>(params.find(name)->second);
}
int64_t GetInt(const ParamMap& params, absl::string_view name) {
  return std::get<int64_t>(params.find(name)->second);
}
double GetReal(const ParamMap& params, absl::string_view name) {
  return std::get<double>(params.find(name)->second);
}
const std::vector<double>& GetRealVector(const ParamMap& params, absl::string_view name) {
  return std::get<std::vector<double>>(params.find(name)->second);
}

}  // namespace flowvi
