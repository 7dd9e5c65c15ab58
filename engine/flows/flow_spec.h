// FlowSpec: the structure of a flow, and its text form shared by the API and the CLI.
//
// Grammar (whitespace ignored):
//   spec  := "meanfield" | group ("," group)*
//   group := type [ "(" key "=" value ("," key "=" value)* ")" ] [ "*" count ]
// e.g. "planar*32", "radial*8,planar*8", "meanfield" (no layers: the diagonal-Gaussian base
// alone). Every flow starts with a learnable diagonal-Gaussian base; the groups are the layers
// applied after it, in order.
#ifndef FLOWVI_ENGINE_FLOWS_FLOW_SPEC_H_
#define FLOWVI_ENGINE_FLOWS_FLOW_SPEC_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/core/params.h"

namespace flowvi {

struct LayerGroup {
  std::string type;  // a LayerCatalog() type
  ParamMap options;  // resolved: every option of the type, defaults filled in
  int count = 1;     // how many layers of this type, each with its own parameters

  bool operator==(const LayerGroup&) const = default;
};

struct FlowSpec {
  std::vector<LayerGroup> groups;

  int num_layers() const;
  // The canonical text; ParseFlowSpec(ToString()) gives back an equal spec.
  std::string ToString() const;
  bool operator==(const FlowSpec&) const = default;
};

// The most layers one spec may declare, whatever the server's own (lower) limits.
inline constexpr int kMaxLayersPerSpec = 100000;

// Parses and validates the text form. Errors are InvalidArgument and name the offending token,
// e.g. "flow spec 'plnar*32', group 'plnar*32': unknown layer type 'plnar'; known: planar, radial".
absl::StatusOr<FlowSpec> ParseFlowSpec(absl::string_view text);

// Validates a structured spec (as the API's structured form arrives): known types, options,
// counts; fills option defaults.
absl::StatusOr<FlowSpec> ValidateFlowSpec(const FlowSpec& spec);

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FLOWS_FLOW_SPEC_H_
