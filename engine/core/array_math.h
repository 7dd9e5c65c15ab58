// Element-wise math over contiguous arrays of doubles, in simd::Wide lanes (4 with AVX).
//
// The layers' conditioners spend much of a training step in tanh and exp of whole activation
// blocks. These kernels run them over a flat array in the widest vectors the build has; lanes
// never interact, so the results are those of simd::Tanh / simd::Exp on each element, whatever
// the width (tests/engine/array_math_test.cc checks that, element by element).
//
// Thread-safety: pure functions. They allocate nothing (scratch is on the stack).
#ifndef FLOWVI_ENGINE_CORE_ARRAY_MATH_H_
#define FLOWVI_ENGINE_CORE_ARRAY_MATH_H_

#include <cstdint>

namespace flowvi {

// out[i] = tanh(in[i]) for i < n (simd::Tanh's arithmetic). `out` may be `in`.
void TanhArray(const double* in, int64_t n, double* out);

// The soft clamp of a log-scale and its exponential: s[i] = c·tanh(a[i]/c), e[i] = exp(s[i]).
// `s` may be `a`. REQUIRES: c > 0.
void SoftClampExpArray(const double* a, int64_t n, double c, double* s, double* e);

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_CORE_ARRAY_MATH_H_
