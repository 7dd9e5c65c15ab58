#include "engine/core/rng.h"

#include <cmath>
#include <numbers>

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
  double* p = out->data();
  const Eigen::Index n = out->size();
  Eigen::Index i = 0;
  for (; i + 1 < n; i += 2) {
    const double r = std::sqrt(-2.0 * std::log(Uniform()));
    const double theta = 2.0 * std::numbers::pi * Uniform();
    p[i] = r * std::cos(theta);
    p[i + 1] = r * std::sin(theta);
  }
  if (i < n) p[i] = Normal();
}

void Rng::FillUniform(double lo, double hi, VectorRef out) {
  for (Eigen::Index i = 0; i < out.size(); ++i) out[i] = lo + (hi - lo) * Uniform();
}

}  // namespace flowvi
