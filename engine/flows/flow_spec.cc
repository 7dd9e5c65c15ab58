#include "engine/flows/flow_spec.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "engine/flows/layer_catalog.h"

namespace flowvi {
namespace {

std::string KnownLayerTypes() {
  std::vector<std::string> names;
  for (const LayerInfo& info : LayerCatalog()) names.push_back(info.type);
  return absl::StrJoin(names, ", ");
}

// Splits at the commas that are not inside (...) or [...]. Empty pieces are kept so that
// "planar,,radial" is reported rather than silently accepted.
absl::StatusOr<std::vector<absl::string_view>> SplitTopLevel(absl::string_view text) {
  std::vector<absl::string_view> pieces;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (ch == '(' || ch == '[') ++depth;
    if (ch == ')' || ch == ']') {
      if (--depth < 0)
        return absl::InvalidArgumentError(absl::StrCat("unbalanced '", std::string(1, ch), "'"));
    }
    if (ch == ',' && depth == 0) {
      pieces.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  if (depth != 0) return absl::InvalidArgumentError("unbalanced brackets");
  pieces.push_back(text.substr(start));
  return pieces;
}

absl::Status ResolveGroup(LayerGroup& group) {
  const LayerInfo* info = FindLayer(group.type);
  if (info == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown layer type '", group.type, "'; known: ", KnownLayerTypes()));
  }
  absl::StatusOr<ParamMap> options =
      ResolveParams(info->options, group.options, absl::StrCat("layer '", group.type, "'"));
  if (!options.ok()) return options.status();
  group.options = *std::move(options);
  if (group.count < 1 || group.count > kMaxLayersPerSpec) {
    return absl::InvalidArgumentError(absl::StrCat("layer count must be between 1 and ",
                                                   kMaxLayersPerSpec, ", got ", group.count));
  }
  return absl::OkStatus();
}

absl::StatusOr<LayerGroup> ParseGroup(absl::string_view token) {
  absl::string_view t = absl::StripAsciiWhitespace(token);
  LayerGroup group;
  if (t.empty()) return absl::InvalidArgumentError("empty layer group");
  // "*count" suffix (after any option list).
  const size_t star = t.rfind('*');
  if (star != absl::string_view::npos && t.find(')', star) == absl::string_view::npos) {
    absl::string_view count_text = absl::StripAsciiWhitespace(t.substr(star + 1));
    int64_t count = 0;
    if (!absl::SimpleAtoi(count_text, &count)) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer count '", count_text, "' is not an integer"));
    }
    if (count < 1 || count > kMaxLayersPerSpec) {
      return absl::InvalidArgumentError(absl::StrCat("layer count must be between 1 and ",
                                                     kMaxLayersPerSpec, ", got ", count_text));
    }
    group.count = static_cast<int>(count);
    t = absl::StripAsciiWhitespace(t.substr(0, star));
  }
  absl::string_view options_text;
  const size_t open = t.find('(');
  if (open != absl::string_view::npos) {
    if (t.back() != ')') return absl::InvalidArgumentError("option list must end with ')'");
    options_text = t.substr(open + 1, t.size() - open - 2);
    t = absl::StripAsciiWhitespace(t.substr(0, open));
  }
  for (char ch : t) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(ch)) && ch != '_') {
      return absl::InvalidArgumentError(absl::StrCat("layer type '", t, "' is not a name"));
    }
  }
  group.type = std::string(t);
  const LayerInfo* info = FindLayer(group.type);
  if (info == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown layer type '", group.type, "'; known: ", KnownLayerTypes()));
  }
  if (!absl::StripAsciiWhitespace(options_text).empty()) {
    absl::StatusOr<std::vector<absl::string_view>> pairs = SplitTopLevel(options_text);
    if (!pairs.ok()) return pairs.status();
    for (absl::string_view pair : *pairs) {
      const size_t eq = pair.find('=');
      if (eq == absl::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat("option '", absl::StripAsciiWhitespace(pair),
                                                       "' is not of the form key=value"));
      }
      const std::string key(absl::StripAsciiWhitespace(pair.substr(0, eq)));
      const ParamSpec* spec = nullptr;
      for (const ParamSpec& s : info->options) {
        if (s.name == key) spec = &s;
      }
      if (spec == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("layer '", group.type, "' has no option '", key, "'"));
      }
      absl::StatusOr<ParamValue> value = ParseParamValue(spec->type, pair.substr(eq + 1));
      if (!value.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("option '", key, "': ", value.status().message()));
      }
      group.options[key] = *std::move(value);
    }
  }
  if (absl::Status s = ResolveGroup(group); !s.ok()) return s;
  return group;
}

}  // namespace

int FlowSpec::num_layers() const {
  int n = 0;
  for (const LayerGroup& g : groups) n += g.count;
  return n;
}

std::string FlowSpec::ToString() const {
  if (groups.empty()) return "meanfield";
  std::vector<std::string> parts;
  for (const LayerGroup& g : groups) {
    std::string part = g.type;
    const LayerInfo* info = FindLayer(g.type);
    std::vector<std::string> opts;
    for (const auto& [key, value] : g.options) {
      // Options equal to their default are left out, so the text stays short and canonical.
      bool is_default = false;
      if (info != nullptr) {
        for (const ParamSpec& s : info->options) {
          if (s.name == key && s.default_value == value) is_default = true;
        }
      }
      if (!is_default) opts.push_back(absl::StrCat(key, "=", FormatParamValue(value)));
    }
    if (!opts.empty()) absl::StrAppend(&part, "(", absl::StrJoin(opts, ","), ")");
    if (g.count != 1) absl::StrAppend(&part, "*", g.count);
    parts.push_back(std::move(part));
  }
  return absl::StrJoin(parts, ",");
}

absl::StatusOr<FlowSpec> ParseFlowSpec(absl::string_view text) {
  const absl::string_view t = absl::StripAsciiWhitespace(text);
  auto fail = [&](absl::string_view token, const absl::Status& s) {
    return absl::InvalidArgumentError(absl::StrCat("flow spec '", text, "'",
                                                   token.empty() ? "" : ", group '", token,
                                                   token.empty() ? "" : "'", ": ", s.message()));
  };
  if (t.empty())
    return fail("", absl::InvalidArgumentError("is empty (use 'meanfield' for no layers)"));
  FlowSpec spec;
  if (t == "meanfield") return spec;
  absl::StatusOr<std::vector<absl::string_view>> tokens = SplitTopLevel(t);
  if (!tokens.ok()) return fail("", tokens.status());
  int64_t total = 0;
  for (absl::string_view token : *tokens) {
    const absl::string_view trimmed = absl::StripAsciiWhitespace(token);
    if (trimmed == "meanfield") {
      return fail(trimmed, absl::InvalidArgumentError("'meanfield' must stand alone"));
    }
    absl::StatusOr<LayerGroup> group = ParseGroup(token);
    if (!group.ok()) return fail(trimmed, group.status());
    total += group->count;
    if (total > kMaxLayersPerSpec) {
      return fail(trimmed, absl::InvalidArgumentError(
                               absl::StrCat("more than ", kMaxLayersPerSpec, " layers in all")));
    }
    spec.groups.push_back(*std::move(group));
  }
  return spec;
}

absl::StatusOr<FlowSpec> ValidateFlowSpec(const FlowSpec& spec) {
  FlowSpec out = spec;
  int64_t total = 0;
  for (size_t i = 0; i < out.groups.size(); ++i) {
    if (absl::Status s = ResolveGroup(out.groups[i]); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("flow spec layer group ", i + 1, " ('",
                                                     out.groups[i].type, "'): ", s.message()));
    }
    total += out.groups[i].count;
  }
  if (total > kMaxLayersPerSpec) {
    return absl::InvalidArgumentError(
        absl::StrCat("flow spec has ", total, " layers; at most ", kMaxLayersPerSpec));
  }
  return out;
}

}  // namespace flowvi
