// A minimal portable SIMD layer for the engine's hand-written batch kernels, and the vectorized
// math they need (tanh, log). Eigen vectorizes matrix products and plain element-wise
// expressions, but it has no vectorized double tanh, its vectorized log is slow on SSE2, and a
// chain of separate Eigen expressions makes one pass over memory per operation; the layers'
// kernels (engine/flows/) fuse that work by hand on Vec.
//
// Vec is a GCC/Clang vector extension of kLanes = 2 doubles (SSE2 on the x86-64 baseline, NEON on
// AArch64), fixed rather than taken from the build's ISA flags because the kernels that sum
// across lanes or pair columns (planar, radial) are written for it. Wide is the widest vector the
// build's ISA has (4 lanes with AVX, else 2), for element-wise kernels over contiguous arrays
// (array_math.h): their lanes never interact, so their results do not depend on the width. The
// math below (Exp, Log, Tanh...) is templated on the vector type and does the same operations in
// every lane whatever the width. The build turns off FP contraction (CMakeLists.txt), so a * b + c
// rounds the same way in every kernel; the polynomial steps written with MulAdd are fused where
// the ISA has FMA (at every width alike), so an x86-64-v3 build and a baseline build round them
// differently. Results are reproducible per binary.
// Everything here is inline; kernels are instantiated once, in the build's flags.
#ifndef FLOWVI_ENGINE_CORE_SIMD_H_
#define FLOWVI_ENGINE_CORE_SIMD_H_

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__AVX__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace flowvi::simd {

// Vector types of 2 and 4 doubles, with their integer counterparts of the same shape: comparison
// results (0 or −1 per lane), and bit patterns (unsigned, so that arithmetic on them wraps
// instead of overflowing). (GCC ignores vector_size in alias templates, hence the traits.)
using Vec2 = double __attribute__((vector_size(2 * sizeof(double))));
using Vec4 = double __attribute__((vector_size(4 * sizeof(double))));
template <typename V>
struct VecTraits;
template <>
struct VecTraits<Vec2> {
  static constexpr int kLanes = 2;
  using Int = int64_t __attribute__((vector_size(2 * sizeof(int64_t))));
  using Bits = uint64_t __attribute__((vector_size(2 * sizeof(uint64_t))));
};
template <>
struct VecTraits<Vec4> {
  static constexpr int kLanes = 4;
  using Int = int64_t __attribute__((vector_size(4 * sizeof(int64_t))));
  using Bits = uint64_t __attribute__((vector_size(4 * sizeof(uint64_t))));
};
template <typename V>
inline constexpr int kLanesOf = VecTraits<V>::kLanes;
template <typename V>
using IntOf = typename VecTraits<V>::Int;
template <typename V>
using BitsOf = typename VecTraits<V>::Bits;

using Vec = Vec2;
inline constexpr int kLanes = kLanesOf<Vec>;
using IntVec = IntOf<Vec>;
using BitsVec = BitsOf<Vec>;
#if defined(__AVX__)
using Wide = Vec4;
#else
using Wide = Vec2;
#endif
inline constexpr int kWideLanes = kLanesOf<Wide>;
inline constexpr uint64_t kSignBit = uint64_t{1} << 63;

// (Not `Vec{} + x`, which turns −0 into +0.)
template <typename V = Vec>
inline V Broadcast(double x) {
  V v;
  for (int l = 0; l < kLanesOf<V>; ++l) v[l] = x;
  return v;
}

// Unaligned loads and stores of a whole vector of consecutive doubles.
template <typename V = Vec>
inline V Load(const double* p) {
  V v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <typename V>
inline void Store(double* p, V v) {
  std::memcpy(p, &v, sizeof(v));
}

// The first `count` < lanes lanes of a batch's tail (loads fill the other lanes with zeros).
template <typename V = Vec>
inline V LoadPartial(const double* p, int count) {
  V v{};
  for (int l = 0; l < count; ++l) v[l] = p[l];
  return v;
}
template <typename V>
inline void StorePartial(double* p, int count, V v) {
  for (int l = 0; l < count; ++l) p[l] = v[l];
}

// Loops over [0, n) in groups of kLanes: body(j, count) for j = 0, kLanes, ..., with
// count = kLanes except for a last, partial group. Bodies load with LoadN/LoadColumns and store
// with StoreN/StoreColumns, which reduce to plain vector accesses in the full groups (count is a
// constant there once inlined). Partial groups pad with zeros, so lanes past the end contribute
// nothing to sums of products.
// (ForEachGroup<Wide> and LoadN<Wide> likewise in groups of kWideLanes.)
template <typename V = Vec, typename Body>
inline void ForEachGroup(int n, Body&& body) {
  int j = 0;
  for (; j + kLanesOf<V> <= n; j += kLanesOf<V>) body(j, kLanesOf<V>);
  if (j < n) body(j, n - j);
}
template <typename V = Vec>
inline V LoadN(const double* p, int count) {
  return count == kLanesOf<V> ? Load<V>(p) : LoadPartial<V>(p, count);
}
template <typename V>
inline void StoreN(double* p, int count, V v) {
  if (count == kLanesOf<V>) {
    Store(p, v);
  } else {
    StorePartial(p, count, v);
  }
}
template <typename V = Vec>
inline V LoadStridedN(const double* p, int stride, int count) {
  V v{};
  for (int l = 0; l < count; ++l) v[l] = p[l * stride];
  return v;
}
template <typename V>
inline void StoreStridedN(double* p, int stride, int count, V v) {
  for (int l = 0; l < count; ++l) p[l * stride] = v[l];
}

// Rows 0..kDim-1 of `count` ≤ kLanes consecutive columns of a kDim x N column-major batch
// starting at p: rows[i][l] = p[kDim l + i] (lanes past count are zero).
template <int kDim>
inline void LoadColumns(const double* p, int count, Vec (&rows)[kDim]) {
  if constexpr (kDim == 2 && kLanes == 2) {
    if (count == kLanes) {  // two whole columns: two loads and a transpose
      const Vec c0 = Load(p), c1 = Load(p + 2);
      rows[0] = __builtin_shufflevector(c0, c1, 0, 2);
      rows[1] = __builtin_shufflevector(c0, c1, 1, 3);
      return;
    }
  }
  for (int i = 0; i < kDim; ++i) rows[i] = LoadStridedN(p + i, kDim, count);
}
template <int kDim>
inline void StoreColumns(double* p, int count, const Vec (&rows)[kDim]) {
  if constexpr (kDim == 2 && kLanes == 2) {
    if (count == kLanes) {
      Store(p, __builtin_shufflevector(rows[0], rows[1], 0, 2));
      Store(p + 2, __builtin_shufflevector(rows[0], rows[1], 1, 3));
      return;
    }
  }
  for (int i = 0; i < kDim; ++i) StoreStridedN(p + i, kDim, count, rows[i]);
}

// Calls f(std::integral_constant<int, kDim>{}) with kDim = dim for the dimensions that layers
// unroll their kernels for (1 to 4), and with kDim = 0 ("any dimension") otherwise.
template <typename F>
decltype(auto) WithFixedDim(int dim, F&& f) {
  switch (dim) {
    case 1:
      return f(std::integral_constant<int, 1>{});
    case 2:
      return f(std::integral_constant<int, 2>{});
    case 3:
      return f(std::integral_constant<int, 3>{});
    case 4:
      return f(std::integral_constant<int, 4>{});
    default:
      return f(std::integral_constant<int, 0>{});
  }
}

// a·b + c lane-wise: one fused multiply-add (rounded once) where the build has FMA, else a·b
// then + c. The build turns off the compiler's own contraction (CMakeLists.txt), so exactly the
// polynomial steps written with MulAdd below are fused, the same way at every vector width.
template <typename V>
inline V MulAdd(V a, V b, V c) {
#if defined(__FMA__)
  if constexpr (kLanesOf<V> == 4) return _mm256_fmadd_pd(a, b, c);
  if constexpr (kLanesOf<V> == 2) return _mm_fmadd_pd(a, b, c);
#endif
  return a * b + c;
}
template <typename V>
inline V MulAdd(V a, double b, double c) {
  return MulAdd(a, Broadcast<V>(b), Broadcast<V>(c));
}
template <typename V>
inline V MulAdd(V a, V b, double c) {
  return MulAdd(a, b, Broadcast<V>(c));
}

// Whether every lane of a comparison result is true (−1), in one instruction where the ISA has
// it (the sign bits) rather than a branch per lane.
template <typename V>
inline bool AllLanesOf(IntOf<V> mask) {
#if defined(__AVX__)
  if constexpr (kLanesOf<V> == 4) {
    return _mm256_movemask_pd(std::bit_cast<__m256d>(mask)) == 0xF;
  }
#endif
#if defined(__SSE2__)
  if constexpr (kLanesOf<V> == 2) return _mm_movemask_pd(std::bit_cast<__m128d>(mask)) == 0x3;
#endif
  bool all = true;
  for (int l = 0; l < kLanesOf<V>; ++l) all = all && mask[l] != 0;
  return all;
}

// Lane 0 + lane 1 + ..., in that order (deterministic).
template <typename V>
inline double Sum(V v) {
  double s = v[0];
  for (int l = 1; l < kLanesOf<V>; ++l) s += v[l];
  return s;
}

// Correctly rounded square root lane-wise (as std::sqrt).
template <typename V>
inline V Sqrt(V x) {
#if defined(__AVX__)
  if constexpr (kLanesOf<V> == 4) return _mm256_sqrt_pd(x);
#endif
#if defined(__SSE2__)
  if constexpr (kLanesOf<V> == 2) return _mm_sqrt_pd(x);
#endif
  for (int l = 0; l < kLanesOf<V>; ++l) x[l] = std::sqrt(x[l]);
  return x;
}

// min(c, x) lane-wise, returning x where x is NaN (so NaN propagates): a comparison with NaN is
// false (this compiles to MINPD, which returns its second operand when either is NaN).
template <typename V>
inline V MinKeepNaN(V c, V x) {
  return c < x ? c : x;
}

// tanh(x) = num / den and 1 − tanh²(x) = 4 qnum / den² lane-wise, computed without
// cancellation, so that a kernel can share one division between tanh and the quantities derived
// from it. den ∈ [1.6, 4.1] for every x; num carries the sign of x (±0 included); qnum ≥ 0.
//
// From Cephes' exp: e^g = (q + p)/(q − p) with p = g P(g²), q = Q(g²), |g| ≤ ln2/2 (relative
// error < 1e-16). With e^{−2|x|} = 2^n e^{−r}, r = 2|x| + n ln 2, s = 2^n (n ≤ 0), and p, q
// taken at r (p is odd, q even):
//   tanh|x| = (1 − e^{−2|x|})/(1 + e^{−2|x|}) = ((1 − s)(q + p) + 2sp) / ((q + p) + s(q − p)),
//   den − num = 2s(q − p), den + num = 2(q + p), so den² − num² = 4s(q + p)(q − p).
// For n = 0 (|x| < ln2/4) the numerator is exactly 2p: relative accuracy holds down to
// subnormal x. num/den is within ~5 ulp of tanh and 4 qnum/den² within ~7 ulp of 1/cosh² (see
// tests/engine/simd_test.cc). |x| is clamped to 350 so that 2^n stays a normal double: beyond
// it tanh = ±1 exactly and 1 − tanh² < 4e−304 (returned as ~4e−304 instead). NaN propagates.
//
// It comes in two stages, TanhReduce and TanhFinish, so that kernels can run them as separate
// passes, each with a short dependency chain (see engine/flows/planar.cc). Written to minimize
// multiplications, which bound those kernels' throughput.
template <typename V>
struct TanhReducedOf {
  V r;  // the reduced argument, |r| ≤ ln2/2
  V s;  // 2^n
};
template <typename V>
struct TanhRatioOf {
  V num, den;
  V qnum;  // (den² − num²)/4
};
using TanhReduced = TanhReducedOf<Vec>;
using TanhRatio = TanhRatioOf<Vec>;

template <typename V>
inline TanhReducedOf<V> TanhReduce(V x) {
  using Bits = BitsOf<V>;
  constexpr double kShift = 0x1.8p52;  // adding it rounds to an integer kept in the low bits
  const V ax =
      MinKeepNaN(Broadcast<V>(350.0), std::bit_cast<V>(std::bit_cast<Bits>(x) & ~kSignBit));
  // n = round(−2|x| / ln 2) (−2 log2(e) is an exact scaling), r = 2|x| + n ln 2 in two steps
  // (Cody & Waite: n·C1 is exact).
  const V t = MulAdd(ax, -2.8853900817779268147198, kShift);
  const V n = t - kShift;
  TanhReducedOf<V> red;
  red.r = MulAdd(n, Broadcast<V>(1.42860682030941723212e-6),
                 MulAdd(n, Broadcast<V>(0.693145751953125), ax + ax));
  // s = 2^n from the integer in t's low bits: biased exponent n + 1023.
  red.s =
      std::bit_cast<V>((std::bit_cast<Bits>(t) + (1023 - std::bit_cast<uint64_t>(kShift))) << 52);
  return red;
}

// `x` only supplies the sign.
template <typename V>
inline TanhRatioOf<V> TanhFinish(V x, TanhReducedOf<V> red) {
  using Bits = BitsOf<V>;
  const V r = red.r, s = red.s;
  const V r2 = r * r;
  // P's constant term 9.99999999999999999910e-1 and Q's 2.00000000000000000009e0 are 1 and 2
  // in double precision.
  const V p = MulAdd(MulAdd(r2, 1.26177193074810590878e-4, 3.02994407707441961300e-2), r2, 1.0) * r;
  const V q = MulAdd(MulAdd(MulAdd(r2, 3.00198505138664455042e-6, 2.52448340349684104192e-3), r2,
                            2.27265548208155028766e-1),
                     r2, 2.0);
  const V q_plus_p = q + p;
  const V q_minus_p = q - p;
  const V abs_num = MulAdd(1.0 - s, q_plus_p, (s + s) * p);
  TanhRatioOf<V> t;
  t.num = std::bit_cast<V>(std::bit_cast<Bits>(abs_num) | (std::bit_cast<Bits>(x) & kSignBit));
  const V s_qmp = s * q_minus_p;
  t.den = MulAdd(s, q_minus_p, q_plus_p);
  t.qnum = s_qmp * q_plus_p;
  return t;
}

template <typename V>
inline TanhRatioOf<V> TanhParts(V x) {
  return TanhFinish(x, TanhReduce(x));
}

namespace internal {
template <typename V>
[[gnu::noinline]] V LogOfSpecialLanes(V x, IntOf<V> normal, V result) {
  for (int l = 0; l < kLanesOf<V>; ++l) {
    if (normal[l] == 0) result[l] = std::log(x[l]);
  }
  return result;
}
}  // namespace internal

// Natural logarithm lane-wise, within 1 ulp (fdlibm's e_log.c: log x = k ln 2 + log m with
// m ∈ [√2/2, √2), log m = 2 atanh(f/(2 + f)), f = m − 1, by a degree-14 polynomial in
// s = f/(2 + f)). Lanes that are not positive normal doubles (0, subnormal, negative, inf, NaN)
// are computed by std::log instead, so the special cases behave as std::log's.
template <typename V>
inline V Log(V x) {
  using Bits = BitsOf<V>;
  constexpr uint64_t kSqrtHalfBits = 0x3fe6a09e667f3bcd;  // √2/2
  constexpr uint64_t kTwo52Bits = 0x4330000000000000;     // 2^52
  const Bits bits = std::bit_cast<Bits>(x);
  // Shift the exponent so that m lands in [√2/2, √2): k = exponent of (x √2), m = x / 2^k.
  const Bits u = bits + (0x3ff0000000000000 - kSqrtHalfBits);
  const V k = std::bit_cast<V>((u >> 52) | kTwo52Bits) - (0x1p52 + 1023.0);
  const V f = std::bit_cast<V>((u & 0x000fffffffffffff) + kSqrtHalfBits) - 1.0;
  const V hfsq = 0.5 * f * f;
  const V s = f / (2.0 + f);
  const V z = s * s;
  const V w = z * z;
  const V t1 = w * MulAdd(w, MulAdd(w, 1.531383769920937332e-01, 2.222219843214978396e-01),
                          3.999999999940941908e-01);
  const V t2 = z * MulAdd(w,
                          MulAdd(w, MulAdd(w, 1.479819860511658591e-01, 1.818357216161805012e-01),
                                 2.857142874366239149e-01),
                          6.666666666666735130e-01);
  const V r = t2 + t1;
  V result = k * 6.93147180369123816490e-01 -
             ((hfsq - (s * (hfsq + r) + k * 1.90821492927058770002e-10)) - f);
  const IntOf<V> normal = (x >= 0x1p-1022) & (x <= 0x1.fffffffffffffp1023);  // false for NaN
  const bool all_normal = AllLanesOf<V>(normal);
  // Out of line, so that the common path keeps `result` in a register.
  if (!all_normal) [[unlikely]]
    result = internal::LogOfSpecialLanes(x, normal, result);
  return result;
}

namespace internal {
template <typename V>
[[gnu::noinline]] V ExpOfSpecialLanes(V x, IntOf<V> normal, V result) {
  for (int l = 0; l < kLanesOf<V>; ++l) {
    if (normal[l] == 0) result[l] = std::exp(x[l]);
  }
  return result;
}
}  // namespace internal

// e^x lane-wise, within ~2 ulp: x = n ln 2 + r, |r| ≤ ln2/2, by Cody & Waite's two-step
// reduction (as TanhReduce), e^r by its Taylor polynomial of degree 13 (truncation < 5e-18
// relative; no division, which would bound the kernels' throughput), then the factor 2^n into
// the exponent. Lanes outside [−708, 709] (where 2^n would leave the normal range), infinite or
// NaN are computed by std::exp instead, so those behave as std::exp's. (Eigen's own vectorized
// exp only runs on contiguous arrays; this one serves gathered lanes.)
template <typename V>
inline V Exp(V x) {
  using Bits = BitsOf<V>;
  constexpr double kShift = 0x1.8p52;
  const IntOf<V> normal = (x >= -708.0) & (x <= 709.0);  // false for NaN
  const V xc = normal ? x : V{};
  const V t = xc * 1.4426950408889634073599 + kShift;  // n = round(x / ln 2) in t's low bits
  const V n = t - kShift;
  const V r = (xc - n * 0.693145751953125) - n * 1.42860682030941723212e-6;
  // Estrin-style: e^r = Σ r^k / k!, in pairs (c_k + c_{k+1} r) combined by powers of r².
  const V r2 = r * r;
  const V r4 = r2 * r2;
  const V p01 = 1.0 + r;
  const V p23 = MulAdd(r, 1.0 / 6, 0.5);
  const V p45 = MulAdd(r, 1.0 / 120, 1.0 / 24);
  const V p67 = MulAdd(r, 1.0 / 5040, 1.0 / 720);
  const V p89 = MulAdd(r, 1.0 / 362880, 1.0 / 40320);
  const V p1011 = MulAdd(r, 1.0 / 39916800, 1.0 / 3628800);
  const V p1213 = MulAdd(r, 1.0 / 6227020800, 1.0 / 479001600);
  const V high = MulAdd(r4, p1213, MulAdd(r2, p1011, p89));  // terms 8..13, over r^8
  const V mid = MulAdd(r4, high, MulAdd(r2, p67, p45));      // terms 4..13, over r^4
  const V er = MulAdd(r2, MulAdd(r2, mid, p23), p01);
  const V scale =
      std::bit_cast<V>((std::bit_cast<Bits>(t) + (1023 - std::bit_cast<uint64_t>(kShift))) << 52);
  V result = er * scale;
  const bool all_normal = AllLanesOf<V>(normal);
  if (!all_normal) [[unlikely]]
    result = internal::ExpOfSpecialLanes(x, normal, result);
  return result;
}

// tanh for a whole vector, and for one double (same arithmetic in lane 0).
template <typename V>
inline V Tanh(V x) {
  const TanhRatioOf<V> r = TanhParts(x);
  return r.num / r.den;
}
inline double FastTanh(double x) { return Tanh(Broadcast(x))[0]; }

// sin(2πu) and cos(2πu) lane-wise for u ∈ [0, 1] (the Box–Muller angle), within ~2e-16
// absolutely. 2πu = qπ/2 + r with q = round(4u): u − q/4 is exact, so r = 2π(u − q/4) carries
// one rounding and the error of 2π's two-part constant, |r| ≤ π/4; sin r and cos r by their
// Taylor polynomials through r^17 and r^18 (truncation < 1e-18), then the quadrant's swap and
// signs.
template <typename V>
inline void SinCos2Pi(V u, V* sin_out, V* cos_out) {
  constexpr double kTwoPiHi = 6.283185307179586232;    // 2π rounded to double
  constexpr double kTwoPiLo = 2.4492935982947064e-16;  // 2π − kTwoPiHi
  constexpr double kShift = 0x1.8p52;
  const V t = u * 4.0 + kShift;  // round(4u) in t's low bits
  const V q = t - kShift;
  const V f = u - q * 0.25;
  const V r = MulAdd(f, Broadcast<V>(kTwoPiHi), f * kTwoPiLo);
  const V z = r * r;
  V ps = Broadcast<V>(1.0 / 355687428096000.0);  // 1/17!
  for (double c : {-1.0 / 1307674368000.0, 1.0 / 6227020800.0, -1.0 / 39916800.0, 1.0 / 362880.0,
                   -1.0 / 5040.0, 1.0 / 120.0, -1.0 / 6.0}) {
    ps = MulAdd(ps, z, c);
  }
  const V sr = MulAdd(ps * z, r, r);              // r + r z P(z)
  V pc = Broadcast<V>(1.0 / 6402373705728000.0);  // 1/18!
  for (double c : {-1.0 / 20922789888000.0, 1.0 / 87178291200.0, -1.0 / 479001600.0,
                   1.0 / 3628800.0, -1.0 / 40320.0, 1.0 / 720.0, -1.0 / 24.0, 0.5}) {
    pc = MulAdd(pc, z, c);
  }
  const V cr = 1.0 - pc * z;  // 1 − z/2 + z²/24 − ...
  // Quadrant q mod 4 (q = 4 is u = 1, the same angle as q = 0).
  const BitsOf<V> qi = std::bit_cast<BitsOf<V>>(t) & 3;
  const auto swap = (qi & 1) != 0;
  const V s = swap ? cr : sr, c = swap ? sr : cr;
  const BitsOf<V> sin_sign = (qi & 2) << 62;        // q = 2, 3: −
  const BitsOf<V> cos_sign = ((qi + 1) & 2) << 62;  // q = 1, 2: −
  *sin_out = std::bit_cast<V>(std::bit_cast<BitsOf<V>>(s) ^ sin_sign);
  *cos_out = std::bit_cast<V>(std::bit_cast<BitsOf<V>>(c) ^ cos_sign);
}

}  // namespace flowvi::simd

#endif  // FLOWVI_ENGINE_CORE_SIMD_H_
