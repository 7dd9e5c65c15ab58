#include "engine/flows/layer.h"

#include <cmath>

#include "engine/core/simd.h"

namespace flowvi {

LogDetAccumulator::LogDetAccumulator(int n, bool allow_products)
    : log_sum_(n), inv_det_product_(n), allow_products_(allow_products) {
  Reset();
}

void LogDetAccumulator::Reset() {
  log_sum_.setZero();
  inv_det_product_.setOnes();
  constant_ = 0;
  product_log2_bound_ = 0;
  product_used_ = false;
}

bool LogDetAccumulator::ReserveProduct(double max_abs_log2_det) {
  // `!(x <= k)` also rejects NaN.
  if (!allow_products_ || !(max_abs_log2_det <= kMaxProductLog2)) return false;
  if (product_log2_bound_ + max_abs_log2_det > kMaxProductLog2) Fold();
  product_log2_bound_ += max_abs_log2_det;
  product_used_ = true;
  return true;
}

void LogDetAccumulator::Fold() {
  if (product_used_) {
    // simd::Log rather than Eigen's vectorized log, which is ~3x slower here.
    double* sum = log_sum_.data();
    double* product = inv_det_product_.data();
    simd::ForEachGroup(size(), [&](int j, int count) {
      simd::StoreN(sum + j, count,
                   simd::LoadN(sum + j, count) - simd::Log(simd::LoadN(product + j, count)));
    });
    inv_det_product_.setOnes();
    product_log2_bound_ = 0;
    product_used_ = false;
  }
  if (constant_ != 0) {
    log_sum_.array() += constant_;
    constant_ = 0;
  }
}

void Layer::Forward(ConstVectorRef params, const Matrix& in, Matrix& out, RowVector& logdet,
                    LayerCache* cache) const {
  LogDetAccumulator acc(static_cast<int>(in.cols()));
  Forward(params, in, out, acc, cache);
  acc.Fold();
  logdet += acc.log_sum();
}

}  // namespace flowvi
