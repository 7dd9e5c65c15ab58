// Serialization of a fitted flow: its spec, dimension, parameters and free-form metadata, as a
// small line-oriented text document. Parameters are written as hexadecimal floating point, so
// a round trip reproduces every bit.
//
//   flowvi-flow 1
//   spec planar*32
//   dim 2
//   meta <key> <value>          (zero or more; value escaped: \\ \n)
//   params <count>
//   <one hex float per line>
//   end
#ifndef FLOWVI_ENGINE_FLOWS_FLOW_IO_H_
#define FLOWVI_ENGINE_FLOWS_FLOW_IO_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/flows/flow.h"

namespace flowvi {

using FlowMetadata = std::map<std::string, std::string>;

// REQUIRES: metadata keys are non-empty and contain no whitespace.
std::string SerializeFlow(const Flow& flow, const FlowMetadata& metadata = {});

// The inverse of SerializeFlow. InvalidArgument, naming the line, for anything malformed: wrong
// header or version, bad spec, parameter count not matching the spec, non-finite parameters.
absl::StatusOr<std::unique_ptr<Flow>> DeserializeFlow(absl::string_view text,
                                                      FlowMetadata* metadata = nullptr);

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FLOWS_FLOW_IO_H_
