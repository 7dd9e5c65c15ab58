#include "engine/flows/layer_catalog.h"

#include "engine/flows/planar.h"
#include "engine/flows/radial.h"

namespace flowvi {
namespace {

template <typename L>
absl::StatusOr<std::unique_ptr<Layer>> MakeSimple(int dim, const ParamMap& /*options*/) {
  return std::unique_ptr<Layer>(std::make_unique<L>(dim));
}

std::vector<LayerInfo> BuildCatalog() {
  std::vector<LayerInfo> c;
  c.push_back({"planar",
               "Planar flow (Rezende & Mohamed 2015): z + û tanh(wᵀz + b), with û constrained so "
               "that wᵀû ≥ −1 (always invertible). 2D+1 parameters. Inverse by a bracketed "
               "1-D root solve.",
               {},
               MakeSimple<PlanarLayer>});
  c.push_back({"radial",
               "Radial flow (Rezende & Mohamed 2015): z + β/(α + r) (z − z₀), r = ‖z − z₀‖, with "
               "α > 0 and β ≥ −α (always invertible). D+2 parameters. Inverse by a bracketed "
               "1-D root solve.",
               {},
               MakeSimple<RadialLayer>});
  return c;
}

}  // namespace

const std::vector<LayerInfo>& LayerCatalog() {
  static const std::vector<LayerInfo>* const catalog = new std::vector<LayerInfo>(BuildCatalog());
  return *catalog;
}

const LayerInfo* FindLayer(absl::string_view type) {
  for (const LayerInfo& info : LayerCatalog()) {
    if (info.type == type) return &info;
  }
  return nullptr;
}

}  // namespace flowvi
