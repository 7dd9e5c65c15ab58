#include "engine/flows/circconv.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <unsupported/Eigen/FFT>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/flows/tiled_product.h"

namespace flowvi {
namespace {

using Complex = std::complex<double>;
using ComplexMatrix = Eigen::Matrix<Complex, Eigen::Dynamic, Eigen::Dynamic>;

// Real signals have Hermitian spectra: bins 0..D/2 carry everything (Eigen's HalfSpectrum).
int NumBins(int d) { return d / 2 + 1; }
// The complex (paired) bins 1..K.
int NumPairs(int d) { return (d - 1) / 2; }

// A real-signal FFT of size d with half spectra; d = 1 (a plain scaling) bypasses the FFT.
class RealFft {
 public:
  explicit RealFft(int d) : d_(d) { fft_.SetFlag(Eigen::FFT<double>::HalfSpectrum); }
  void Forward(const double* x, Complex* spectrum) {
    if (d_ == 1) {
      spectrum[0] = x[0];
    } else {
      fft_.fwd(spectrum, x, d_);
    }
  }
  // Scaled by 1/d: Inverse(Forward(x)) = x.
  void Inverse(const Complex* spectrum, double* x) {
    if (d_ == 1) {
      x[0] = spectrum[0].real();
    } else {
      fft_.inv(x, spectrum, d_);
    }
  }

 private:
  int d_;
  Eigen::FFT<double> fft_;
};

// ŵ for bins 0..D/2 from the parameters (see circconv.h).
void Spectrum(ConstVectorRef p, int d, Complex* w_hat) {
  w_hat[0] = std::exp(p[0]);
  for (int k = 1; k <= NumPairs(d); ++k) w_hat[k] = std::polar(std::exp(p[2 * k - 1]), p[2 * k]);
  if (d % 2 == 0 && d > 1) w_hat[d / 2] = std::exp(p[d - 1]);
}

double LogDet(ConstVectorRef p, int d) {
  double sum = p[0];
  for (int k = 1; k <= NumPairs(d); ++k) sum += 2.0 * p[2 * k - 1];
  if (d % 2 == 0 && d > 1) sum += p[d - 1];
  return sum;
}

// Up to this D the training passes multiply by the circulant matrix itself: its D² N
// multiply-adds per product, at the matrix product's speed, cost less than N forward/inverse
// FFT pairs (one kissfft call per column). Measured for N = 256, the three products of a
// training step against the FFT path's four transforms per column: 40 vs 115 us at D = 32,
// 132 vs 359 at 64, 285 vs 437 at 96, 499 vs 473 at 128, 1920 vs 1566 at 256. The filter and
// the gradient still go through one FFT each, and the inverse always divides in the Fourier
// domain.
constexpr int kMaxDenseDim = 96;

bool UseDense(int d) { return d <= kMaxDenseDim; }

class CircConvCache final : public LayerCache {
 public:
  CircConvCache(int d, int n)
      : fft(d),
        w_hat(NumBins(d)),
        x_hat(UseDense(d) ? 0 : NumBins(d), UseDense(d) ? 0 : n),
        bins(NumBins(d)),
        cross(NumBins(d)),
        w(d),
        circulant(d, d),
        grad_circulant(d, d),
        grad_w(d) {}
  RealFft fft;
  std::vector<Complex> w_hat;
  ComplexMatrix x_hat;  // FFT path: the DFT of each input column, for Backward
  std::vector<Complex> bins, cross;
  // Dense path: the filter w = IDFT(ŵ), C(i, n) = w_{(i − n) mod D}, dL/dC, dL/dw.
  Vector w;
  Matrix circulant, grad_circulant;
  Vector grad_w;
};

}  // namespace

void CircularConvLayer::InitParams(Rng& /*rng*/, VectorRef params) const {
  params.setZero();  // ŵ = 1: the identity
}

std::unique_ptr<LayerCache> CircularConvLayer::NewCache(int n) const {
  return std::make_unique<CircConvCache>(dim_, n);
}

void CircularConvLayer::Forward(ConstVectorRef params, const Matrix& in, Matrix& out,
                                LogDetAccumulator& logdet, LayerCache* cache) const {
  auto& c = *static_cast<CircConvCache*>(cache);
  const int nb = NumBins(dim_);
  out.resize(in.rows(), in.cols());
  Spectrum(params, dim_, c.w_hat.data());
  if (UseDense(dim_)) {
    c.fft.Inverse(c.w_hat.data(), c.w.data());
    for (int col = 0; col < dim_; ++col) {
      for (int i = 0; i < dim_; ++i) c.circulant(i, col) = c.w[(i - col + dim_) % dim_];
    }
    TiledProduct(c.circulant, in, out, /*accumulate=*/false);
    logdet.AddConstant(LogDet(params, dim_));
    return;
  }
  for (Eigen::Index j = 0; j < in.cols(); ++j) {
    Complex* x_hat = c.x_hat.col(j).data();
    c.fft.Forward(in.col(j).data(), x_hat);
    for (int k = 0; k < nb; ++k) c.bins[k] = c.w_hat[k] * x_hat[k];
    c.fft.Inverse(c.bins.data(), out.col(j).data());
  }
  logdet.AddConstant(LogDet(params, dim_));
}

void CircularConvLayer::Backward(ConstVectorRef /*params*/, const Matrix& in,
                                 const Matrix& grad_out, const RowVector& dlogdet,
                                 LayerCache* cache, VectorRef grad_params, Matrix& grad_in) const {
  auto& c = *static_cast<CircConvCache*>(cache);
  const int d = dim_;
  const int nb = NumBins(d);
  grad_in.resize(in.rows(), in.cols());
  // The transpose of a real circulant matrix is the circulant of conj(ŵ). For the parameters,
  // Σ_t ḡ_t y_t = (1/D) Σ_k ŵ_k c_k over all D bins, c_k = Σ_columns x̂_k conj(DFT(ḡ)_k).
  if (UseDense(d)) {
    // dL/dw_t = Σ_i G(i, (i − t) mod D) with G = dL/dC = Ḡ Xᵀ, and with W̄ = DFT(dL/dw),
    // Σ_t w̄_t w_t = (1/D) Σ_k ŵ_k conj(W̄_k): the same c_k as below.
    TiledProduct(c.circulant.transpose(), grad_out, grad_in, /*accumulate=*/false);
    TiledProduct(grad_out, in.transpose(), c.grad_circulant, /*accumulate=*/false);
    c.grad_w.setZero();
    for (int col = 0; col < d; ++col) {
      for (int i = 0; i < d; ++i) c.grad_w[(i - col + d) % d] += c.grad_circulant(i, col);
    }
    c.fft.Forward(c.grad_w.data(), c.cross.data());
    for (Complex& z : c.cross) z = std::conj(z);
  } else {
    std::fill(c.cross.begin(), c.cross.end(), Complex(0.0));
  }
  for (Eigen::Index j = 0; !UseDense(d) && j < in.cols(); ++j) {
    const Complex* x_hat = c.x_hat.col(j).data();
    c.fft.Forward(grad_out.col(j).data(), c.bins.data());
    for (int k = 0; k < nb; ++k) {
      c.cross[k] += x_hat[k] * std::conj(c.bins[k]);
      c.bins[k] *= std::conj(c.w_hat[k]);
    }
    c.fft.Inverse(c.bins.data(), grad_in.col(j).data());
  }
  // Bins 0 and D/2 count once, a pair k, D − k twice (Re(ŵ_k c_k) + its conjugate's).
  const double sum_dlogdet = dlogdet.sum();
  const double inv_d = 1.0 / d;
  grad_params[0] += inv_d * (c.w_hat[0] * c.cross[0]).real() + sum_dlogdet;
  for (int k = 1; k <= NumPairs(d); ++k) {
    const Complex z = c.w_hat[k] * c.cross[k];
    grad_params[2 * k - 1] += 2.0 * inv_d * z.real() + 2.0 * sum_dlogdet;  // ∂/∂ρ_k
    grad_params[2 * k] -= 2.0 * inv_d * z.imag();                          // ∂/∂φ_k: Re(i z)
  }
  if (d % 2 == 0 && d > 1) {
    grad_params[d - 1] += inv_d * (c.w_hat[d / 2] * c.cross[d / 2]).real() + sum_dlogdet;
  }
}

absl::Status CircularConvLayer::Inverse(ConstVectorRef params, const Matrix& out, Matrix& in,
                                        RowVector& logdet) const {
  const int nb = NumBins(dim_);
  RealFft fft(dim_);
  std::vector<Complex> w_hat(nb), bins(nb);
  Spectrum(params, dim_, w_hat.data());
  in.resize(out.rows(), out.cols());
  for (Eigen::Index j = 0; j < out.cols(); ++j) {
    if (!out.col(j).allFinite()) {
      return absl::InvalidArgumentError(
          absl::StrCat("circconv layer inverse: the point at column ", j, " is not finite"));
    }
    fft.Forward(out.col(j).data(), bins.data());
    for (int k = 0; k < nb; ++k) bins[k] /= w_hat[k];
    fft.Inverse(bins.data(), in.col(j).data());
  }
  if (!in.allFinite()) {
    return absl::InvalidArgumentError("circconv layer inverse: the result overflows");
  }
  logdet.array() += LogDet(params, dim_);
  return absl::OkStatus();
}

}  // namespace flowvi
