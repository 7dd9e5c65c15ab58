#include "engine/flows/nice.h"

namespace flowvi {

void NiceLayer::TransformForward(const Matrix& theta, const ConstBatchRef& x_b, BatchRef y_b,
                                 LogDetAccumulator& /*logdet*/, CouplingCache& /*cache*/) const {
  y_b = x_b + theta;
}

void NiceLayer::TransformBackward(const Matrix& /*theta*/, const ConstBatchRef& /*x_b*/,
                                  const ConstBatchRef& g_y, const RowVector& /*dlogdet*/,
                                  CouplingCache& cache, BatchRef g_x_b) const {
  cache.g_theta = g_y;
  g_x_b = g_y;
}

void NiceLayer::TransformInverse(const Matrix& theta, const ConstBatchRef& y_b, BatchRef x_b,
                                 RowVector& /*logdet*/, CouplingCache* /*scratch*/) const {
  x_b = y_b - theta;
}

}  // namespace flowvi
