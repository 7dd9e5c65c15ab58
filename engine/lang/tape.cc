#include "engine/lang/tape.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/lang/builtins.h"
#include "engine/lang/kernels.h"

namespace flowvi::lang {
namespace {

using Arr = Eigen::ArrayXd;
using CMap = Eigen::Map<const Arr>;
using MMap = Eigen::Map<Arr>;
using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using CBlock = Eigen::Map<const RowMajor>;
using MBlock = Eigen::Map<RowMajor>;

// Scratch rows: up to 4 broadcast constant arguments and the kernels' own scratch.
constexpr int kScratchRows = 4 + kDistScratchRows;

constexpr double kInf = std::numeric_limits<double>::infinity();

// Views of the workspace for one sweep.
struct Sweep {
  const Tape& tape;
  int n;
  double* values;
  double* adj;
  double* partials;
  double* scratch;
  double* bad;

  double* Row(int32_t row) const { return values + static_cast<size_t>(row) * n; }
  double* AdjRow(int32_t row) const { return adj + static_cast<size_t>(row) * n; }
  double* PartialRow(int32_t row) const { return partials + static_cast<size_t>(row) * n; }
  double* ScratchRow(int k) const { return scratch + static_cast<size_t>(k) * n; }

  // Row r of operand a (broadcast when a has one row): a value row, or a pointer to one
  // constant with *scalar set.
  const double* Arg(const Operand& a, int r, bool* scalar) const {
    const int32_t i = a.start + (a.rows > 1 ? r : 0);
    *scalar = a.is_const;
    return a.is_const ? tape.consts.data() + i : Row(i);
  }

  // Row r of operand a as N values, broadcasting a constant into scratch row k.
  const double* FullArg(const Operand& a, int r, int k) const {
    bool scalar;
    const double* p = Arg(a, r, &scalar);
    if (!scalar) return p;
    MMap(ScratchRow(k), n).setConstant(*p);
    return ScratchRow(k);
  }
};

void RecordError(RuntimeError* error, int32_t site, int32_t arg, int32_t column, double value) {
  if (error->set) return;
  error->set = true;
  error->site = site;
  error->arg = arg;
  error->column = column;
  error->value = value;
}

void ForwardDist(const Sweep& s, const Node& node, bool partials, RuntimeError* error,
                 bool* any_bad) {
  const Dist dist = static_cast<Dist>(node.sub);
  const DistInfo& info = GetDist(dist);
  const int nargs = 1 + info.num_params;
  double* out = s.Row(node.out);
  MMap(out, s.n).setZero();
  const double* x[4] = {nullptr, nullptr, nullptr, nullptr};
  double* dx[4] = {nullptr, nullptr, nullptr, nullptr};
  for (int r = 0; r < node.items; ++r) {
    for (int k = 0; k < nargs; ++k) {
      const Operand& a = node.args[k];
      // A one-row constant was broadcast into its scratch row at r = 0 and is still there.
      if (r == 0 || a.rows > 1 || !a.is_const) x[k] = s.FullArg(a, r, k);
      if (partials && node.partial[k] >= 0) dx[k] = s.PartialRow(node.partial[k] + r);
    }
    DistKernel(dist, s.n, x, out, dx, s.ScratchRow(4));
    // Supports of the arguments that vary by sample (constants were checked when compiling).
    for (int k = 0; k < nargs; ++k) {
      const Operand& a = node.args[k];
      if (a.is_const || (a.rows == 1 && r > 0)) continue;
      const Support sup = k == 0 ? info.variate_support : info.param_support[k - 1];
      const int j = MarkOutOfSupport(sup, s.n, x[k], s.bad);
      if (j >= 0) {
        *any_bad = true;
        RecordError(error, node.aux, k, j, x[k][j]);
      }
    }
    if (dist == Dist::kUniform && !(node.args[1].is_const && node.args[2].is_const)) {
      for (int j = 0; j < s.n; ++j) {
        if (!(x[2][j] > x[1][j])) {
          s.bad[j] = 1;
          *any_bad = true;
          RecordError(error, node.aux, 2, j, x[2][j]);
        }
      }
    }
  }
}

void ForwardNode(const Sweep& s, const Node& node, bool partials, RuntimeError* error,
                 bool* any_bad) {
  const int n = s.n;
  double* out = s.Row(node.out);
  switch (node.op) {
    case OpCode::kUnary:  // one kernel call over the whole block (args[0] has node.rows rows)
      UnaryKernel(static_cast<UnaryOp>(node.sub), node.rows * n, s.Row(node.args[0].start), out,
                  partials ? s.PartialRow(node.partial[0]) : nullptr);
      return;
    case OpCode::kBinary: {
      const Operand& a = node.args[0];
      const Operand& b = node.args[1];
      const BinaryOp op = static_cast<BinaryOp>(node.sub);
      double* da = partials && node.partial[0] >= 0 ? s.PartialRow(node.partial[0]) : nullptr;
      double* db = partials && node.partial[1] >= 0 ? s.PartialRow(node.partial[1]) : nullptr;
      // Whole-block when neither operand needs per-row handling.
      auto whole = [&](const Operand& o) { return o.is_const ? o.rows == 1 : o.rows == node.rows; };
      if (whole(a) && whole(b)) {
        const double* pa = a.is_const ? &s.tape.consts[a.start] : s.Row(a.start);
        const double* pb = b.is_const ? &s.tape.consts[b.start] : s.Row(b.start);
        BinaryKernel(op, node.rows * n, pa, a.is_const, pb, b.is_const, out, da, db);
        return;
      }
      for (int r = 0; r < node.rows; ++r) {
        bool sa, sb;
        const double* pa = s.Arg(a, r, &sa);
        const double* pb = s.Arg(b, r, &sb);
        BinaryKernel(op, n, pa, sa, pb, sb, out + r * n, da != nullptr ? da + r * n : nullptr,
                     db != nullptr ? db + r * n : nullptr);
      }
      return;
    }
    case OpCode::kSum: {
      const Operand& a = node.args[0];
      Eigen::Map<Eigen::RowVectorXd>(out, n) = CBlock(s.Row(a.start), a.rows, n).colwise().sum();
      return;
    }
    case OpCode::kLogSumExp: {
      const Operand& a = node.args[0];
      const CBlock x(s.Row(a.start), a.rows, n);
      Eigen::Map<Eigen::RowVectorXd> o(out, n);
      o = x.colwise().maxCoeff();
      double* sum = s.ScratchRow(0);
      MMap(sum, n).setZero();
      for (int r = 0; r < a.rows; ++r) {
        MMap(sum, n) += (CMap(s.Row(a.start + r), n) - o.array().transpose()).exp();
      }
      // All -inf: the sum is NaN-free only when the max is finite.
      for (int j = 0; j < n; ++j) out[j] = out[j] == -kInf ? -kInf : out[j] + std::log(sum[j]);
      if (partials) {
        MBlock(s.PartialRow(node.partial[0]), a.rows, n) = (x.array().rowwise() - o.array()).exp();
      }
      return;
    }
    case OpCode::kDot: {
      MMap o(out, n);
      o.setZero();
      const int len = std::max(node.args[0].rows, node.args[1].rows);
      for (int r = 0; r < len; ++r) {
        bool sa, sb;
        const double* pa = s.Arg(node.args[0], r, &sa);
        const double* pb = s.Arg(node.args[1], r, &sb);
        if (sa) {
          o += *pa * CMap(pb, n);
        } else if (sb) {
          o += CMap(pa, n) * *pb;
        } else {
          o += CMap(pa, n) * CMap(pb, n);
        }
      }
      return;
    }
    case OpCode::kMatVec: {
      const Eigen::MatrixXd& m = s.tape.matrices[node.aux];
      MBlock(out, node.rows, n).noalias() = m * CBlock(s.Row(node.args[0].start), m.cols(), n);
      return;
    }
    case OpCode::kGather:
      for (int r = 0; r < node.rows; ++r) {
        const int32_t src = s.tape.gather[node.aux + r];
        if (src >= 0) {
          std::memcpy(out + r * n, s.Row(src), sizeof(double) * n);
        } else {
          MMap(out + r * n, n).setConstant(s.tape.consts[-1 - src]);
        }
      }
      return;
    case OpCode::kDist:
      ForwardDist(s, node, partials, error, any_bad);
      return;
    case OpCode::kLower:
    case OpCode::kUpper:
    case OpCode::kLowerUpper: {
      double* d = partials ? s.PartialRow(node.partial[0]) : nullptr;
      for (int r = 0; r < node.rows; ++r) {
        const CMap u(s.Row(node.args[0].start + r), n);
        MMap o(out + r * n, n);
        if (node.op == OpCode::kLower) {
          const double lb = s.tape.consts[node.args[1].start + (node.args[1].rows > 1 ? r : 0)];
          o = u.exp();
          if (d != nullptr) MMap(d + r * n, n) = o;
          o += lb;
        } else if (node.op == OpCode::kUpper) {
          const double ub = s.tape.consts[node.args[2].start + (node.args[2].rows > 1 ? r : 0)];
          o = -u.exp();
          if (d != nullptr) MMap(d + r * n, n) = o;
          o += ub;
        } else {
          const double lb = s.tape.consts[node.args[1].start + (node.args[1].rows > 1 ? r : 0)];
          const double ub = s.tape.consts[node.args[2].start + (node.args[2].rows > 1 ? r : 0)];
          o = u.logistic();
          if (d != nullptr) MMap(d + r * n, n) = (ub - lb) * o * (1.0 - o);
          o = lb + (ub - lb) * o;
        }
      }
      return;
    }
    case OpCode::kLogJacLU: {
      const Operand& a = node.args[0];
      MMap o(out, n);
      o.setZero();
      for (int r = 0; r < a.rows; ++r) {
        const CMap u(s.Row(a.start + r), n);
        o -= u.abs() + 2.0 * (-u.abs()).exp().log1p();  // softplus(u) + softplus(-u)
        if (partials) MMap(s.PartialRow(node.partial[0] + r), n) = 1.0 - 2.0 * u.logistic();
      }
      return;
    }
    case OpCode::kCheck: {
      const Operand& v = node.args[0];
      for (int r = 0; r < v.rows; ++r) {
        const CMap x(s.Row(v.start + r), n);
        const bool has_lo = node.args[1].rows > 0, has_hi = node.args[2].rows > 0;
        const double lo =
            has_lo ? s.tape.consts[node.args[1].start + (node.args[1].rows > 1 ? r : 0)] : 0;
        const double hi =
            has_hi ? s.tape.consts[node.args[2].start + (node.args[2].rows > 1 ? r : 0)] : 0;
        const bool ok = (!has_lo || (x >= lo).all()) && (!has_hi || (x <= hi).all());
        if (ok && !x.isNaN().any()) continue;
        for (int j = 0; j < n; ++j) {
          if ((has_lo && !(x[j] >= lo)) || (has_hi && !(x[j] <= hi)) || std::isnan(x[j])) {
            s.bad[j] = 1;
            *any_bad = true;
            RecordError(error, node.aux, r, j, x[j]);
          }
        }
      }
      return;
    }
  }
}

// adj[arg] += contribution, where the contribution to row r of the node is c_r (rows x n,
// row-major) and arg has rows == node rows or one row (broadcast: the contributions add up).
template <class C>
void AddToArg(const Sweep& s, const Operand& a, int rows, const C& c) {
  if (a.is_const || a.rows == 0) return;
  if (a.rows == rows) {
    MBlock(s.AdjRow(a.start), rows, s.n).array() += c;
  } else {
    Eigen::Map<Eigen::RowVectorXd>(s.AdjRow(a.start), s.n).array() += c.colwise().sum();
  }
}

void BackwardNode(const Sweep& s, const Node& node) {
  const int n = s.n;
  switch (node.op) {
    case OpCode::kUnary:
    case OpCode::kLower:
    case OpCode::kUpper:
    case OpCode::kLowerUpper: {
      const CBlock g(s.AdjRow(node.out), node.rows, n);
      const CBlock p(s.PartialRow(node.partial[0]), node.rows, n);
      AddToArg(s, node.args[0], node.rows, g.array() * p.array());
      return;
    }
    case OpCode::kBinary: {
      const CBlock g(s.AdjRow(node.out), node.rows, n);
      const BinaryOp op = static_cast<BinaryOp>(node.sub);
      for (int k = 0; k < 2; ++k) {
        const Operand& a = node.args[k];
        if (a.is_const) continue;
        if (node.partial[k] >= 0) {
          const CBlock p(s.PartialRow(node.partial[k]), node.rows, n);
          AddToArg(s, a, node.rows, g.array() * p.array());
        } else if (op == BinaryOp::kSub && k == 1) {
          AddToArg(s, a, node.rows, -g.array());
        } else {
          AddToArg(s, a, node.rows, g.array());
        }
      }
      return;
    }
    case OpCode::kSum: {
      const Operand& a = node.args[0];
      const Eigen::Map<const Eigen::RowVectorXd> g(s.AdjRow(node.out), n);
      MBlock(s.AdjRow(a.start), a.rows, n).rowwise() += g;
      return;
    }
    case OpCode::kLogSumExp:
    case OpCode::kLogJacLU: {
      const Operand& a = node.args[0];
      const Eigen::Map<const Eigen::RowVectorXd> g(s.AdjRow(node.out), n);
      const CBlock p(s.PartialRow(node.partial[0]), a.rows, n);
      MBlock(s.AdjRow(a.start), a.rows, n).array() += p.array().rowwise() * g.array();
      return;
    }
    case OpCode::kDot: {
      const CMap g(s.AdjRow(node.out), n);
      const int len = std::max(node.args[0].rows, node.args[1].rows);
      for (int k = 0; k < 2; ++k) {
        const Operand& a = node.args[k];
        const Operand& other = node.args[1 - k];
        if (a.is_const) continue;
        for (int r = 0; r < len; ++r) {
          bool so;
          const double* po = s.Arg(other, r, &so);
          MMap adj(s.AdjRow(a.start + (a.rows > 1 ? r : 0)), n);
          if (so) {
            adj += *po * g;
          } else {
            adj += CMap(po, n) * g;
          }
        }
      }
      return;
    }
    case OpCode::kMatVec: {
      const Eigen::MatrixXd& m = s.tape.matrices[node.aux];
      MBlock(s.AdjRow(node.args[0].start), m.cols(), n).noalias() +=
          m.transpose() * CBlock(s.AdjRow(node.out), node.rows, n);
      return;
    }
    case OpCode::kGather:
      for (int r = 0; r < node.rows; ++r) {
        const int32_t src = s.tape.gather[node.aux + r];
        if (src >= 0) MMap(s.AdjRow(src), n) += CMap(s.AdjRow(node.out + r), n);
      }
      return;
    case OpCode::kDist: {
      const Eigen::Map<const Eigen::RowVectorXd> g(s.AdjRow(node.out), n);
      const int nargs = 1 + GetDist(static_cast<Dist>(node.sub)).num_params;
      for (int k = 0; k < nargs; ++k) {
        if (node.partial[k] < 0) continue;
        const CBlock p(s.PartialRow(node.partial[k]), node.items, n);
        AddToArg(s, node.args[k], node.items, p.array().rowwise() * g.array());
      }
      return;
    }
    case OpCode::kCheck:
      return;
  }
}

}  // namespace

void TapeWorkspace::Resize(const Tape& tape, int n) {
  if (n == n_) return;
  n_ = n;
  const size_t un = static_cast<size_t>(n);
  values_.assign(static_cast<size_t>(tape.num_rows) * un, 0.0);
  adj_.assign(static_cast<size_t>(tape.num_rows) * un, 0.0);
  partials_.assign(static_cast<size_t>(tape.num_partial_rows) * un, 0.0);
  scratch_.assign(static_cast<size_t>(kScratchRows) * un, 0.0);
  bad_.assign(un, 0.0);
}

const RuntimeError& TapeError(const TapeWorkspace& ws) { return ws.error_; }

std::string ElementName(absl::string_view name, const std::vector<int64_t>& shape, int64_t flat) {
  if (shape.empty()) return std::string(name);
  std::vector<int64_t> idx(shape.size());
  for (size_t i = shape.size(); i-- > 0;) {
    idx[i] = shape[i] > 0 ? flat % shape[i] + 1 : 1;
    flat = shape[i] > 0 ? flat / shape[i] : 0;
  }
  return absl::StrCat(name, "[", absl::StrJoin(idx, ","), "]");
}

std::string FormatRuntimeError(const Tape& tape, const RuntimeError& error) {
  if (!error.set || error.site < 0 || error.site >= static_cast<int32_t>(tape.sites.size())) {
    return "";
  }
  const ErrorSite& site = tape.sites[error.site];
  std::string what;
  if (const DistInfo* info = FindDist(site.what); info != nullptr) {
    if (error.arg == 0) {
      what = absl::StrCat(info->name, ": the variate ", SupportText(info->variate_support));
    } else if (info->dist == Dist::kUniform && error.arg == 2) {
      what = absl::StrCat(info->name, ": 'beta' must be greater than 'alpha'");
    } else {
      what = absl::StrCat(info->name, ": '", info->params[error.arg - 1], "' ",
                          SupportText(info->param_support[error.arg - 1]));
    }
  } else {
    auto bound = [&](const Operand& b) {
      return b.rows == 0 ? std::string("none")
                         : absl::StrCat(tape.consts[b.start + (b.rows > 1 ? error.arg : 0)]);
    };
    what = absl::StrCat("transformed parameter '", ElementName(site.what, site.shape, error.arg),
                        "' must be within its bounds (lower ", bound(site.lower), ", upper ",
                        bound(site.upper), ")");
  }
  return absl::StrCat(site.where.prefix, what, ", found ", error.value, " (batch column ",
                      error.column, ")", site.where.suffix);
}

void TapeForward(const Tape& tape, const Matrix& z, bool partials, TapeWorkspace* ws,
                 RowVector* log_p) {
  const int n = static_cast<int>(z.cols());
  ws->Resize(tape, n);
  ws->error_ = RuntimeError{};
  if (ws->any_bad_) std::fill(ws->bad_.begin(), ws->bad_.end(), 0.0);
  ws->any_bad_ = false;
  const Sweep s{tape,
                n,
                ws->values_.data(),
                ws->adj_.data(),
                ws->partials_.data(),
                ws->scratch_.data(),
                ws->bad_.data()};
  if (tape.dim > 0) MBlock(s.values, tape.dim, n) = z;
  for (const Node& node : tape.nodes) ForwardNode(s, node, partials, &ws->error_, &ws->any_bad_);
  log_p->setConstant(tape.target_const);
  for (const Operand& t : tape.target) {
    log_p->array() += CBlock(s.Row(t.start), t.rows, n).colwise().sum().array();
  }
  if (ws->any_bad_) {
    for (int j = 0; j < n; ++j) {
      if (s.bad[j] != 0) (*log_p)[j] = -kInf;
    }
  }
}

void TapeBackward(const Tape& tape, TapeWorkspace* ws, Matrix* grad) {
  const int n = ws->n_;
  const Sweep s{tape,
                n,
                ws->values_.data(),
                ws->adj_.data(),
                ws->partials_.data(),
                ws->scratch_.data(),
                ws->bad_.data()};
  std::fill(ws->adj_.begin(), ws->adj_.end(), 0.0);
  for (const Operand& t : tape.target) MBlock(s.AdjRow(t.start), t.rows, n).array() += 1.0;
  for (auto it = tape.nodes.rbegin(); it != tape.nodes.rend(); ++it) BackwardNode(s, *it);
  if (tape.dim > 0) *grad = CBlock(s.adj, tape.dim, n);
  if (ws->any_bad_) {
    for (int j = 0; j < n; ++j) {
      if (s.bad[j] != 0) grad->col(j).setZero();
    }
  }
}

}  // namespace flowvi::lang
