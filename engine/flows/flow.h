// Flow: a normalizing flow on R^D — ε ~ N(0, I), then a learnable diagonal affine base
// (the mean-field family), then the spec's layers — with all its trainable numbers in one flat
// parameter vector that the flow owns.
//
//   log q(z_K) = log N(ε; 0, I) − Σ_k log|det ∂f_k/∂z_{k−1}|   (the base counted as f_0)
//
// Batched evaluation goes through a FlowWorkspace made once per batch size (NewWorkspace), so
// Forward, Backward, Sample and LogDensity allocate nothing after the first call.
//
// Thread-safety: const methods may be called concurrently, each thread with its own workspace;
// mutable_params() must not be used while another thread evaluates the flow.
#ifndef FLOWVI_ENGINE_FLOWS_FLOW_H_
#define FLOWVI_ENGINE_FLOWS_FLOW_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/core/rng.h"
#include "engine/core/types.h"
#include "engine/flows/flow_spec.h"
#include "engine/flows/layer.h"

namespace flowvi {

// Intermediates of one batch: owned by the caller, used with one Flow.
class FlowWorkspace {
 public:
  int batch_size() const { return static_cast<int>(log_q_.cols()); }
  // After Forward/Sample: the samples z_K (D x N) and their log q (1 x N).
  const Matrix& z() const { return z_.back(); }
  const RowVector& log_q() const { return log_q_; }
  // After Forward/Sample: Σ_k log|det ∂f_k/∂z_{k−1}| of each column (base included), so that a
  // caller using the flow in the normalizing direction (data → z_K) can form
  // log N(z_K) + log|det| without the cancellation of log N(ε) − log q.
  const RowVector& log_det() const { return logdet_.log_sum(); }
  // The standard-normal input ε of the last Forward; Sample fills it.
  Matrix& eps() { return z_.front(); }

 private:
  friend class Flow;
  std::vector<Matrix> z_;  // z_[0] = ε, z_[k+1] = output of layer k (layer 0 is the base)
  std::vector<std::unique_ptr<LayerCache>> caches_;
  LogDetAccumulator logdet_;  // Σ log|det| of the last Forward
  RowVector log_q_, dlogdet_;
  Matrix grad_a_, grad_b_;  // ping-pong buffers for Backward
};

class Flow {
 public:
  // Builds a flow on R^dim. InvalidArgument for an invalid spec or dim < 1. Parameters start
  // at zero; call InitParams.
  static absl::StatusOr<std::unique_ptr<Flow>> Create(const FlowSpec& spec, int dim);

  int dim() const { return dim_; }
  int num_params() const { return static_cast<int>(params_.size()); }
  // How many of num_params() are fixed structure that training never changes (layer.h).
  int num_fixed_params() const;
  const FlowSpec& spec() const { return spec_; }
  // Layers including the base at index 0.
  int num_layers() const { return static_cast<int>(layers_.size()); }
  const Layer& layer(int i) const { return *layers_[i]; }
  int param_offset(int i) const { return offsets_[i]; }

  const Vector& params() const { return params_; }
  Vector& mutable_params() { return params_; }
  // Initial parameters: the standard-normal base and each layer's own initializer.
  void InitParams(Rng& rng);

  std::unique_ptr<FlowWorkspace> NewWorkspace(int batch_size) const;
  // About how many bytes NewWorkspace(batch_size) allocates (the batches between layers, the
  // gradient buffers and every layer's cache): what a memory budget should be checked against.
  double WorkspaceBytes(int batch_size) const;

  // Pushes ws->eps() through the flow: ws->z() and ws->log_q() hold the result.
  void Forward(FlowWorkspace* ws) const;
  // Draws ε from rng, then Forward.
  void Sample(Rng& rng, FlowWorkspace* ws) const;
  // Reverse mode after Forward(ws): given dL/dz_K (D x N) and dL/dlog q (1 x N), adds dL/dparams
  // into *grad (size num_params()). Uses ws's own buffers; allocates nothing.
  void Backward(const Matrix& grad_z, const RowVector& grad_log_q, FlowWorkspace* ws,
                VectorRef grad) const;

  // log q at arbitrary points (D x N), through every layer's inverse. InvalidArgument if a
  // point is not finite or an inverse fails. Allocates only when the batch shape changes.
  absl::Status LogDensity(const Matrix& points, RowVector* log_q, Matrix* scratch_a,
                          Matrix* scratch_b) const;

 private:
  Flow(FlowSpec spec, int dim, std::vector<std::unique_ptr<Layer>> layers);

  FlowSpec spec_;
  int dim_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<int> offsets_;  // start of each layer's slice of params_
  Vector params_;
};

// log N(ε; 0, I) of each column.
void StandardNormalLogDensity(const Matrix& eps, RowVector* out);

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FLOWS_FLOW_H_
