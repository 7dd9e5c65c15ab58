// DensityModel: a density q(x) on R^D learned from data (maximum likelihood, density_fitter.h),
// made of a Flow used in the NORMALIZING direction plus the standardization of the training data.
//
// Direction. The engine's Flow maps ε → z with Forward (cheap, with gradients) and has a cheap
// Inverse per layer. A density model applies the flow's Forward f to the (standardized) data:
//
//   u = (x − mean) / sd,   y = f(u),
//   log q(x) = log N(y; 0, I) + log|det ∂f/∂u| − Σ_d log sd_d
//
// so evaluating log q — the training loss and LogDensity — is one forward pass, and sampling
// inverts the flow layer by layer: ε ~ N(0, I), u = f⁻¹(ε), x = mean + sd ⊙ u, with
// log q(x) = log N(ε) + log|det ∂f/∂u| − Σ log sd. (This is the reverse of how the same Flow
// acts as a variational posterior in Fitter: there ε → z is the sampling direction.) Inverses
// of coupling, permute, orthogonal and scale layers are closed form; planar and radial layers
// are accepted but invert by root solves, so sampling them is slow.
//
// Points are in the user's units; mean and sd (per coordinate, of the training split) are part
// of the model and must be saved with the flow parameters.
//
// Ownership: the model owns its Flow. Thread-safety: const methods may run concurrently, each
// thread with its own DensityWorkspace; mutable_flow() must not be used meanwhile.
#ifndef FLOWVI_ENGINE_FIT_DENSITY_MODEL_H_
#define FLOWVI_ENGINE_FIT_DENSITY_MODEL_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/core/rng.h"
#include "engine/core/types.h"
#include "engine/flows/flow.h"

namespace flowvi {

// Scratch of one batch size for one DensityModel; owned by the caller.
class DensityWorkspace {
 public:
  int batch_size() const { return flow_ws_->batch_size(); }
  // After Sample: the points (D x N, user's units) and their log q (1 x N).
  const Matrix& points() const { return points_; }
  const RowVector& log_q() const { return log_q_; }
  // The standardized points u = (x − mean) / sd (D x N) that LogDensityStandardized and
  // LossAndGradient read; a trainer fills it directly from pre-standardized data.
  Matrix& standardized() { return flow_ws_->eps(); }

 private:
  friend class DensityModel;
  friend class DensityFitter;
  std::unique_ptr<FlowWorkspace> flow_ws_;           // the forward pass (LogDensity)
  std::vector<std::unique_ptr<LayerCache>> caches_;  // the inverse pass (Sample)
  Matrix inv_a_, inv_b_;
  RowVector logdet_;
  Matrix points_;
  RowVector log_q_;
  Matrix grad_z_;         // dL/dy of the maximum-likelihood loss
  RowVector grad_log_q_;  // 1/N: the flow's Backward turns it into dL/dlog|det| = −1/N
};

class DensityModel {
 public:
  // Wraps `flow` with the standardization x ↦ (x − mean) / sd. InvalidArgument unless mean and
  // sd have the flow's dimension, mean is finite and every sd is positive and finite.
  static absl::StatusOr<std::unique_ptr<DensityModel>> Create(std::unique_ptr<Flow> flow,
                                                              Vector mean, Vector sd);

  int dim() const { return flow_->dim(); }
  const Flow& flow() const { return *flow_; }
  Flow& mutable_flow() { return *flow_; }
  const Vector& mean() const { return mean_; }
  const Vector& sd() const { return sd_; }

  // Scratch for batches of n points (allocates; reuse it for every batch of that size).
  std::unique_ptr<DensityWorkspace> NewWorkspace(int n) const;

  // log q of each column of `points` (D x N, user's units) into *log_q. InvalidArgument naming
  // the point (1-based) and coordinate if one is not finite, or if points.rows() != dim().
  // Allocates nothing when ws->batch_size() == points.cols() and *log_q has size N.
  absl::Status LogDensity(const Matrix& points, DensityWorkspace* ws, RowVector* log_q) const;
  // The same with a workspace of its own (allocates).
  absl::StatusOr<RowVector> LogDensity(const Matrix& points) const;

  // Draws ws->batch_size() points from q into ws->points() with their log q in ws->log_q().
  // Allocates nothing when the flow's layers are coupling, permute, orthogonal, scale layers
  // (the base included). Internal (InvalidArgument) only if a layer inverse fails, which closed
  // form inverses never do.
  absl::Status Sample(Rng& rng, DensityWorkspace* ws) const;

  // The maximum-likelihood loss on the standardized points in ws->standardized():
  //   L = −mean_j log q(x_j)   (user's units, so it includes + Σ log sd),
  // returned, with dL/d(flow params) written into *grad (size flow().num_params()) and each
  // point's log q in ws->log_q(). Not finite values are returned as they are (the caller decides).
  // Allocates nothing.
  double LossAndGradient(DensityWorkspace* ws, VectorRef grad) const;
  // log q of the standardized points in ws->standardized() into *log_q (size N: no allocation).
  void LogDensityStandardized(DensityWorkspace* ws, RowVector* log_q) const;
  // Σ_d log sd_d: the log-Jacobian of the standardization.
  double log_sd_sum() const { return log_sd_sum_; }

 private:
  DensityModel(std::unique_ptr<Flow> flow, Vector mean, Vector sd);

  std::unique_ptr<Flow> flow_;
  Vector mean_, sd_, inv_sd_;
  double log_sd_sum_;
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FIT_DENSITY_MODEL_H_
