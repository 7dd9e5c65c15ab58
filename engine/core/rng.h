// Rng: the engine's only source of randomness.
//
// xoshiro256++ (Blackman & Vigna) seeded through splitmix64, with normal draws by the Box-Muller
// transform. Chosen over <random> because its whole state is four words that a checkpoint can
// store, and because its output (including the normals) is fully specified here rather than by
// the standard library's implementation, so the same seed gives the same numbers everywhere.
//
// Not thread-safe: each fit or query owns its own Rng.
#ifndef FLOWVI_ENGINE_CORE_RNG_H_
#define FLOWVI_ENGINE_CORE_RNG_H_

#include <array>
#include <cstdint>

#include "engine/core/types.h"

namespace flowvi {

class Rng {
 public:
  using State = std::array<uint64_t, 4>;

  explicit Rng(uint64_t seed);

  // Raw 64 random bits.
  uint64_t Next();
  // Uniform on the open interval (0, 1), 53 bits of resolution.
  double Uniform();
  // A standard normal draw.
  double Normal();
  // Fills every entry of *out with independent standard normals, in column-major order.
  // Allocates nothing.
  void FillNormal(Matrix* out);
  // Fills *out with uniforms on (lo, hi).
  void FillUniform(double lo, double hi, VectorRef out);

  const State& state() const { return state_; }
  void set_state(const State& s) { state_ = s; }

 private:
  State state_;
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_CORE_RNG_H_
