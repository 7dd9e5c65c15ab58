#include "engine/flows/autoregressive.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/core/array_math.h"

namespace flowvi {
namespace {

class AutoregressiveCache final : public LayerCache {
 public:
  AutoregressiveCache(const MadeNet& net, int n)
      : made(net.NewCache(n)),
        ma(2 * net.dim(), n),
        s(net.dim(), n),
        e(net.dim(), n),
        y(net.dim(), n),
        lambda(net.dim(), n),
        grad_x(net.dim(), n),
        grad_made(2 * net.dim(), n) {}
  MadeCache made;
  Matrix ma;         // the conditioner's output (m, a)
  Matrix s;          // clamped log-scale
  Matrix e;          // exp(s)
  Matrix y;          // maf: the output, the conditioner's input
  Matrix lambda;     // maf: the adjoint dL/dx being solved for
  Matrix grad_x;     // dL/d(conditioner input) from MADE
  Matrix grad_made;  // dL/d(m, a)
};

// s = C tanh(a / C) and e = exp(s) from the conditioner's output ma = (m, a): a copied into s,
// then one pass over the contiguous block.
void LogScale(const Matrix& ma, Matrix& s, Matrix& e) {
  s = ma.bottomRows(s.rows());
  SoftClampExpArray(s.data(), s.size(), AutoregressiveLayer::kMaxLogScale, s.data(), e.data());
}

// y = x ⊙ e + m, with m the first d rows of ma, and sum += the column sums of s (the log|det|).
// Plain loops over the columns: Eigen's expressions on these few-row blocks (d = 2 in the 2-D
// fits) run a dynamic-size loop per column.
void AffineStep(const Matrix& x, const Matrix& ma, const Matrix& e, Matrix& y) {
  const Eigen::Index d = x.rows();
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    const double* xj = x.col(j).data();
    const double* mj = ma.col(j).data();
    const double* ej = e.col(j).data();
    double* yj = y.col(j).data();
    for (Eigen::Index i = 0; i < d; ++i) yj[i] = xj[i] * ej[i] + mj[i];
  }
}
void AddColumnSums(const Matrix& s, RowVector& sum) {
  for (Eigen::Index j = 0; j < s.cols(); ++j) {
    const double* sj = s.col(j).data();
    double t = sj[0];
    for (Eigen::Index i = 1; i < s.rows(); ++i) t += sj[i];
    sum[j] += t;
  }
}

// dL/d(m, a) for y = x ⊙ e + m, given the cotangent g_y of y, the x in that formula, and
// dlogdet for log|det| = Σ s: dL/dm = g_y, dL/ds = g_y ⊙ x ⊙ e + dlogdet, ds/da = 1 − (s/C)².
// For maf's adjoint sweeps g_y is λ ⊙ exp(−s) (see Backward), passed as lambda and inv = true.
void MadeCotangents(const Matrix& g, const Matrix& x, const RowVector& dlogdet, bool inv,
                    AutoregressiveCache& c) {
  constexpr double kInvC = 1.0 / AutoregressiveLayer::kMaxLogScale;
  const Eigen::Index d = g.rows();
  for (Eigen::Index j = 0; j < g.cols(); ++j) {
    for (Eigen::Index i = 0; i < d; ++i) {
      const double e = c.e(i, j);
      const double gm = inv ? g(i, j) / e : g(i, j);
      const double t = c.s(i, j) * kInvC;
      c.grad_made(i, j) = gm;
      c.grad_made(d + i, j) = (gm * x(i, j) * e + dlogdet[j]) * (1.0 - t * t);
    }
  }
}

// The sequential direction (maf's Forward, iaf's Inverse) solves for the coordinates in order,
// by sweeps of the conditioner. The first coordinate in the order has (m, a) from the output
// biases alone, so it is set here directly: y = x exp(s) + m, or (inverse) x = (y − m) exp(−s).
// The other rows of `dst` are zeroed; D − 1 sweeps then fix the rest.
void SolveFirstCoordinate(const MadeCache& made, const Matrix& src, bool inverse, Matrix& dst) {
  constexpr double kC = AutoregressiveLayer::kMaxLogScale;
  const int first = made.order[0];
  const double m = made.out_bias[0];  // rank space, interleaved: (m, a) of rank 0
  const double s = kC * std::tanh(made.out_bias[1] / kC);
  dst.setZero();
  if (inverse) {
    dst.row(first) = (src.row(first).array() - m) * std::exp(-s);
  } else {
    dst.row(first) = (src.row(first).array() * std::exp(s) + m).matrix();
  }
}

absl::Status CheckFinite(absl::string_view type, const Matrix& m, absl::string_view what) {
  for (Eigen::Index j = 0; j < m.cols(); ++j) {
    if (!m.col(j).allFinite()) {
      return absl::InvalidArgumentError(
          absl::StrCat(type, " layer inverse: ", what, " at point ", j, " is not finite"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::unique_ptr<LayerCache> AutoregressiveLayer::NewCache(int n) const {
  return std::make_unique<AutoregressiveCache>(made_, n);
}

void AutoregressiveLayer::Forward(ConstVectorRef params, const Matrix& in, Matrix& out,
                                  LogDetAccumulator& logdet, LayerCache* cache) const {
  auto& c = *static_cast<AutoregressiveCache*>(cache);
  const int d = dim();
  out.resize(in.rows(), in.cols());  // a no-op (no allocation) when the shape is right
  made_.Prepare(params, c.made);
  if (kind_ == Kind::kIaf) {
    made_.Evaluate(params, in, c.made, &c.ma);
    LogScale(c.ma, c.s, c.e);
    AffineStep(in, c.ma, c.e, out);
  } else {
    // Sweep r fixes the coordinate of rank r: its (m, s) depend on lower ranks only.
    // At least one sweep, which the cache needs.
    SolveFirstCoordinate(c.made, in, /*inverse=*/false, c.y);
    for (int sweep = 0; sweep < std::max(1, d - 1); ++sweep) {
      made_.Evaluate(params, c.y, c.made, &c.ma);
      LogScale(c.ma, c.s, c.e);
      AffineStep(in, c.ma, c.e, c.y);
    }
    out = c.y;
  }
  AddColumnSums(c.s, logdet.log_sum());
}

void AutoregressiveLayer::Backward(ConstVectorRef /*params*/, const Matrix& in,
                                   const Matrix& grad_out, const RowVector& dlogdet,
                                   LayerCache* cache, VectorRef grad_params,
                                   Matrix& grad_in) const {
  auto& c = *static_cast<AutoregressiveCache*>(cache);
  grad_in.resize(in.rows(), in.cols());
  if (kind_ == Kind::kIaf) {
    MadeCotangents(grad_out, in, dlogdet, /*inv=*/false, c);
    made_.Backpropagate(c.grad_made, c.made, grad_params.data(), &c.grad_x);
    grad_in.array() = grad_out.array() * c.e.array() + c.grad_x.array();
    return;
  }
  // maf: y solves g(y) := (y − m(y)) ⊙ exp(−s(y)) = x, so dL/dx = λ with (∂g/∂y)ᵀ λ = v,
  // v = dL/dy + (∂Σs/∂y)ᵀ dlogdet. As ∂g/∂y = exp(−s) − exp(−s) ∂m/∂y − x ∂s/∂y, that is
  //   λ = exp(s) ⊙ (dL/dy + J(y)ᵀ (λ ⊙ exp(−s), λ ⊙ x + dlogdet))
  // with J the conditioner's Jacobian: an autoregressive system in reverse rank order, solved
  // exactly by d sweeps from λ = 0. Then dL/dθ is the conditioner's parameter gradient with
  // the same cotangents (the implicit-function theorem, plus the direct Σ s term).
  // The last coordinate in the order feeds no conditioner output, so λ = exp(s) dL/dy is exact
  // there from the start, and D − 1 sweeps fix the rest.
  c.lambda.array() = c.e.array() * grad_out.array();
  for (int sweep = 0; sweep + 1 < dim(); ++sweep) {
    MadeCotangents(c.lambda, in, dlogdet, /*inv=*/true, c);
    made_.Backpropagate(c.grad_made, c.made, nullptr, &c.grad_x);
    c.lambda.array() = c.e.array() * (grad_out.array() + c.grad_x.array());
  }
  MadeCotangents(c.lambda, in, dlogdet, /*inv=*/true, c);
  made_.Backpropagate(c.grad_made, c.made, grad_params.data(), nullptr);
  grad_in = c.lambda;
}

absl::Status AutoregressiveLayer::Inverse(ConstVectorRef params, const Matrix& out, Matrix& in,
                                          RowVector& logdet) const {
  if (absl::Status s = CheckFinite(type(), out, "the point"); !s.ok()) return s;
  const int d = dim();
  const int n = static_cast<int>(out.cols());
  MadeCache mc = made_.NewCache(n);
  made_.Prepare(params, mc);
  Matrix ma(2 * d, n), s(d, n), e(d, n);
  in.resize(d, n);
  if (kind_ == Kind::kMaf) {
    made_.Evaluate(params, out, mc, &ma);
    LogScale(ma, s, e);
    in.array() = (out - ma.topRows(d)).array() / e.array();
  } else {
    SolveFirstCoordinate(mc, out, /*inverse=*/true, in);
    for (int sweep = 0; sweep < std::max(1, d - 1); ++sweep) {
      made_.Evaluate(params, in, mc, &ma);
      LogScale(ma, s, e);
      in.array() = (out - ma.topRows(d)).array() / e.array();
    }
  }
  if (absl::Status st = CheckFinite(type(), in, "the result"); !st.ok()) return st;
  logdet += s.colwise().sum();
  return absl::OkStatus();
}

}  // namespace flowvi
