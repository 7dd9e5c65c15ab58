#include "engine/flows/coupling.h"

#include "absl/strings/str_cat.h"

namespace flowvi {

std::vector<ParamSpec> CouplingOptionSpecs() {
  return {
      ParamSpec{"hidden", ParamType::kInt, int64_t{32},
                "width of the conditioner MLP's hidden layers (1 to 1024)"},
      ParamSpec{"depth", ParamType::kInt, int64_t{2},
                "number of hidden layers of the conditioner MLP (0 to 8; 0 = affine in x_a)"},
      ParamSpec{"relu", ParamType::kBool, false, "ReLU hidden units instead of tanh"},
  };
}

absl::StatusOr<CouplingOptions> ReadCouplingOptions(absl::string_view type,
                                                    const ParamMap& options) {
  CouplingOptions o;
  const int64_t hidden = GetInt(options, "hidden");
  const int64_t depth = GetInt(options, "depth");
  if (hidden < 1 || hidden > 1024) {
    return absl::InvalidArgumentError(absl::StrCat("layer '", type, "': option hidden=", hidden,
                                                   " is out of range; use 1 to 1024"));
  }
  if (depth < 0 || depth > 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer '", type, "': option depth=", depth, " is out of range; use 0 to 8"));
  }
  o.hidden = static_cast<int>(hidden);
  o.depth = static_cast<int>(depth);
  o.activation = GetBool(options, "relu") ? MlpActivation::kRelu : MlpActivation::kTanh;
  return o;
}

absl::Status CheckCouplingDim(absl::string_view type, int dim) {
  if (dim >= 2) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("layer '", type,
                   "' needs dimension ≥ 2 (it splits the coordinates into two "
                   "halves); the target has dimension ",
                   dim));
}

absl::Status CheckFiniteForInverse(absl::string_view type, const Matrix& out) {
  for (Eigen::Index j = 0; j < out.cols(); ++j) {
    if (!out.col(j).allFinite()) {
      return absl::InvalidArgumentError(
          absl::StrCat(type, " layer inverse: point ", j, " has a non-finite coordinate"));
    }
  }
  return absl::OkStatus();
}

CouplingCache::CouplingCache(const Mlp& m, int d_b, int n, int num_aux)
    : mlp(m.NewCache(n)), g_theta(m.out(), n) {
  for (int i = 0; i < num_aux; ++i) aux.emplace_back(d_b, n);
}

CouplingLayer::CouplingLayer(int dim, int k, int num_aux, const CouplingOptions& options)
    : dim_(dim),
      mlp_(dim / 2, k * (dim - dim / 2), options.hidden, options.depth, options.activation),
      num_aux_(num_aux) {}

void CouplingLayer::InitParams(Rng& rng, VectorRef params) const { mlp_.InitParams(rng, params); }

std::unique_ptr<LayerCache> CouplingLayer::NewCache(int n) const {
  auto cache = std::make_unique<CouplingCache>(mlp_, d_b(), n, num_aux_);
  ShapeAux(*cache, n);
  return cache;
}

void CouplingLayer::Forward(ConstVectorRef params, const Matrix& in, Matrix& out,
                            LogDetAccumulator& logdet, LayerCache* cache) const {
  auto& c = *static_cast<CouplingCache*>(cache);
  out.resize(in.rows(), in.cols());  // no allocation when the shape is right
  const auto x_a = in.topRows(d_a());
  mlp_.Forward(params, x_a, &c.mlp);
  TransformForward(c.mlp.output(), in.bottomRows(d_b()), out.topRows(d_b()), logdet, c);
  out.bottomRows(d_a()) = x_a;
}

void CouplingLayer::Backward(ConstVectorRef params, const Matrix& in, const Matrix& grad_out,
                             const RowVector& dlogdet, LayerCache* cache, VectorRef grad_params,
                             Matrix& grad_in) const {
  auto& c = *static_cast<CouplingCache*>(cache);
  grad_in.resize(in.rows(), in.cols());
  TransformBackward(c.mlp.output(), in.bottomRows(d_b()), grad_out.topRows(d_b()), dlogdet, c,
                    grad_in.bottomRows(d_b()));
  // x_a reaches the output directly and through the conditioner.
  grad_in.topRows(d_a()) = grad_out.bottomRows(d_a());
  BatchRef g_x_a = grad_in.topRows(d_a());
  mlp_.Backward(params, in.topRows(d_a()), c.g_theta, &c.mlp, grad_params, &g_x_a);
}

absl::Status CouplingLayer::Inverse(ConstVectorRef params, const Matrix& out, Matrix& in,
                                    RowVector& logdet) const {
  if (absl::Status s = CheckFiniteForInverse(type(), out); !s.ok()) return s;
  in.resize(out.rows(), out.cols());
  const auto x_a = out.bottomRows(d_a());
  MlpCache mlp_cache = mlp_.NewCache(static_cast<int>(out.cols()));
  mlp_.Forward(params, x_a, &mlp_cache);
  TransformInverse(mlp_cache.output(), out.topRows(d_b()), in.bottomRows(d_b()), logdet, nullptr);
  in.topRows(d_a()) = x_a;
  return absl::OkStatus();
}

absl::Status CouplingLayer::InverseWithCache(ConstVectorRef params, const Matrix& out, Matrix& in,
                                             RowVector& logdet, LayerCache* cache) const {
  if (cache == nullptr || out.cols() != static_cast<CouplingCache*>(cache)->g_theta.cols()) {
    return Inverse(params, out, in, logdet);
  }
  if (absl::Status s = CheckFiniteForInverse(type(), out); !s.ok()) return s;
  auto& c = *static_cast<CouplingCache*>(cache);
  in.resize(out.rows(), out.cols());
  const auto x_a = out.bottomRows(d_a());
  mlp_.Forward(params, x_a, &c.mlp);
  TransformInverse(c.mlp.output(), out.topRows(d_b()), in.bottomRows(d_b()), logdet, &c);
  in.topRows(d_a()) = x_a;
  return absl::OkStatus();
}

}  // namespace flowvi
