#include "engine/core/rng.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "engine/core/simd.h"

namespace flowvi {
namespace {

uint64_t SplitMix64(uint64_t* x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Rng::Rng(uint64_t seed) {
  uint64_t x = seed;
  for (auto& s : state_) s = SplitMix64(&x);
}

uint64_t Rng::Next() {
  const uint64_t result = Rotl(state_[0] + state_[3], 23) + state_[0];
  const uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = Rotl(state_[3], 45);
  return result;
}

double Rng::Uniform() {
  // (k + 0.5) / 2^53 for k in [0, 2^53): never 0 or 1, so log(u) is always finite.
  return (static_cast<double>(Next() >> 11) + 0.5) * 0x1.0p-53;
}

double Rng::Normal() {
  const double r = std::sqrt(-2.0 * std::log(Uniform()));
  return r * std::cos(2.0 * std::numbers::pi * Uniform());
}

void Rng::FillNormal(Matrix* out) {
  // Box–Muller on blocks of pairs: the uniforms drawn in the same order as Normal() would
  // (u1, u2 per pair), then r = √(−2 log u1) and the angle 2πu2 in simd::Wide lanes.
  using simd::Wide;
  constexpr int kPairs = 64;  // per block; a multiple of the vector width
  static_assert(kPairs % simd::kWideLanes == 0);
  double* p = out->data();
  const Eigen::Index n = out->size();
  Eigen::Index i = 0;
  double u1[kPairs], u2[kPairs];
  while (i + 1 < n) {
    const int pairs = static_cast<int>(std::min<Eigen::Index>(kPairs, (n - i) / 2));
    for (int k = 0; k < pairs; ++k) {
      u1[k] = Uniform();
      u2[k] = Uniform();
    }
    for (int k = pairs; k % simd::kWideLanes != 0; ++k) u1[k] = u2[k] = 0.5;  // padding
    for (int k = 0; k < pairs; k += simd::kWideLanes) {
      const Wide r = simd::Sqrt(-2.0 * simd::Log(simd::Load<Wide>(u1 + k)));
      Wide sin, cos;
      simd::SinCos2Pi(simd::Load<Wide>(u2 + k), &sin, &cos);
      const Wide a = r * cos, b = r * sin;
      const int count = std::min(simd::kWideLanes, pairs - k);
      for (int l = 0; l < count; ++l) {
        p[i + 2 * (k + l)] = a[l];
        p[i + 2 * (k + l) + 1] = b[l];
      }
    }
    i += 2 * pairs;
  }
  if (i < n) p[i] = Normal();
}

void Rng::FillUniform(double lo, double hi, VectorRef out) {
  for (Eigen::Index i = 0; i < out.size(); ++i) out[i] = lo + (hi - lo) * Uniform();
}

}  // namespace flowvi
