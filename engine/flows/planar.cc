#include "engine/flows/planar.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "absl/strings/str_cat.h"
#include "engine/core/math.h"
#include "engine/core/root_solve.h"
#include "engine/core/simd.h"

namespace flowvi {
namespace {

using simd::Vec;

// û and the quantities its chain rule needs, from the raw (u, w).
struct Constrained {
  Vector u_hat;
  double wu = 0;       // wᵀu
  double w_norm2 = 0;  // ‖w‖²
  double c = 0;        // û = u + c w
  double w_uhat = 0;   // wᵀû ≥ −1

  void Compute(ConstVectorRef u, ConstVectorRef w) {
    wu = w.dot(u);
    w_norm2 = w.squaredNorm();
    // With w = 0 the layer is a translation and any u keeps it invertible.
    c = w_norm2 > 0 ? (Softplus(wu) - 1.0 - wu) / w_norm2 : 0.0;
    u_hat = u + c * w;
    w_uhat = w.dot(u_hat);
  }
};

class PlanarCache final : public LayerCache {
 public:
  PlanarCache(int dim, int n) : h(n), quarter_omh_det(n), scratch(n), g_uhat(dim), g_w(dim) {
    k.u_hat.resize(dim);
  }
  Constrained k;
  RowVector h;                // tanh(wᵀz + b)
  RowVector quarter_omh_det;  // (1 − h²)/(4 det), det = 1 + (1 − h²) wᵀû (the 4 saves a product)
  RowVector scratch;  // kDim = 0: wᵀz + b in Forward, ûᵀG then dL/d(wᵀz + b) in Backward
  Vector g_uhat;      // dL/dû
  Vector g_w;         // dL/dw through wᵀz and through log|det| only
};

// The kernels below work on raw column-major storage: column j of a D x N batch starts at
// z + D j. For D = 1 to 4 (kDim = D) they unroll over the rows and vectorize across columns;
// kDim = 0 stands for any other dimension, whose products with the batch (wᵀz, z + û h and the
// backward pass's) have kernels of their own further down, vectorized along each column.
//
// The forward pass runs in blocks of kBlock columns, and each block in four short passes
// (A to D below) rather than one fused loop: tanh and the division that follows are a ~90-cycle
// dependency chain per column, and with one such chain per column the out-of-order core's
// scheduler fills up long before its pipes do; shorter chains keep more columns in flight
// (splitting tanh alone into passes A and B measured 1.5x faster). The intermediates live in a
// Block on the stack, in L1.
constexpr int kBlock = 256;

struct Block {
  double a[kBlock];  // wᵀz + b, then the numerator of tanh
  double x[kBlock];  // the reduced argument, then the denominator of tanh
  double y[kBlock];  // 2^n, then a quarter of the numerator of 1 − tanh²
};

// Pass A: a = wᵀz + b (from z for kDim > 0, else already in `a`) and its range reduction.
//
// Parameters are copied into locals (broadcast once) throughout: the compiler cannot tell that
// the stores through double* in the loops leave them alone, and would reload them every time.
template <int kDim>
void PassA(const double* w, double b, const double* z, int n, Block& blk) {
  Vec wv[kDim > 0 ? kDim : 1];
  for (int i = 0; i < kDim; ++i) wv[i] = simd::Broadcast(w[i]);
  const Vec bv = simd::Broadcast(b);
  simd::ForEachGroup(n, [&](int j, int count) {
    Vec a;
    if constexpr (kDim > 0) {
      Vec rows[kDim];
      simd::LoadColumns<kDim>(z + kDim * j, count, rows);
      a = wv[0] * rows[0];
      for (int i = 1; i < kDim; ++i) a += wv[i] * rows[i];
      a += bv;
      simd::StoreN(blk.a + j, count, a);
    } else {
      a = simd::LoadN(blk.a + j, count);
    }
    const simd::TanhReduced r = simd::TanhReduce(a);
    simd::StoreN(blk.x + j, count, r.r);
    simd::StoreN(blk.y + j, count, r.s);
  });
}

// Pass B: tanh = num/den and 1 − tanh² = 4 qnum/den² (simd::TanhParts), in place.
inline void PassB(int n, Block& blk) {
  simd::ForEachGroup(n, [&](int j, int count) {
    const simd::TanhRatio t =
        simd::TanhFinish(simd::LoadN(blk.a + j, count),
                         {simd::LoadN(blk.x + j, count), simd::LoadN(blk.y + j, count)});
    simd::StoreN(blk.a + j, count, t.num);
    simd::StoreN(blk.x + j, count, t.den);
    simd::StoreN(blk.y + j, count, t.qnum);
  });
}

// Pass C: h, (1 − h²)/(4 det) and 1/det into the product. m = 1 + wᵀû. With
// 1 − h² = 4 qnum/den²,
//   det = 1 + (1 − h²) wᵀû = h² + m (1 − h²) = E/den²,   E = num² + 4m qnum
// is a sum of non-negative terms (m ≥ 0), so no cancellation even as m → 0, and one division
// R = 1/(den E) gives all three: h = num E R, (1 − h²)/(4 det) = qnum den R,
// 1/det = den² den R. REQUIRES: every det within [2^-960, 2^960], which
// LogDetAccumulator::ReserveProduct guarantees; with den ∈ [1.6, 4.1] nothing under- or
// overflows then.
void PassCProduct(double m, const Block& blk, int n, double* h, double* quarter_omh_det,
                  double* inv_det_product) {
  const Vec m4 = simd::Broadcast(4.0 * m);
  simd::ForEachGroup(n, [&](int j, int count) {
    const Vec num = simd::LoadN(blk.a + j, count);
    const Vec den = simd::LoadN(blk.x + j, count);
    const Vec qnum = simd::LoadN(blk.y + j, count);
    const Vec e = num * num + m4 * qnum;
    const Vec r = 1.0 / (den * e);
    const Vec inv_e = den * r;
    simd::StoreN(h + j, count, num * (e * r));
    simd::StoreN(quarter_omh_det + j, count, qnum * inv_e);
    simd::StoreN(inv_det_product + j, count,
                 simd::LoadN(inv_det_product + j, count) * ((den * den) * inv_e));
  });
}

// Pass C for parameters whose det may leave [2^-960, 2^960] (m tiny or huge): separate, always
// safe divisions, and log det into log_sum.
void PassCLog(double m, Block& blk, int n, double* h, double* quarter_omh_det, double* log_sum) {
  simd::ForEachGroup(n, [&](int j, int count) {
    const Vec inv_den = 1.0 / simd::LoadN(blk.x + j, count);
    const Vec hv = simd::LoadN(blk.a + j, count) * inv_den;
    const Vec quarter_omh = simd::LoadN(blk.y + j, count) * (inv_den * inv_den);
    const Vec det = hv * hv + (4.0 * m) * quarter_omh;
    simd::StoreN(h + j, count, hv);
    simd::StoreN(quarter_omh_det + j, count, quarter_omh / det);
    simd::StoreN(blk.a + j, count, det);
  });
  // |det|: m may be a rounding below 0 (wᵀû = −1 to working precision).
  Eigen::Map<RowVector>(log_sum, n).array() +=
      Eigen::Map<const RowVector>(blk.a, n).array().abs().log();
}

// Pass D (kDim = 1 to 4): out = z + û h. Separate from C, whose chain has the division.
template <int kDim>
void PassD(const double* u_hat, const double* z, const double* h, int n, double* out) {
  Vec uv[kDim];
  for (int i = 0; i < kDim; ++i) uv[i] = simd::Broadcast(u_hat[i]);
  simd::ForEachGroup(n, [&](int j, int count) {
    const Vec hv = simd::LoadN(h + j, count);
    Vec rows[kDim];
    simd::LoadColumns<kDim>(z + kDim * j, count, rows);
    for (int i = 0; i < kDim; ++i) rows[i] += uv[i] * hv;
    simd::StoreColumns<kDim>(out + kDim * j, count, rows);
  });
}

// dL/da = (ûᵀG)(1 − h²) − 2 wᵀû h · dlogdet (1 − h²)/det for a group of columns, given
// ug = ûᵀG, and t = dlogdet (1 − h²)/(4 det). 1 − h² = (1 − h)(1 + h) is recomputed rather
// than cached (one row less to write and read per layer).
struct PlanarRowGrad {
  Vec da, t;
};
inline PlanarRowGrad RowGrad(Vec ug, Vec dld, Vec h, Vec quarter_omh_det, Vec minus_8_wuhat) {
  const Vec t = dld * quarter_omh_det;
  const Vec omh = (1.0 - h) * (1.0 + h);
  return {ug * omh + minus_8_wuhat * h * t, t};
}

// Backward for kDim = 1 to 4, fused over columns: grad_in = G + w daᵀ, and the sums
// g_uhat = G h, g_w = Z da, s = Σ dlogdet (1 − h²)/det, Σ da, kept per lane.
template <int kDim>
void BackwardFixed(const double* u_hat, const double* w, double w_uhat, const double* z,
                   const double* g, const double* dlogdet, const double* h,
                   const double* quarter_omh_det, int n, double* grad_in, double* g_uhat,
                   double* g_w, double* s, double* sum_da) {
  Vec uv[kDim], wv[kDim];
  for (int i = 0; i < kDim; ++i) {
    uv[i] = simd::Broadcast(u_hat[i]);
    wv[i] = simd::Broadcast(w[i]);
  }
  Vec acc_gu[kDim] = {}, acc_gw[kDim] = {};
  Vec acc_s{}, acc_da{};
  const Vec minus_8_wuhat = simd::Broadcast(-8.0 * w_uhat);
  simd::ForEachGroup(n, [&](int j, int count) {
    Vec gv[kDim], zv[kDim];
    simd::LoadColumns<kDim>(g + kDim * j, count, gv);
    simd::LoadColumns<kDim>(z + kDim * j, count, zv);
    Vec ug = uv[0] * gv[0];
    for (int i = 1; i < kDim; ++i) ug += uv[i] * gv[i];
    const Vec hv = simd::LoadN(h + j, count);
    const PlanarRowGrad r = RowGrad(ug, simd::LoadN(dlogdet + j, count), hv,
                                    simd::LoadN(quarter_omh_det + j, count), minus_8_wuhat);
    for (int i = 0; i < kDim; ++i) {
      acc_gu[i] += gv[i] * hv;
      acc_gw[i] += zv[i] * r.da;
      gv[i] += wv[i] * r.da;
    }
    simd::StoreColumns<kDim>(grad_in + kDim * j, count, gv);
    acc_s += r.t;
    acc_da += r.da;
  });
  for (int i = 0; i < kDim; ++i) {
    g_uhat[i] = simd::Sum(acc_gu[i]);
    g_w[i] = simd::Sum(acc_gw[i]);
  }
  *s = 4.0 * simd::Sum(acc_s);
  *sum_da = simd::Sum(acc_da);
}

// Any dimension: given ug = ûᵀG in da, overwrites it with dL/da; returns s and Σ da.
void RowGradDynamic(double w_uhat, int n, const double* dlogdet, const double* h,
                    const double* quarter_omh_det, double* da, double* s, double* sum_da) {
  Vec acc_s{}, acc_da{};
  const Vec minus_8_wuhat = simd::Broadcast(-8.0 * w_uhat);
  simd::ForEachGroup(n, [&](int j, int count) {
    const PlanarRowGrad r =
        RowGrad(simd::LoadN(da + j, count), simd::LoadN(dlogdet + j, count),
                simd::LoadN(h + j, count), simd::LoadN(quarter_omh_det + j, count), minus_8_wuhat);
    simd::StoreN(da + j, count, r.da);
    acc_s += r.t;
    acc_da += r.da;
  });
  *s = 4.0 * simd::Sum(acc_s);
  *sum_da = simd::Sum(acc_da);
}

// Kernels for any other dimension d (kDim = 0). A column of the batch is d contiguous doubles,
// so these vectorize along each column (with a scalar remainder for odd d), and fuse what
// Eigen expressions would do in separate passes (a copy, then a rank-1 update; ~2x faster at
// d = 10).
static_assert(simd::kLanes == 2, "the column kernels below pair columns for two lanes");

// out_j = vᵀz_j + c for every column j (wᵀz + b, or ûᵀg with c = 0), two columns at a time so
// that both horizontal sums come out of one pair of shuffles.
void ColumnDots(const double* v, double c, const double* z, int d, int n, double* out) {
  const int dv = d - d % simd::kLanes;
  int j = 0;
  for (; j + 2 <= n; j += 2) {
    const double* z0 = z + static_cast<std::ptrdiff_t>(d) * j;
    const double* z1 = z0 + d;
    Vec acc0{}, acc1{};
    for (int k = 0; k < dv; k += simd::kLanes) {
      const Vec vk = simd::Load(v + k);
      acc0 += vk * simd::Load(z0 + k);
      acc1 += vk * simd::Load(z1 + k);
    }
    Vec sum = __builtin_shufflevector(acc0, acc1, 0, 2) + __builtin_shufflevector(acc0, acc1, 1, 3);
    for (int k = dv; k < d; ++k) sum += v[k] * Vec{z0[k], z1[k]};
    simd::Store(out + j, sum + c);
  }
  if (j < n) {
    const double* z0 = z + static_cast<std::ptrdiff_t>(d) * j;
    Vec acc0{};
    for (int k = 0; k < dv; k += simd::kLanes) acc0 += simd::Load(v + k) * simd::Load(z0 + k);
    double sum = acc0[0] + acc0[1];
    for (int k = dv; k < d; ++k) sum += v[k] * z0[k];
    out[j] = sum + c;
  }
}

// out_j = z_j + v h_j for every column j.
void AddScaledColumns(const double* v, const double* h, const double* z, int d, int n,
                      double* out) {
  const int dv = d - d % simd::kLanes;
  for (int j = 0; j < n; ++j) {
    const std::ptrdiff_t offset = static_cast<std::ptrdiff_t>(d) * j;
    const double* zj = z + offset;
    double* oj = out + offset;
    const Vec hj = simd::Broadcast(h[j]);
    for (int k = 0; k < dv; k += simd::kLanes) {
      simd::Store(oj + k, simd::Load(zj + k) + simd::Load(v + k) * hj);
    }
    for (int k = dv; k < d; ++k) oj[k] = zj[k] + v[k] * h[j];
  }
}

// grad_in_j = g_j + w da_j, g_uhat = Σ_j g_j h_j and g_w = Σ_j z_j da_j, two columns at a time.
void BackwardColumns(const double* w, const double* h, const double* da, const double* z,
                     const double* g, int d, int n, double* grad_in, double* g_uhat, double* g_w) {
  const int dv = d - d % simd::kLanes;
  std::fill(g_uhat, g_uhat + d, 0.0);
  std::fill(g_w, g_w + d, 0.0);
  int j = 0;
  for (; j + 2 <= n; j += 2) {
    const std::ptrdiff_t offset = static_cast<std::ptrdiff_t>(d) * j;
    const double *g0 = g + offset, *g1 = g0 + d, *z0 = z + offset, *z1 = z0 + d;
    double *i0 = grad_in + offset, *i1 = i0 + d;
    const Vec h0 = simd::Broadcast(h[j]), h1 = simd::Broadcast(h[j + 1]);
    const Vec da0 = simd::Broadcast(da[j]), da1 = simd::Broadcast(da[j + 1]);
    for (int k = 0; k < dv; k += simd::kLanes) {
      const Vec wk = simd::Load(w + k);
      const Vec gv0 = simd::Load(g0 + k), gv1 = simd::Load(g1 + k);
      simd::Store(i0 + k, gv0 + wk * da0);
      simd::Store(i1 + k, gv1 + wk * da1);
      simd::Store(g_uhat + k, simd::Load(g_uhat + k) + (gv0 * h0 + gv1 * h1));
      simd::Store(g_w + k,
                  simd::Load(g_w + k) + (simd::Load(z0 + k) * da0 + simd::Load(z1 + k) * da1));
    }
    for (int k = dv; k < d; ++k) {
      i0[k] = g0[k] + w[k] * da[j];
      i1[k] = g1[k] + w[k] * da[j + 1];
      g_uhat[k] += g0[k] * h[j] + g1[k] * h[j + 1];
      g_w[k] += z0[k] * da[j] + z1[k] * da[j + 1];
    }
  }
  if (j < n) {
    const std::ptrdiff_t offset = static_cast<std::ptrdiff_t>(d) * j;
    for (int k = 0; k < d; ++k) {
      grad_in[offset + k] = g[offset + k] + w[k] * da[j];
      g_uhat[k] += g[offset + k] * h[j];
      g_w[k] += z[offset + k] * da[j];
    }
  }
}

}  // namespace

void PlanarLayer::InitParams(Rng& rng, VectorRef params) const {
  // The ranges PyTorch flow libraries use, so that fits start from the same family of flows.
  const double lim_u = std::sqrt(2.0);
  const double lim_w = std::sqrt(2.0 / dim_);
  rng.FillUniform(-lim_u, lim_u, params.segment(0, dim_));
  rng.FillUniform(-lim_w, lim_w, params.segment(dim_, dim_));
  params[2 * dim_] = 0.0;
}

std::unique_ptr<LayerCache> PlanarLayer::NewCache(int n) const {
  return std::make_unique<PlanarCache>(dim_, n);
}

template <int kDim>
void PlanarLayer::ForwardImpl(ConstVectorRef params, const Matrix& in, Matrix& out,
                              LogDetAccumulator& logdet, LayerCache* cache) const {
  auto& c = *static_cast<PlanarCache*>(cache);
  const auto u = params.segment(0, dim_);
  const auto w = params.segment(dim_, dim_);
  const double b = params[2 * dim_];
  c.k.Compute(u, w);
  const int n = static_cast<int>(in.cols());
  // det = 1 + (1 − h²) wᵀû lies between 1 and m = 1 + wᵀû ≥ 0 (as 1 − h² ∈ [0, 1]), so
  // |log2 det| ≤ |log2 m| < |ilogb(m)| + 1; one more bit of slack covers rounding.
  const double m = 1.0 + c.k.w_uhat;
  const bool product =
      m > 0 && std::isfinite(m) && logdet.ReserveProduct(std::abs(std::ilogb(m)) + 2.0);
  if constexpr (kDim == 0) ColumnDots(w.data(), b, in.data(), dim_, n, c.scratch.data());
  const double* z = in.data();
  double* o = out.data();
  Block blk;
  for (int begin = 0; begin < n; begin += kBlock) {
    const int count = std::min(kBlock, n - begin);
    if constexpr (kDim == 0) std::copy_n(c.scratch.data() + begin, count, blk.a);
    PassA<kDim>(w.data(), b, z + kDim * begin, count, blk);
    PassB(count, blk);
    double* h = c.h.data() + begin;
    if (product) {
      PassCProduct(m, blk, count, h, c.quarter_omh_det.data() + begin,
                   logdet.inv_det_product().data() + begin);
    } else {
      PassCLog(m, blk, count, h, c.quarter_omh_det.data() + begin, logdet.log_sum().data() + begin);
    }
    if constexpr (kDim > 0) {
      PassD<kDim>(c.k.u_hat.data(), z + kDim * begin, h, count, o + kDim * begin);
    }
  }
  if constexpr (kDim == 0) AddScaledColumns(c.k.u_hat.data(), c.h.data(), z, dim_, n, o);
}

void PlanarLayer::Forward(ConstVectorRef params, const Matrix& in, Matrix& out,
                          LogDetAccumulator& logdet, LayerCache* cache) const {
  out.resize(in.rows(), in.cols());  // a no-op (no allocation) when the shape is right
  simd::WithFixedDim(dim_, [&](auto fixed) {
    ForwardImpl<decltype(fixed)::value>(params, in, out, logdet, cache);
  });
}

template <int kDim>
void PlanarLayer::BackwardImpl(ConstVectorRef params, const Matrix& in, const Matrix& grad_out,
                               const RowVector& dlogdet, LayerCache* cache, VectorRef grad_params,
                               Matrix& grad_in) const {
  auto& c = *static_cast<PlanarCache*>(cache);
  const auto u = params.segment(0, dim_);
  const auto w = params.segment(dim_, dim_);
  const Constrained& k = c.k;
  const int n = static_cast<int>(in.cols());
  // s = d/d(wᵀû) of Σ dlogdet log|det| = Σ dlogdet (1 − h²)/det.
  double s = 0, sum_da = 0;
  if constexpr (kDim > 0) {
    BackwardFixed<kDim>(k.u_hat.data(), w.data(), k.w_uhat, in.data(), grad_out.data(),
                        dlogdet.data(), c.h.data(), c.quarter_omh_det.data(), n, grad_in.data(),
                        c.g_uhat.data(), c.g_w.data(), &s, &sum_da);
  } else {
    ColumnDots(k.u_hat.data(), 0.0, grad_out.data(), dim_, n, c.scratch.data());
    RowGradDynamic(k.w_uhat, n, dlogdet.data(), c.h.data(), c.quarter_omh_det.data(),
                   c.scratch.data(), &s, &sum_da);
    BackwardColumns(w.data(), c.h.data(), c.scratch.data(), in.data(), grad_out.data(), dim_, n,
                    grad_in.data(), c.g_uhat.data(), c.g_w.data());
  }

  // dL/dû and the direct dL/dw (the sums above plus the log|det| terms), then the chain rule
  // through û = u + c(wᵀu, ‖w‖²) w.
  c.g_uhat += s * w;
  c.g_w += s * k.u_hat;
  auto g_u = grad_params.segment(0, dim_);
  auto g_w = grad_params.segment(dim_, dim_);
  g_u += c.g_uhat;
  g_w += c.g_w + k.c * c.g_uhat;
  if (k.w_norm2 > 0) {
    const double gw = c.g_uhat.dot(w);
    const double dc_dwu = (Sigmoid(k.wu) - 1.0) / k.w_norm2;  // ∂c/∂(wᵀu)
    const double dc_dwn2 = -k.c / k.w_norm2;                  // ∂c/∂‖w‖²
    g_u += (gw * dc_dwu) * w;
    g_w += (gw * dc_dwu) * u + (2.0 * gw * dc_dwn2) * w;
  }
  grad_params[2 * dim_] += sum_da;
}

void PlanarLayer::Backward(ConstVectorRef params, const Matrix& in, const Matrix& grad_out,
                           const RowVector& dlogdet, LayerCache* cache, VectorRef grad_params,
                           Matrix& grad_in) const {
  grad_in.resize(in.rows(), in.cols());
  simd::WithFixedDim(dim_, [&](auto fixed) {
    BackwardImpl<decltype(fixed)::value>(params, in, grad_out, dlogdet, cache, grad_params,
                                         grad_in);
  });
}

absl::Status PlanarLayer::Inverse(ConstVectorRef params, const Matrix& out, Matrix& in,
                                  RowVector& logdet) const {
  Constrained k;
  const auto u = params.segment(0, dim_);
  const auto w = params.segment(dim_, dim_);
  const double b = params[2 * dim_];
  k.Compute(u, w);
  in.resize(out.rows(), out.cols());
  const double a = k.w_uhat;
  for (Eigen::Index j = 0; j < out.cols(); ++j) {
    const double wy = w.dot(out.col(j));
    auto fdf = [&](double alpha, double* f, double* df) {
      const double t = std::tanh(alpha + b);
      *f = alpha + a * t - wy;
      *df = 1.0 + a * (1.0 - t * t);
    };
    // |α − wᵀy| = |wᵀû tanh(·)| ≤ |wᵀû| brackets the root.
    const std::optional<double> alpha = SolveMonotone(fdf, wy - std::abs(a), wy + std::abs(a));
    if (!alpha.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("planar layer inverse failed at point ", j, " (non-finite input?)"));
    }
    const double t = std::tanh(*alpha + b);
    in.col(j) = out.col(j) - k.u_hat * t;
    logdet[j] += std::log(std::abs(1.0 + (1.0 - t * t) * a));
  }
  return absl::OkStatus();
}

}  // namespace flowvi
