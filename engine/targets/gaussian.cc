// A multivariate Gaussian with a given mean and covariance: the target with a known answer,
// for checking that a fit recovers the mean and covariance and that KL(q || p) -> 0.
#include <Eigen/Cholesky>
#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/targets/builtin.h"
#include "engine/targets/target.h"

namespace flowvi::targets_internal {
namespace {

constexpr char kName[] = "gaussian";

class GaussianTarget final : public Target {
 public:
  // REQUIRES: cov symmetric positive definite (llt is its Cholesky factorization).
  GaussianTarget(Vector mean, const Eigen::LLT<Eigen::MatrixXd>& llt) : mean_(std::move(mean)) {
    const Eigen::Index d = mean_.size();
    neg_precision_ = -llt.solve(Eigen::MatrixXd::Identity(d, d));
    // Exactly symmetric, so the gradient is exactly that of the quadratic form evaluated.
    neg_precision_ = (0.5 * (neg_precision_ + neg_precision_.transpose())).eval();
    const Eigen::MatrixXd l = llt.matrixL();
    log_const_ = -static_cast<double>(d) * kHalfLog2Pi - l.diagonal().array().log().sum();
  }

  int dim() const override { return static_cast<int>(mean_.size()); }
  std::optional<double> log_normalizer() const override { return 0.0; }

  void LogDensity(const Matrix& z, RowVector* log_p, Matrix* grad) override {
    diff_.resize(z.rows(), z.cols());
    diff_ = z.colwise() - mean_;
    // The gradient -Sigma^{-1} (z - mean) is also what the quadratic form needs, so it is
    // computed once, straight into *grad when the caller wants it.
    Matrix* g = grad != nullptr ? grad : &work_;
    g->resize(z.rows(), z.cols());
    // Eigen's GEMM packs its operands into buffers of (depth x rows) and (depth x cols)
    // blocks, on the stack up to 128 KB and on the heap beyond. Bounding the rows and depth of
    // each product by kTile, and its columns so that depth x cols <= kPackLimit, keeps both on
    // the stack for any D and N; the re-packing costs a few percent for large D.
    const Eigen::Index d = z.rows();
    const Eigen::Index n = z.cols();
    const Eigen::Index col_tile = kPackLimit / std::min(d, kTile);
    for (Eigen::Index c = 0; c < n; c += col_tile) {
      const Eigen::Index cols = std::min(col_tile, n - c);
      for (Eigen::Index r = 0; r < d; r += kTile) {
        const Eigen::Index rows = std::min(kTile, d - r);
        auto out = g->block(r, c, rows, cols);
        for (Eigen::Index k = 0; k < d; k += kTile) {
          const Eigen::Index depth = std::min(kTile, d - k);
          const auto lhs = neg_precision_.block(r, k, rows, depth);
          const auto rhs = diff_.block(k, c, depth, cols);
          if (k == 0) {
            out.noalias() = lhs * rhs;
          } else {
            out.noalias() += lhs * rhs;
          }
        }
      }
    }
    log_p->array() = log_const_ + 0.5 * (diff_.array() * g->array()).colwise().sum();
  }

 private:
  static constexpr Eigen::Index kTile = 96;
  static constexpr Eigen::Index kPackLimit = 12288;  // doubles: 96 KB

  Vector mean_;
  Matrix neg_precision_;  // -Sigma^{-1}
  double log_const_;
  Matrix diff_, work_;  // scratch, resized only when the batch size changes
};

absl::StatusOr<std::unique_ptr<Target>> MakeGaussian(const ParamMap& params) {
  absl::StatusOr<int> dim_or = IntParamInRange(params, kName, "dim", 1, 1000);
  if (!dim_or.ok()) return dim_or.status();
  const int d = *dim_or;

  const std::vector<double>& mean_in = GetRealVector(params, "mean");
  Vector mean = Vector::Zero(d);
  if (!mean_in.empty()) {
    if (std::ssize(mean_in) != d) {
      return InvalidParam(kName, "mean",
                          absl::StrCat("must be empty (zeros) or have dim = ", d, " entries, got ",
                                       mean_in.size()));
    }
    mean = Eigen::Map<const Vector>(mean_in.data(), d);
  }

  const std::vector<double>& cov_in = GetRealVector(params, "cov");
  Eigen::MatrixXd cov = Eigen::MatrixXd::Identity(d, d);
  if (!cov_in.empty()) {
    if (std::ssize(cov_in) != static_cast<int64_t>(d) * d) {
      return InvalidParam(kName, "cov",
                          absl::StrCat("must be empty (identity) or have dim * dim = ", d * d,
                                       " entries (row-major), got ", cov_in.size()));
    }
    cov = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
        cov_in.data(), d, d);
    const double scale = cov.cwiseAbs().maxCoeff();
    for (int i = 0; i < d; ++i) {
      for (int j = i + 1; j < d; ++j) {
        if (std::abs(cov(i, j) - cov(j, i)) > 1e-12 * scale) {
          return InvalidParam(kName, "cov",
                              absl::StrFormat("must be symmetric, but entry (%d, %d) = %.17g and "
                                              "(%d, %d) = %.17g",
                                              i + 1, j + 1, cov(i, j), j + 1, i + 1, cov(j, i)));
        }
      }
    }
    cov = (0.5 * (cov + cov.transpose())).eval();
  }
  Eigen::LLT<Eigen::MatrixXd> llt(cov);
  if (llt.info() != Eigen::Success) {
    return InvalidParam(kName, "cov", "must be positive definite");
  }
  return std::make_unique<GaussianTarget>(std::move(mean), llt);
}

}  // namespace

void AppendGaussianTarget(std::vector<TargetInfo>* catalog) {
  catalog->push_back(TargetInfo{
      .name = kName,
      .description =
          "Multivariate Gaussian N(z | mean, cov), normalized (log Z = 0); D = dim (2 by "
          "default). A sanity check with a known answer: the fitted flow should recover mean "
          "and cov, and -ELBO is KL(q || p).",
      .params = {ParamSpec{.name = "dim",
                           .type = ParamType::kInt,
                           .default_value = int64_t{2},
                           .description = "Dimension D, 1 <= D <= 1000."},
                 ParamSpec{.name = "mean",
                           .type = ParamType::kRealVector,
                           .default_value = std::vector<double>{},
                           .description = "Mean, D numbers; empty (the default) means zeros."},
                 ParamSpec{.name = "cov",
                           .type = ParamType::kRealVector,
                           .default_value = std::vector<double>{},
                           .description = "Covariance, D * D numbers in row-major order, "
                                          "symmetric and positive definite; empty (the "
                                          "default) means the identity."}},
      .factory = MakeGaussian});
}

}  // namespace flowvi::targets_internal
