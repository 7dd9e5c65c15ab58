#include "engine/flows/layer_catalog.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/flows/autoregressive.h"
#include "engine/flows/circconv.h"
#include "engine/flows/coupling.h"
#include "engine/flows/lu_linear.h"
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

// maf and iaf: checks the MADE options, then builds the layer.
template <AutoregressiveLayer::Kind kKind>
absl::StatusOr<std::unique_ptr<Layer>> MakeAutoregressive(int dim, const ParamMap& options) {
  const absl::string_view type = kKind == AutoregressiveLayer::Kind::kIaf ? "iaf" : "maf";
  const int64_t hidden = GetInt(options, "hidden");
  const int64_t depth = GetInt(options, "depth");
  if (hidden < 1 || hidden > AutoregressiveLayer::kMaxHidden) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer '", type, "' option 'hidden' must be in [1, ",
                     AutoregressiveLayer::kMaxHidden, "], got ", hidden));
  }
  if (depth < 1 || depth > AutoregressiveLayer::kMaxDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer '", type, "' option 'depth' must be in [1, ",
                     AutoregressiveLayer::kMaxDepth, "], got ", depth));
  }
  return std::unique_ptr<Layer>(std::make_unique<AutoregressiveLayer>(
      kKind, dim, static_cast<int>(hidden), static_cast<int>(depth)));
}

std::vector<ParamSpec> MadeOptions() {
  return {ParamSpec{"hidden", ParamType::kInt, ParamValue(int64_t{32}),
                    "width H of each hidden layer of the MADE conditioner (1 to 4096)"},
          ParamSpec{"depth", ParamType::kInt, ParamValue(int64_t{2}),
                    "number of hidden layers of the MADE conditioner (1 to 8)"}};
}

absl::StatusOr<std::unique_ptr<Layer>> MakeLinear(int dim, const ParamMap& /*options*/) {
  if (dim > LuLinearLayer::kMaxDim) {
    return absl::InvalidArgumentError(absl::StrCat("layer 'linear' supports dimensions up to ",
                                                   LuLinearLayer::kMaxDim, ", got ", dim));
  }
  return std::unique_ptr<Layer>(std::make_unique<LuLinearLayer>(dim));
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
  c.push_back({"iaf",
               "Inverse autoregressive flow (Kingma et al. 2016): y = x exp(s(x)) + m(x), (m, s) "
               "from a MADE conditioner over a fixed random input order, log-scale soft-clamped "
               "to [-3, 3]; starts at the identity. Sampling (training) in one conditioner pass; "
               "log-density of given points by D - 1 sequential passes. D + (MADE weights) "
               "parameters, of which D (the order) are fixed.",
               MadeOptions(), MakeAutoregressive<AutoregressiveLayer::Kind::kIaf>});
  c.push_back({"maf",
               "Masked autoregressive flow (Papamakarios et al. 2017): y = x exp(s(y)) + m(y), "
               "(m, s) from a MADE conditioner over a fixed random input order, log-scale "
               "soft-clamped to [-3, 3]; starts at the identity. Log-density of given points in "
               "one conditioner pass (the cheap direction for density estimation); sampling "
               "(training) by D - 1 sequential passes. D + (MADE weights) parameters, of which D "
               "(the order) are fixed.",
               MadeOptions(), MakeAutoregressive<AutoregressiveLayer::Kind::kMaf>});
  c.push_back({"circconv",
               "Circular convolution (Karami et al. 2019): y = w ⊛ x with the filter's DFT "
               "parameterized as exp(ρ + iφ) (never 0, so always invertible); log|det| = Σ log|ŵ|; "
               "forward and inverse through the FFT in O(D log D). D parameters; starts at the "
               "identity.",
               {},
               MakeSimple<CircularConvLayer>});
  c.push_back({"linear",
               "Invertible linear mixing, LU-parameterized (as Glow): y = P L (U + diag(exp(s))) x "
               "with a fixed random permutation P, unit-lower L, strictly-upper U; log|det| = Σ s; "
               "inverse by two triangular solves. D² + D parameters, of which D (the permutation) "
               "are fixed; starts as the permutation P.",
               {},
               MakeLinear});
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
