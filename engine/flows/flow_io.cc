#include "engine/flows/flow_io.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace flowvi {
namespace {

constexpr absl::string_view kHeader = "flowvi-flow 1";

std::string Escape(absl::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Unescape(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      out += s[i + 1] == 'n' ? '\n' : s[i + 1];
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

absl::Status LineError(size_t line, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("serialized flow, line ", line + 1, ": ", what));
}

}  // namespace

std::string SerializeFlow(const Flow& flow, const FlowMetadata& metadata) {
  std::string out =
      absl::StrCat(kHeader, "\nspec ", flow.spec().ToString(), "\ndim ", flow.dim(), "\n");
  for (const auto& [key, value] : metadata)
    absl::StrAppend(&out, "meta ", key, " ", Escape(value), "\n");
  absl::StrAppend(&out, "params ", flow.num_params(), "\n");
  for (double p : flow.params()) absl::StrAppend(&out, absl::StrFormat("%a", p), "\n");
  absl::StrAppend(&out, "end\n");
  return out;
}

absl::StatusOr<std::unique_ptr<Flow>> DeserializeFlow(absl::string_view text,
                                                      FlowMetadata* metadata) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  size_t i = 0;
  auto next = [&]() -> absl::string_view { return i < lines.size() ? lines[i] : ""; };
  if (next() != kHeader) {
    return LineError(i, absl::StrCat("expected '", kHeader, "' (wrong format or version)"));
  }
  ++i;
  absl::string_view spec_text = next();
  if (!absl::ConsumePrefix(&spec_text, "spec ")) return LineError(i, "expected 'spec <flow spec>'");
  absl::StatusOr<FlowSpec> spec = ParseFlowSpec(spec_text);
  if (!spec.ok()) return LineError(i, spec.status().message());
  ++i;
  absl::string_view dim_text = next();
  int dim = 0;
  if (!absl::ConsumePrefix(&dim_text, "dim ") || !absl::SimpleAtoi(dim_text, &dim) || dim < 1) {
    return LineError(i, "expected 'dim <positive integer>'");
  }
  ++i;
  absl::StatusOr<std::unique_ptr<Flow>> flow = Flow::Create(*spec, dim);
  if (!flow.ok()) return LineError(i, flow.status().message());
  FlowMetadata meta;
  for (absl::string_view line = next(); absl::ConsumePrefix(&line, "meta "); line = next()) {
    const size_t space = line.find(' ');
    if (space == 0 || space == absl::string_view::npos)
      return LineError(i, "expected 'meta <key> <value>'");
    meta[std::string(line.substr(0, space))] = Unescape(line.substr(space + 1));
    ++i;
  }
  absl::string_view count_text = next();
  int count = 0;
  if (!absl::ConsumePrefix(&count_text, "params ") || !absl::SimpleAtoi(count_text, &count)) {
    return LineError(i, "expected 'params <count>'");
  }
  if (count != (*flow)->num_params()) {
    return LineError(i, absl::StrCat("the spec needs ", (*flow)->num_params(),
                                     " parameters, the document has ", count));
  }
  ++i;
  Vector& params = (*flow)->mutable_params();
  for (int k = 0; k < count; ++k, ++i) {
    const std::string value(next());
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(value.c_str(), &end);
    if (value.empty() || end != value.c_str() + value.size() || !std::isfinite(v)) {
      return LineError(i, absl::StrCat("parameter ", k, " '", value, "' is not a finite number"));
    }
    params[k] = v;
  }
  if (next() != "end") return LineError(i, "expected 'end'");
  if (metadata != nullptr) *metadata = std::move(meta);
  return flow;
}

}  // namespace flowvi
