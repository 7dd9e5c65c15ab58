// Target: an unnormalized log-density log p~(z) on R^D that a flow is fitted to, with its
// gradient, evaluated a whole D x N batch at a time.
//
// Built-in targets come from the catalog (catalog.h) by name and parameters. Ownership: a fit
// owns its Target. Not thread-safe: LogDensity may use scratch space kept in the object (so the
// training loop allocates nothing per iteration); use one instance per thread.
#ifndef FLOWVI_ENGINE_TARGETS_TARGET_H_
#define FLOWVI_ENGINE_TARGETS_TARGET_H_

#include <optional>
#include <string>
#include <vector>

#include "engine/core/types.h"

namespace flowvi {

class Target {
 public:
  virtual ~Target() = default;

  // Dimension D of the space the target lives on.
  virtual int dim() const = 0;

  // Writes log p~ of each column of `z` (D x N) into *log_p (1 x N). If `grad` is not null,
  // writes d log p~ / dz into *grad (D x N). REQUIRES: z.rows() == dim(); *log_p and *grad
  // already have the right shape (then nothing is allocated).
  virtual void LogDensity(const Matrix& z, RowVector* log_p, Matrix* grad) = 0;

  // log Z = log of the integral of p~, when known (closed form or quadrature).
  virtual std::optional<double> log_normalizer() const { return std::nullopt; }

  // False when p~ does not integrate (u2-u4 of the paper): an ELBO on it can grow unbounded.
  virtual bool proper() const { return true; }

  // Names of the D coordinates, for reports and plots ("z1", "z2" unless overridden).
  virtual std::vector<std::string> coordinate_names() const;
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_TARGETS_TARGET_H_
