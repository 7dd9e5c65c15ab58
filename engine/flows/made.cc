#include "engine/flows/made.h"

#include <algorithm>
#include <cmath>

#include "engine/core/simd.h"
#include "engine/flows/key_order.h"

namespace flowvi {

using ConstMatrixMap = Eigen::Map<const Matrix>;
using MatrixMap = Eigen::Map<Matrix>;

void TanhArray(const double* in, int n, double* out) {
  simd::ForEachGroup(n, [&](int j, int count) {
    const simd::TanhRatio t = simd::TanhParts(simd::LoadN(in + j, count));
    simd::StoreN(out + j, count, t.num / t.den);
  });
}

MadeNet::MadeNet(int dim, int hidden, int depth) : dim_(dim), hidden_(hidden), depth_(depth) {
  int offset = dim_;  // the keys come first
  for (int l = 0; l <= depth_; ++l) {
    weight_offset_.push_back(offset);
    offset += out_size(l) * in_size(l);
    bias_offset_.push_back(offset);
    offset += out_size(l);
  }
  num_params_ = offset;
}

int MadeNet::hidden_degree(int k) const { return 1 + k % std::max(1, dim_ - 1); }

void MadeNet::InitParams(Rng& rng, VectorRef params) const {
  rng.FillUniform(0.0, 1.0, params.segment(0, dim_));
  for (int l = 0; l < depth_; ++l) {
    const double lim = 1.0 / std::sqrt(static_cast<double>(in_size(l)));
    rng.FillUniform(-lim, lim, params.segment(weight_offset_[l], out_size(l) * in_size(l)));
    rng.FillUniform(-lim, lim, params.segment(bias_offset_[l], out_size(l)));
  }
  params.segment(weight_offset_[depth_], num_params_ - weight_offset_[depth_]).setZero();
}

MadeCache MadeNet::NewCache(int n) const {
  MadeCache c;
  c.order.resize(dim_);
  c.rank.resize(dim_);
  for (int l = 0; l <= depth_; ++l) {
    c.mask.emplace_back(out_size(l), in_size(l));
    c.weight.emplace_back(out_size(l), in_size(l));
    c.grad_w.emplace_back(out_size(l), in_size(l));
  }
  for (int l = 0; l < depth_; ++l) c.hidden.emplace_back(hidden_, n);
  c.out.resize(2 * dim_, n);
  c.delta.resize(hidden_, n);
  c.delta_next.resize(hidden_, n);
  return c;
}

void MadeNet::Prepare(ConstVectorRef params, MadeCache& c) const {
  ArgsortKeys(params.data(), dim_, c.order.data());
  for (int r = 0; r < dim_; ++r) c.rank[c.order[r]] = r;
  for (int k = 0; k < hidden_; ++k) {
    for (int i = 0; i < dim_; ++i) c.mask[0](k, i) = hidden_degree(k) >= c.rank[i] + 1 ? 1.0 : 0.0;
  }
  for (int l = 1; l < depth_; ++l) {
    for (int j = 0; j < hidden_; ++j) {
      for (int k = 0; k < hidden_; ++k) {
        c.mask[l](k, j) = hidden_degree(k) >= hidden_degree(j) ? 1.0 : 0.0;
      }
    }
  }
  for (int j = 0; j < hidden_; ++j) {
    for (int i = 0; i < dim_; ++i) {
      const double connected = c.rank[i] + 1 > hidden_degree(j) ? 1.0 : 0.0;
      c.mask[depth_](i, j) = connected;
      c.mask[depth_](dim_ + i, j) = connected;
    }
  }
  for (int l = 0; l <= depth_; ++l) {
    c.weight[l] = ConstMatrixMap(params.data() + weight_offset_[l], out_size(l), in_size(l))
                      .cwiseProduct(c.mask[l]);
  }
}

void MadeNet::Evaluate(ConstVectorRef params, const Matrix& x, MadeCache& c) const {
  const Matrix* in = &x;
  for (int l = 0; l < depth_; ++l) {
    Matrix& h = c.hidden[l];
    h.noalias() = c.weight[l] * *in;
    h.colwise() += Eigen::Map<const Vector>(params.data() + bias_offset_[l], hidden_);
    TanhArray(h.data(), static_cast<int>(h.size()), h.data());
    in = &h;
  }
  c.out.noalias() = c.weight[depth_] * *in;
  c.out.colwise() += Eigen::Map<const Vector>(params.data() + bias_offset_[depth_], 2 * dim_);
}

void MadeNet::Backpropagate(ConstVectorRef /*params*/, const Matrix& x, const Matrix& grad_out,
                            MadeCache& c, double* grad_params, Matrix* grad_x) const {
  // delta = dL/d(pre-activation) of the layer being processed; layer depth_ (the output) is
  // linear, so its delta is grad_out.
  const Matrix* delta = &grad_out;
  for (int l = depth_; l >= 0; --l) {
    const Matrix& in = l == 0 ? x : c.hidden[l - 1];
    if (grad_params != nullptr) {
      c.grad_w[l].noalias() = *delta * in.transpose();
      MatrixMap(grad_params + weight_offset_[l], out_size(l), in_size(l)) +=
          c.grad_w[l].cwiseProduct(c.mask[l]);
      Eigen::Map<Vector>(grad_params + bias_offset_[l], out_size(l)) += delta->rowwise().sum();
    }
    if (l == 0) break;
    // dL/dh of the layer below, then through its tanh: dh/dpre = 1 − h².
    Matrix& next = delta == &c.delta ? c.delta_next : c.delta;
    next.noalias() = c.weight[l].transpose() * *delta;
    next.array() *= 1.0 - in.array().square();
    delta = &next;
  }
  if (grad_x != nullptr) grad_x->noalias() = c.weight[0].transpose() * *delta;
}

}  // namespace flowvi
