#include "engine/flows/layer_catalog.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/flows/coupling.h"
#include "engine/flows/nice.h"
#include "engine/flows/orthogonal.h"
#include "engine/flows/permute.h"
#include "engine/flows/planar.h"
#include "engine/flows/radial.h"
#include "engine/flows/realnvp.h"
#include "engine/flows/scale.h"
#include "engine/flows/spline.h"

namespace flowvi {
namespace {

template <typename L>
absl::StatusOr<std::unique_ptr<Layer>> MakeSimple(int dim, const ParamMap& /*options*/) {
  return std::unique_ptr<Layer>(std::make_unique<L>(dim));
}

// A positive finite real option, or InvalidArgument naming the layer and the option.
absl::StatusOr<double> PositiveReal(absl::string_view type, const ParamMap& options,
                                    absl::string_view name) {
  const double v = GetReal(options, name);
  if (!(v > 0) || !std::isfinite(v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer '", type, "': option ", name, "=", v, " must be positive and finite"));
  }
  return v;
}

absl::StatusOr<std::unique_ptr<Layer>> MakeNice(int dim, const ParamMap& options) {
  if (absl::Status s = CheckCouplingDim("nice", dim); !s.ok()) return s;
  absl::StatusOr<CouplingOptions> o = ReadCouplingOptions("nice", options);
  if (!o.ok()) return o.status();
  return std::unique_ptr<Layer>(std::make_unique<NiceLayer>(dim, *o));
}

absl::StatusOr<std::unique_ptr<Layer>> MakeRealNvp(int dim, const ParamMap& options) {
  if (absl::Status s = CheckCouplingDim("realnvp", dim); !s.ok()) return s;
  absl::StatusOr<CouplingOptions> o = ReadCouplingOptions("realnvp", options);
  if (!o.ok()) return o.status();
  absl::StatusOr<double> bound = PositiveReal("realnvp", options, "scale_bound");
  if (!bound.ok()) return bound.status();
  return std::unique_ptr<Layer>(std::make_unique<RealNvpLayer>(dim, *o, *bound));
}

absl::StatusOr<std::unique_ptr<Layer>> MakeSpline(int dim, const ParamMap& options) {
  if (absl::Status s = CheckCouplingDim("spline", dim); !s.ok()) return s;
  absl::StatusOr<CouplingOptions> o = ReadCouplingOptions("spline", options);
  if (!o.ok()) return o.status();
  absl::StatusOr<double> bound = PositiveReal("spline", options, "bound");
  if (!bound.ok()) return bound.status();
  const int64_t bins = GetInt(options, "bins");
  if (bins < 1 || bins > SplineLayer::kMaxBins) {
    return absl::InvalidArgumentError(absl::StrCat("layer 'spline': option bins=", bins,
                                                   " is out of range; use 1 to ",
                                                   SplineLayer::kMaxBins));
  }
  return std::unique_ptr<Layer>(
      std::make_unique<SplineLayer>(dim, *o, static_cast<int>(bins), *bound));
}

std::vector<ParamSpec> WithCouplingOptions(std::vector<ParamSpec> own) {
  std::vector<ParamSpec> all = CouplingOptionSpecs();
  all.insert(all.end(), own.begin(), own.end());
  return all;
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
  c.push_back({"nice",
               "NICE additive coupling (Dinh et al. 2014): the last ⌈D/2⌉ coordinates are shifted "
               "by an MLP of the first ⌊D/2⌋, then the halves swap places, so consecutive "
               "couplings alternate halves. log|det| = 0 (add a 'scale' layer). Starts as the "
               "identity. Inverse in closed form. Needs D ≥ 2.",
               CouplingOptionSpecs(), MakeNice});
  c.push_back({"realnvp",
               "RealNVP affine coupling (Dinh et al. 2017): x_b exp(s) + t with (s, t) from an MLP "
               "of the other half and the log-scale bounded, s = c tanh(r/c); halves alternate as "
               "in 'nice'. Starts as the identity. Inverse in closed form. Needs D ≥ 2.",
               WithCouplingOptions({ParamSpec{"scale_bound", ParamType::kReal, 3.0,
                                              "c: the bound on |log-scale| per coordinate"}}),
               MakeRealNvp});
  c.push_back(
      {"spline",
       "Rational-quadratic spline coupling (Durkan et al. 2019): a monotone spline with K bins "
       "on [-B, B] per coordinate, identity outside, from an MLP of the other half; halves "
       "alternate as in 'nice'. Starts as the identity. Inverse in closed form (a quadratic "
       "root). Needs D ≥ 2.",
       WithCouplingOptions(
           {ParamSpec{"bins", ParamType::kInt, int64_t{8}, "K: number of bins (1 to 128)"},
            ParamSpec{"bound", ParamType::kReal, 3.0, "B: the spline acts on [-B, B]"}}),
       MakeSpline});
  c.push_back({"permute",
               "A fixed random permutation of the coordinates (NICE-perm's mixing), drawn at "
               "initialization and stored with the model as D keys (never trained). log|det| = 0.",
               {},
               MakeSimple<PermuteLayer>});
  c.push_back({"orthogonal",
               "A fixed random orthogonal mixing matrix (NICE-ortho), drawn at initialization and "
               "stored with the model as D Householder vectors (D² numbers, never trained). "
               "log|det| = 0.",
               {},
               MakeSimple<OrthogonalLayer>});
  c.push_back({"scale",
               "Diagonal scaling exp(s) ⊙ z (NICE's final scaling layer). D parameters, starting "
               "at the identity.",
               {},
               MakeSimple<ScaleLayer>});
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
