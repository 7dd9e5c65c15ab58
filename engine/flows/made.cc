#include "engine/flows/made.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "engine/core/array_math.h"
#include "engine/core/simd.h"
#include "engine/flows/key_order.h"
#include "engine/flows/tiled_product.h"

namespace flowvi {
namespace {

using ConstMatrixMap = Eigen::Map<const Matrix>;
using MatrixMap = Eigen::Map<Matrix>;

// Blocking of the staircase products: rows in blocks of kRowBlock (each block multiplies the
// longest prefix among its rows; the zeros beyond shorter prefixes are stored), and the batch's
// columns in chunks of at most kMaxChunkEntries / len, which keeps Eigen's packing buffers for
// an operand of len rows small enough for the stack (above EIGEN_STACK_ALLOCATION_LIMIT, 128 KiB,
// Eigen would allocate them on the heap), without splitting the small products of low
// dimensions, where each GEMM call's fixed cost dominates.
constexpr int kRowBlock = 16;
constexpr int kMaxChunkEntries = 4096;

// Products whose inner dimension is at most this run as sums of outer products, which Eigen
// evaluates without GEMM's packing (at D = 2 most products are such).
constexpr int kMaxOuterProducts = 4;

// Blocks of at most this many output rows run as one matrix-vector product per row: GEMM would
// pack (copy) its whole long operand for a few rows of result (at D = 2 most blocks are such).
constexpr int kMaxRowsPerGemv = 4;

int ColumnChunk(int len) { return std::max(16, kMaxChunkEntries / std::max(1, len)); }

// y = W x + bias 1ᵀ for a staircase W (row i zero beyond column prefix[i], prefix
// non-decreasing). A thin W (every layer at D = 2) is one dense product with the bias added in
// its pass (the masked-out weights are stored zeros); otherwise the blocks below skip the zeros.
void StaircaseAffine(const Matrix& w, const int* prefix, const Matrix& x, const double* bias,
                     Matrix& y) {
  if (w.cols() <= kThinDepth) {
    TiledProductPlusBias(w, x, bias, y);
    return;
  }
  y.colwise() = Eigen::Map<const Vector>(bias, w.rows());
  const int rows = static_cast<int>(w.rows());
  const int n = static_cast<int>(x.cols());
  for (int r = 0; r < rows; r += kRowBlock) {
    const int rb = std::min(kRowBlock, rows - r);
    const int len = prefix[r + rb - 1];
    if (len == 0) continue;
    if (rb <= kMaxRowsPerGemv && len > kMaxOuterProducts) {
      for (int i = 0; i < rb; ++i) {
        y.row(r + i).noalias() += w.row(r + i).head(len) * x.topRows(len);
      }
      continue;
    }
    if (len <= kMaxOuterProducts) {
      for (int i = 0; i < len; ++i) {
        y.block(r, 0, rb, n).noalias() += w.col(i).segment(r, rb) * x.row(i);
      }
      continue;
    }
    const int chunk = ColumnChunk(len);
    for (int j = 0; j < n; j += chunk) {
      const int cb = std::min(chunk, n - j);
      y.block(r, j, rb, cb).noalias() += w.block(r, 0, rb, len) * x.block(0, j, len, cb);
    }
  }
}

// z (+)= Wᵀ d for the same staircase W (rows [row0, row0 + rows)), d's rows offset by d_row0.
// Column c of W is nonzero only in the rows whose prefix exceeds c: a suffix of the rows.
void StaircaseTransposedProduct(const Matrix& w, int row0, int rows, const int* prefix,
                                const Matrix& d, int d_row0, Matrix& z) {
  if (rows <= kThinDepth) {
    TiledProduct(w.middleRows(row0, rows).transpose(), d.middleRows(d_row0, rows), z,
                 /*accumulate=*/true);
    return;
  }
  const int cols = static_cast<int>(w.cols());
  const int n = static_cast<int>(d.cols());
  int first = 0;  // first row with prefix > c
  for (int c = 0; c < cols; c += kRowBlock) {
    const int cb = std::min(kRowBlock, cols - c);
    while (first < rows && prefix[first] <= c) ++first;
    if (first == rows) break;
    const int rb = rows - first;
    if (cb <= kMaxRowsPerGemv && rb > kMaxOuterProducts) {
      for (int i = 0; i < cb; ++i) {
        z.row(c + i).noalias() +=
            w.col(c + i).segment(row0 + first, rb).transpose() * d.middleRows(d_row0 + first, rb);
      }
      continue;
    }
    if (rb <= kMaxOuterProducts) {
      for (int i = 0; i < rb; ++i) {
        z.block(c, 0, cb, n).noalias() +=
            w.row(row0 + first + i).segment(c, cb).transpose() * d.row(d_row0 + first + i);
      }
      continue;
    }
    const int chunk = ColumnChunk(rb);
    for (int j = 0; j < n; j += chunk) {
      const int nb = std::min(chunk, n - j);
      z.block(c, j, cb, nb).noalias() +=
          w.block(row0 + first, c, rb, cb).transpose() * d.block(d_row0 + first, j, rb, nb);
    }
  }
}

// g = d xᵀ on the staircase's nonzero blocks (rows [row0, row0 + rows) of g; d's rows offset
// by d_row0): the gradient of the masked weights, up to the stored zeros.
void StaircaseOuterProduct(const Matrix& d, int d_row0, const Matrix& x, int rows,
                           const int* prefix, Matrix& g, int row0) {
  if (rows <= kRowBlock && x.rows() <= kRowBlock) {
    // Small (every layer at D = 2): one dense product; the entries beyond a row's prefix are
    // computed too, and never read.
    TiledProduct(d.middleRows(d_row0, rows), x.transpose(), g.middleRows(row0, rows),
                 /*accumulate=*/false);
    return;
  }
  const int n = static_cast<int>(x.cols());
  for (int r = 0; r < rows; r += kRowBlock) {
    const int rb = std::min(kRowBlock, rows - r);
    const int len = prefix[r + rb - 1];
    if (len == 0) continue;
    if (rb <= kMaxRowsPerGemv) {
      for (int i = 0; i < rb; ++i) {
        g.row(row0 + r + i).head(len).noalias() =
            d.row(d_row0 + r + i) * x.topRows(len).transpose();
      }
      continue;
    }
    auto block = g.block(row0 + r, 0, rb, len);
    block.setZero();
    const int chunk = ColumnChunk(std::max(len, rb));
    for (int j = 0; j < n; j += chunk) {
      const int cb = std::min(chunk, n - j);
      block.noalias() += d.block(d_row0 + r, j, rb, cb) * x.block(0, j, len, cb).transpose();
    }
  }
}

// dst(r, j) = src(rows[r], j) for r < m: a gather of rows, column by column (row by row would
// stride through memory once per entry).
void GatherRows(const Matrix& src, const int* rows, int m, Matrix& dst) {
  for (Eigen::Index j = 0; j < src.cols(); ++j) {
    const double* from = src.col(j).data();
    double* to = dst.col(j).data();
    for (int r = 0; r < m; ++r) to[r] = from[rows[r]];
  }
}

// The inverse: dst(rows[r], j) = src(r, j).
void ScatterRows(const Matrix& src, const int* rows, int m, Matrix& dst) {
  for (Eigen::Index j = 0; j < src.cols(); ++j) {
    const double* from = src.col(j).data();
    double* to = dst.col(j).data();
    for (int r = 0; r < m; ++r) to[rows[r]] = from[r];
  }
}

}  // namespace

MadeNet::MadeNet(int dim, int hidden, int depth, bool allow_fused)
    : dim_(dim), hidden_(hidden), depth_(depth), fused_(allow_fused && FusedApplies(dim, depth)) {
  int offset = dim_;  // the keys come first
  for (int l = 0; l <= depth_; ++l) {
    weight_offset_.push_back(offset);
    offset += out_size(l) * in_size(l);
    bias_offset_.push_back(offset);
    offset += out_size(l);
  }
  num_params_ = offset;
  // Prefix lengths of the masks in rank space (degrees are non-decreasing in k).
  prefix_.resize(depth_ + 1);
  for (int k = 0; k < hidden_; ++k) prefix_[0].push_back(hidden_degree(k));  // ranks < degree
  for (int l = 1; l < depth_; ++l) {
    for (int k = 0; k < hidden_; ++k) {
      int len = 0;  // units of degree ≤ this one's
      while (len < hidden_ && hidden_degree(len) <= hidden_degree(k)) ++len;
      prefix_[l].push_back(len);
    }
  }
  for (int r = 0; r < dim_; ++r) {
    int len = 0;  // units of degree < r + 1
    while (len < hidden_ && hidden_degree(len) <= r) ++len;
    prefix_[depth_].push_back(len);  // m of rank r
    prefix_[depth_].push_back(len);  // a of rank r
  }
}

int MadeNet::hidden_degree(int k) const {
  return 1 + static_cast<int>(static_cast<int64_t>(k) * std::max(0, dim_ - 1) / hidden_);
}

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
  c.out_rows.resize(2 * dim_);
  for (int l = 0; l <= depth_; ++l) c.weight.emplace_back(out_size(l), in_size(l));
  c.out_bias.resize(2 * dim_);
  if (fused_) {
    const int64_t padded =
        (int64_t{n} + simd::kWideLanes - 1) / simd::kWideLanes * simd::kWideLanes;
    c.packed_x.resize(padded * dim_);
    c.packed_h.resize(padded * hidden_);
    c.packed_g.resize(padded * 2 * dim_);
    c.packed_d.resize(padded * hidden_);
    c.wide_weights.resize(int64_t{hidden_} * (3 * dim_ + 1) * simd::kWideLanes);
    c.unit_sums.resize(c.wide_weights.size());
    return c;
  }
  for (int l = 0; l <= depth_; ++l) c.grad_w.emplace_back(out_size(l), in_size(l));
  c.x.resize(dim_, n);
  for (int l = 0; l < depth_; ++l) c.hidden.emplace_back(hidden_, n);
  c.out.resize(2 * dim_, n);
  c.grad_out.resize(2 * dim_, n);
  c.row_sums.resize(2 * dim_);
  c.delta.resize(hidden_, n);
  c.delta_next.resize(hidden_, n);
  c.grad_x.resize(dim_, n);
  return c;
}

void MadeNet::Prepare(ConstVectorRef params, MadeCache& c) const {
  ArgsortKeys(params.data(), dim_, c.order.data());
  const int* order = c.order.data();
  // Input layer: column r is input order[r].
  const ConstMatrixMap w0(params.data() + weight_offset_[0], hidden_, dim_);
  for (int r = 0; r < dim_; ++r) {
    for (int k = 0; k < hidden_; ++k) c.weight[0](k, r) = r < prefix_[0][k] ? w0(k, order[r]) : 0.0;
  }
  for (int l = 1; l < depth_; ++l) {
    const ConstMatrixMap w(params.data() + weight_offset_[l], hidden_, hidden_);
    for (int j = 0; j < hidden_; ++j) {
      for (int k = 0; k < hidden_; ++k) c.weight[l](k, j) = j < prefix_[l][k] ? w(k, j) : 0.0;
    }
  }
  // Output layer: rows 2r and 2r + 1 are m and a of input order[r] (interleaved, so that the
  // staircase runs through all 2D rows).
  for (int r = 0; r < dim_; ++r) {
    c.out_rows[2 * r] = order[r];
    c.out_rows[2 * r + 1] = dim_ + order[r];
  }
  const ConstMatrixMap wo(params.data() + weight_offset_[depth_], 2 * dim_, hidden_);
  const double* bo = params.data() + bias_offset_[depth_];
  for (int i = 0; i < 2 * dim_; ++i) {
    const int len = prefix_[depth_][i];
    for (int k = 0; k < hidden_; ++k) {
      c.weight[depth_](i, k) = k < len ? wo(c.out_rows[i], k) : 0.0;
    }
    c.out_bias[i] = bo[c.out_rows[i]];
  }
  if (fused_) PrepareFused(params, c);
}

void MadeNet::Evaluate(ConstVectorRef params, const Matrix& x, MadeCache& c, Matrix* out) const {
  if (fused_) {
    EvaluateFused(x, c, out);
    return;
  }
  GatherRows(x, c.order.data(), dim_, c.x);
  const Matrix* in = &c.x;
  for (int l = 0; l < depth_; ++l) {
    Matrix& h = c.hidden[l];
    StaircaseAffine(c.weight[l], prefix_[l].data(), *in, params.data() + bias_offset_[l], h);
    TanhArray(h.data(), h.size(), h.data());
    in = &h;
  }
  StaircaseAffine(c.weight[depth_], prefix_[depth_].data(), *in, c.out_bias.data(), c.out);
  out->resize(2 * dim_, x.cols());
  ScatterRows(c.out, c.out_rows.data(), 2 * dim_, *out);
}

void MadeNet::Backpropagate(const Matrix& grad_out, MadeCache& c, double* grad_params,
                            Matrix* grad_x) const {
  if (fused_) {
    BackpropagateFused(grad_out, c, grad_params, grad_x);
    return;
  }
  const int* order = c.order.data();
  GatherRows(grad_out, c.out_rows.data(), 2 * dim_, c.grad_out);
  // Output layer (linear): its delta is grad_out.
  const int* prefix = prefix_[depth_].data();
  const Matrix& last = c.hidden[depth_ - 1];
  if (grad_params != nullptr) {
    Matrix& g = c.grad_w[depth_];
    StaircaseOuterProduct(c.grad_out, 0, last, 2 * dim_, prefix, g, 0);
    MatrixMap gw(grad_params + weight_offset_[depth_], 2 * dim_, hidden_);
    double* gb = grad_params + bias_offset_[depth_];
    c.row_sums = c.grad_out.rowwise().sum();  // along the columns: vectorized
    for (int i = 0; i < 2 * dim_; ++i) {
      const int row = c.out_rows[i];
      for (int k = 0; k < prefix[i]; ++k) gw(row, k) += g(i, k);
      gb[row] += c.row_sums[i];
    }
  }
  Matrix* delta = &c.delta;
  delta->setZero();
  StaircaseTransposedProduct(c.weight[depth_], 0, 2 * dim_, prefix, c.grad_out, 0, *delta);
  delta->array() *= 1.0 - last.array().square();  // through tanh
  for (int l = depth_ - 1; l >= 0; --l) {
    const Matrix& in = l == 0 ? c.x : c.hidden[l - 1];
    const int* pre = prefix_[l].data();
    if (grad_params != nullptr) {
      Matrix& g = c.grad_w[l];
      StaircaseOuterProduct(*delta, 0, in, hidden_, pre, g, 0);
      MatrixMap gw(grad_params + weight_offset_[l], hidden_, in_size(l));
      for (int k = 0; k < hidden_; ++k) {
        for (int i = 0; i < pre[k]; ++i) gw(k, l == 0 ? order[i] : i) += g(k, i);
      }
      Eigen::Map<Vector>(grad_params + bias_offset_[l], hidden_) += delta->rowwise().sum();
    }
    if (l == 0) break;
    Matrix* next = delta == &c.delta ? &c.delta_next : &c.delta;
    next->setZero();
    StaircaseTransposedProduct(c.weight[l], 0, hidden_, pre, *delta, 0, *next);
    next->array() *= 1.0 - in.array().square();
    delta = next;
  }
  if (grad_x == nullptr) return;
  c.grad_x.setZero();
  StaircaseTransposedProduct(c.weight[0], 0, hidden_, prefix_[0].data(), *delta, 0, c.grad_x);
  grad_x->resize(dim_, c.x.cols());
  ScatterRows(c.grad_x, order, dim_, *grad_x);
}

}  // namespace flowvi
