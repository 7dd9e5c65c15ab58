// Shared numeric types of the engine.
//
// A batch of N points in D dimensions is a D x N column-major matrix: one column per sample, so
// a layer's work over the batch is a few dense products, and per-sample scalars (log-densities,
// log-determinants) are 1 x N row vectors.
#ifndef FLOWVI_ENGINE_CORE_TYPES_H_
#define FLOWVI_ENGINE_CORE_TYPES_H_

#include <Eigen/Core>

namespace flowvi {

using Matrix = Eigen::MatrixXd;        // D x N batch, one column per sample.
using RowVector = Eigen::RowVectorXd;  // 1 x N, one value per sample.
using Vector = Eigen::VectorXd;        // Parameters, means, single points.

// A read-only / writable view of a slice of a flat parameter vector (no copy).
using ConstVectorRef = Eigen::Ref<const Vector>;
using VectorRef = Eigen::Ref<Vector>;

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_CORE_TYPES_H_
