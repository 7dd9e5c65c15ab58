// Shared numeric types of the engine.
//
// A batch of N points in D dimensions is a D x N column-major matrix: one column per sample, so
// a layer's work over the batch is a few dense products, and per-sample scalars (log-densities,
// log-determinants) are 1 x N row vectors.
#ifndef FLOWVI_ENGINE_CORE_TYPES_H_
#define FLOWVI_ENGINE_CORE_TYPES_H_

#include <Eigen/Core>
#include <vector>

namespace flowvi {

using Matrix = Eigen::MatrixXd;        // D x N batch, one column per sample.
using RowVector = Eigen::RowVectorXd;  // 1 x N, one value per sample.
using Vector = Eigen::VectorXd;        // Parameters, means, single points.

// A read-only / writable view of a slice of a flat parameter vector (no copy).
using ConstVectorRef = Eigen::Ref<const Vector>;
using VectorRef = Eigen::Ref<Vector>;

// A growable buffer of doubles for Eigen to work on through a Map. Eigen's vectorized loops
// over a Map start at the first packet-aligned element and do the elements before it one by
// one, so sums associate differently and functions such as exp and log (scalar std:: versus
// Eigen's vector versions) round differently depending on the buffer's address modulo the
// packet size: 32 bytes with AVX, while glibc's malloc only guarantees 16. Eigen's allocator
// gives the full alignment, so the results do not depend on the heap's history (same request,
// same bits). (Seen: the model language's log density differed in the last bit between a
// target's first and later evaluations.)
using AlignedDoubles = std::vector<double, Eigen::aligned_allocator<double>>;

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_CORE_TYPES_H_
