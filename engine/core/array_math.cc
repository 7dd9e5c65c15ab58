#include "engine/core/array_math.h"

#include <algorithm>

#include "engine/core/simd.h"

namespace flowvi {
namespace {

using simd::Wide;

// Blocks of this many elements, each run in two passes (argument reduction, then the rational
// function and its division) rather than one fused loop: shorter dependency chains keep more
// elements in flight (as in planar.cc's kernels). The scratch fits in L1.
constexpr int kBlock = 256;

// f(j, count, t) for every group of the block [begin, begin + count0), with t = tanh(scale·x)
// as simd::TanhRatio parts for the Wide group at x + j.
template <typename F>
void TanhBlocks(const double* x, int64_t n, double scale, F&& f) {
  double r[kBlock], s[kBlock];
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    const int count = static_cast<int>(std::min<int64_t>(kBlock, n - begin));
    const double* xb = x + begin;
    simd::ForEachGroup<Wide>(count, [&](int j, int c) {
      const auto red = simd::TanhReduce(simd::LoadN<Wide>(xb + j, c) * scale);
      simd::StoreN(r + j, c, red.r);
      simd::StoreN(s + j, c, red.s);
    });
    simd::ForEachGroup<Wide>(count, [&](int j, int c) {
      const simd::TanhRatioOf<Wide> t = simd::TanhFinish(
          simd::LoadN<Wide>(xb + j, c), {simd::LoadN<Wide>(r + j, c), simd::LoadN<Wide>(s + j, c)});
      f(begin + j, c, t);
    });
  }
}

}  // namespace

void TanhArray(const double* in, int64_t n, double* out) {
  TanhBlocks(in, n, 1.0, [&](int64_t i, int c, const simd::TanhRatioOf<Wide>& t) {
    simd::StoreN(out + i, c, t.num / t.den);
  });
}

void SoftClampExpArray(const double* a, int64_t n, double c, double* s, double* e) {
  TanhBlocks(a, n, 1.0 / c, [&](int64_t i, int count, const simd::TanhRatioOf<Wide>& t) {
    const Wide sv = c * (t.num / t.den);
    simd::StoreN(s + i, count, sv);
    simd::StoreN(e + i, count, simd::Exp(sv));
  });
}

}  // namespace flowvi
