#include "engine/flows/lu_linear.h"

#include <Eigen/Core>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/flows/key_order.h"

namespace flowvi {
namespace {

// The factors of W for one parameter vector.
struct Factors {
  explicit Factors(int d) : order(d), lower(d, d), upper(d, d), w(d, d) {}

  // From params: order, L (unit lower), U + diag(exp(s)) and W = P L U.
  void Compute(ConstVectorRef params) {
    const int d = static_cast<int>(order.size());
    ArgsortKeys(params.data(), d, order.data());
    const double* off = params.data() + 2 * d;
    for (int j = 0; j < d; ++j) {
      for (int i = 0; i < d; ++i) {
        if (i == j) {
          lower(i, i) = 1.0;
          upper(i, i) = std::exp(params[d + i]);
          continue;
        }
        lower(i, j) = i > j ? *off : 0.0;
        upper(i, j) = i < j ? *off : 0.0;
        ++off;
      }
    }
    // L U is formed densely: O(D³), against the O(D² N) products with the batch.
    for (int r = 0; r < d; ++r) w.row(r).noalias() = lower.row(order[r]) * upper;
  }

  std::vector<int> order;
  Matrix lower, upper, w;
};

class LinearCache final : public LayerCache {
 public:
  explicit LinearCache(int d) : f(d), grad_w(d, d), grad_a(d, d), grad_l(d, d), grad_u(d, d) {}
  Factors f;
  Matrix grad_w;  // dL/dW
  Matrix grad_a;  // dL/d(L U) = Pᵀ dL/dW
  Matrix grad_l, grad_u;
};

}  // namespace

void LuLinearLayer::InitParams(Rng& rng, VectorRef params) const {
  rng.FillUniform(0.0, 1.0, params.segment(0, dim_));
  params.segment(dim_, params.size() - dim_).setZero();
}

std::unique_ptr<LayerCache> LuLinearLayer::NewCache(int /*n*/) const {
  return std::make_unique<LinearCache>(dim_);
}

void LuLinearLayer::Forward(ConstVectorRef params, const Matrix& in, Matrix& out,
                            LogDetAccumulator& logdet, LayerCache* cache) const {
  auto& c = *static_cast<LinearCache*>(cache);
  c.f.Compute(params);
  out.resize(in.rows(), in.cols());
  out.noalias() = c.f.w * in;
  logdet.AddConstant(params.segment(dim_, dim_).sum());
}

void LuLinearLayer::Backward(ConstVectorRef /*params*/, const Matrix& in, const Matrix& grad_out,
                             const RowVector& dlogdet, LayerCache* cache, VectorRef grad_params,
                             Matrix& grad_in) const {
  auto& c = *static_cast<LinearCache*>(cache);
  const int d = dim_;
  grad_in.resize(in.rows(), in.cols());
  grad_in.noalias() = c.f.w.transpose() * grad_out;
  c.grad_w.noalias() = grad_out * in.transpose();
  for (int r = 0; r < d; ++r) c.grad_a.row(c.f.order[r]) = c.grad_w.row(r);
  // A = L U: dL/dL = Ā Uᵀ, dL/dU = Lᵀ Ā (only their free entries are used below).
  c.grad_l.noalias() = c.grad_a * c.f.upper.transpose();
  c.grad_u.noalias() = c.f.lower.transpose() * c.grad_a;
  const double sum_dlogdet = dlogdet.sum();
  for (int i = 0; i < d; ++i) {
    grad_params[d + i] += c.grad_u(i, i) * c.f.upper(i, i) + sum_dlogdet;
  }
  double* off = grad_params.data() + 2 * d;
  for (int j = 0; j < d; ++j) {
    for (int i = 0; i < d; ++i) {
      if (i == j) continue;
      *off++ += i > j ? c.grad_l(i, j) : c.grad_u(i, j);
    }
  }
}

absl::Status LuLinearLayer::Inverse(ConstVectorRef params, const Matrix& out, Matrix& in,
                                    RowVector& logdet) const {
  for (Eigen::Index j = 0; j < out.cols(); ++j) {
    if (!out.col(j).allFinite()) {
      return absl::InvalidArgumentError(
          absl::StrCat("linear layer inverse: the point at column ", j, " is not finite"));
    }
  }
  Factors f(dim_);
  f.Compute(params);
  in.resize(out.rows(), out.cols());
  for (int r = 0; r < dim_; ++r) in.row(f.order[r]) = out.row(r);  // Pᵀ y
  f.lower.triangularView<Eigen::UnitLower>().solveInPlace(in);
  f.upper.triangularView<Eigen::Upper>().solveInPlace(in);
  if (!in.allFinite()) {
    return absl::InvalidArgumentError(
        "linear layer inverse: the result overflows (W is too close to singular for these points)");
  }
  logdet.array() += params.segment(dim_, dim_).sum();
  return absl::OkStatus();
}

}  // namespace flowvi
