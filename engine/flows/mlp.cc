#include "engine/flows/mlp.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/core/array_math.h"
#include "engine/core/simd.h"
#include "engine/flows/tiled_product.h"

namespace flowvi {
namespace {

using simd::Wide;

// a = act(a) in place, over every entry.
void Activate(MlpActivation activation, Matrix& a) {
  if (activation == MlpActivation::kRelu) {
    a = a.cwiseMax(0.0);
  } else {
    TanhArray(a.data(), a.size(), a.data());
  }
}

// delta = delta ⊙ act'(pre-activation), from the post-activation a: 1 − a² for tanh, [a > 0]
// for relu.
void ScaleByDerivative(MlpActivation activation, const Matrix& a, Matrix& delta) {
  if (activation == MlpActivation::kTanh) {
    const double* ap = a.data();
    double* dp = delta.data();
    simd::ForEachGroup<Wide>(static_cast<int>(a.size()), [&](int j, int count) {
      const Wide av = simd::LoadN<Wide>(ap + j, count);
      simd::StoreN(dp + j, count, simd::LoadN<Wide>(dp + j, count) * ((1.0 - av) * (1.0 + av)));
    });
  } else {
    delta = (a.array() > 0.0).select(delta, 0.0);
  }
}

}  // namespace

absl::StatusOr<MlpActivation> ParseMlpActivation(absl::string_view name, absl::string_view owner) {
  if (name == "tanh") return MlpActivation::kTanh;
  if (name == "relu") return MlpActivation::kRelu;
  return absl::InvalidArgumentError(
      absl::StrCat(owner, ": unknown activation '", name, "'; known: tanh, relu"));
}

Mlp::Mlp(int in, int out, int hidden, int depth, MlpActivation activation)
    : in_(in), out_(out), hidden_(hidden), depth_(depth), activation_(activation) {
  int offset = 0;
  for (int l = 0; l <= depth_; ++l) {
    offsets_.push_back(offset);
    offset += rows(l) * cols(l) + rows(l);
  }
  num_params_ = offset;
}

MlpCache Mlp::NewCache(int n, bool masks) const {
  MlpCache c;
  for (int l = 0; l < depth_; ++l) c.act_.emplace_back(hidden_, n);
  c.out_.resize(out_, n);
  c.delta_a_.resize(hidden_, n);
  c.delta_b_.resize(hidden_, n);
  if (masks) {
    for (int l = 0; l <= depth_; ++l) {
      c.masked_.emplace_back(rows(l), cols(l));
      c.grad_w_.emplace_back(rows(l), cols(l));
    }
  }
  return c;
}

void Mlp::InitParams(Rng& rng, VectorRef params) const {
  params.setZero();
  for (int l = 0; l < depth_; ++l) {
    const double limit = std::sqrt(6.0 / (rows(l) + cols(l)));
    rng.FillUniform(-limit, limit, params.segment(weight_offset(l), rows(l) * cols(l)));
  }
  // Output layer (weights and bias) stays zero: the conditioner starts at y = 0.
}

Eigen::Map<const Matrix> Mlp::Weights(ConstVectorRef params, int l, const MlpCache& cache,
                                      absl::Span<const Matrix> masks) const {
  const double* data = masks.empty() ? params.data() + weight_offset(l) : cache.masked_[l].data();
  return Eigen::Map<const Matrix>(data, rows(l), cols(l));
}

void Mlp::Forward(ConstVectorRef params, const ConstBatchRef& x, MlpCache* cache,
                  absl::Span<const Matrix> masks) const {
  MlpCache& c = *cache;
  if (!masks.empty()) {
    for (int l = 0; l <= depth_; ++l) {
      c.masked_[l] = Eigen::Map<const Matrix>(params.data() + weight_offset(l), rows(l), cols(l))
                         .cwiseProduct(masks[l]);
    }
  }
  for (int l = 0; l <= depth_; ++l) {
    Matrix& a = l == depth_ ? c.out_ : c.act_[l];
    const auto w = Weights(params, l, c, masks);
    const double* bias = params.data() + bias_offset(l);
    if (l == 0) {
      TiledProductPlusBias(w, x, bias, a);
    } else {
      TiledProductPlusBias(w, c.act_[l - 1], bias, a);
    }
    if (l < depth_) Activate(activation_, a);
  }
}

void Mlp::Backward(ConstVectorRef params, const ConstBatchRef& x, const ConstBatchRef& grad_y,
                   MlpCache* cache, VectorRef grad_params, BatchRef* grad_x,
                   absl::Span<const Matrix> masks) const {
  MlpCache& c = *cache;
  // delta = dL/d(pre-activation of layer l), starting from the output layer's grad_y.
  const Matrix* delta = nullptr;
  Matrix* next = &c.delta_a_;
  for (int l = depth_; l >= 0; --l) {
    const auto w = Weights(params, l, c, masks);
    Eigen::Map<Matrix> g_w(grad_params.data() + weight_offset(l), rows(l), cols(l));
    auto g_b = grad_params.segment(bias_offset(l), rows(l));
    auto accumulate = [&](const auto& d) {
      if (masks.empty()) {
        if (l == 0) {
          TiledProduct(d, x.transpose(), g_w, true);
        } else {
          TiledProduct(d, c.act_[l - 1].transpose(), g_w, true);
        }
      } else {
        if (l == 0) {
          TiledProduct(d, x.transpose(), c.grad_w_[l], false);
        } else {
          TiledProduct(d, c.act_[l - 1].transpose(), c.grad_w_[l], false);
        }
        g_w += c.grad_w_[l].cwiseProduct(masks[l]);
      }
      g_b += d.rowwise().sum();
      if (l > 0) {
        TiledProduct(w.transpose(), d, *next, false);
        ScaleByDerivative(activation_, c.act_[l - 1], *next);
      } else if (grad_x != nullptr) {
        TiledProduct(w.transpose(), d, *grad_x, true);
      }
    };
    if (l == depth_) {
      accumulate(grad_y);
    } else {
      accumulate(*delta);
    }
    delta = next;
    next = next == &c.delta_a_ ? &c.delta_b_ : &c.delta_a_;
  }
}

}  // namespace flowvi
