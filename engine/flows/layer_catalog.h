// The catalog of layer types a flow spec may name: each with its spec token, a description and
// its options. Immutable; safe to read from any thread.
#ifndef FLOWVI_ENGINE_FLOWS_LAYER_CATALOG_H_
#define FLOWVI_ENGINE_FLOWS_LAYER_CATALOG_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/core/params.h"
#include "engine/flows/layer.h"

namespace flowvi {

struct LayerInfo {
  std::string type;  // the spec token, e.g. "planar"
  std::string description;
  std::vector<ParamSpec> options;
  // Builds one layer on R^dim from options already resolved against `options`.
  std::function<absl::StatusOr<std::unique_ptr<Layer>>(int dim, const ParamMap& options)> factory;
};

const std::vector<LayerInfo>& LayerCatalog();

// nullptr when there is no such layer type.
const LayerInfo* FindLayer(absl::string_view type);

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FLOWS_LAYER_CATALOG_H_
