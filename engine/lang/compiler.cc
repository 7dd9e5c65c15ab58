#include "engine/lang/compiler.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "engine/lang/builtins.h"
#include "engine/lang/kernels.h"

namespace flowvi::lang {
namespace {

#define LANG_RETURN_IF_ERROR(expr)                 \
  do {                                             \
    absl::Status status_macro_ = (expr);           \
    if (!status_macro_.ok()) return status_macro_; \
  } while (0)

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int64_t kIntMax = 2147483647;
constexpr int64_t kIntMin = -2147483647 - 1;

// A value while compiling: an int-based value holds `ints`; a real-based value holds `reals`
// (constants) and, when some element depends on the parameters, `rows` (per element a tape
// row, or -1 for the constant in reals). Elements are flattened row-major over `shape`: the
// array sizes, then the vector length or the matrix rows and columns (scalars: empty shape).
struct Value {
  Type type;
  std::vector<int64_t> shape;
  std::vector<int64_t> ints;
  AlignedDoubles reals;  // Eigen folds constants through Maps of it
  std::vector<int32_t> rows;

  int64_t size() const {
    return type.base == Base::kInt ? static_cast<int64_t>(ints.size())
                                   : static_cast<int64_t>(reals.size());
  }
  bool symbolic() const { return !rows.empty(); }
  bool is_symbolic(int64_t i) const { return !rows.empty() && rows[i] >= 0; }
  double real(int64_t i) const {
    return type.base == Base::kInt ? static_cast<double>(ints[i]) : reals[i];
  }
};

Value IntValue(int64_t v) {
  Value x;
  x.type = IntType();
  x.ints = {v};
  return x;
}

Value RealValue(double v) {
  Value x;
  x.type = RealType();
  x.reals = {v};
  return x;
}

void ToReal(Value* v) {
  if (v->type.base != Base::kInt) return;
  v->reals.assign(v->ints.begin(), v->ints.end());
  v->ints.clear();
  v->type.base = Base::kReal;
}

// "vector[3]", "matrix[2, 3]", "array[4] real", "real".
std::string ShapeText(const Value& v) {
  const Type t = v.type;
  std::vector<int64_t> arr(v.shape.begin(),
                           v.shape.begin() + std::min<size_t>(t.dims, v.shape.size()));
  std::vector<int64_t> rest(v.shape.begin() + arr.size(), v.shape.end());
  std::string base = TypeName({t.base, 0});
  if (!rest.empty()) base = absl::StrCat(base, "[", absl::StrJoin(rest, ", "), "]");
  if (arr.empty()) return base;
  return absl::StrCat("array[", absl::StrJoin(arr, ", "), "] ", base);
}

std::string DataShapeText(const std::vector<int64_t>& shape) {
  if (shape.empty()) return "a single number";
  if (shape.size() == 1) return absl::StrCat("an array of ", shape[0], " numbers");
  return absl::StrCat("a ", absl::StrJoin(shape, " x "), " array of numbers");
}

// Element i of a bound: a scalar, or a constant of the variable's shape.
double BoundAt(const Value& bound, int64_t i) {
  return bound.reals[bound.reals.size() == 1 ? 0 : i];
}

// a * b for non-negative counts, saturating at 2^62 (far above every limit).
int64_t SatMul(int64_t a, int64_t b) {
  constexpr int64_t kCap = int64_t{1} << 62;
  if (a == 0 || b == 0) return 0;
  return a > kCap / b ? kCap : a * b;
}

std::string Num(double x) { return absl::StrFormat("%.17g", x); }
std::string ShortNum(double x) { return absl::StrFormat("%g", x); }

class Compiler {
 public:
  Compiler(absl::string_view source, const Program& program, const std::vector<SlotInfo>& slots,
           const DataMap& data, const ModelLimits& limits)
      : source_(source),
        program_(program),
        slots_(slots),
        data_(data),
        limits_(limits),
        values_(slots.size()),
        tape_(std::make_shared<Tape>()) {}

  absl::StatusOr<CompiledProgram> Run() {
    for (const StmtPtr& s : program_.block(BlockKind::kData).stmts) {
      LANG_RETURN_IF_ERROR(BindData(*s->decl));
    }
    LANG_RETURN_IF_ERROR(RunBlock(BlockKind::kTransformedData));
    LANG_RETURN_IF_ERROR(Parameters());
    LANG_RETURN_IF_ERROR(RunBlock(BlockKind::kTransformedParameters));
    LANG_RETURN_IF_ERROR(RunBlock(BlockKind::kModel));
    Finalize();
    out_.tape = std::move(tape_);
    return std::move(out_);
  }

 private:
  // ---- Errors and limits ----------------------------------------------------------------------

  absl::Status Err(SourceLoc loc, absl::string_view message) const {
    return SourceError(source_, loc, message);
  }

  absl::Status LimitErr(SourceLoc loc, absl::string_view what, absl::string_view field,
                        int64_t limit) const {
    return SourceLimitError(source_, loc,
                            absl::StrCat(what, ": exceeds ModelLimits::", field, " (", limit, ")"));
  }

  absl::Status Work(int64_t units, SourceLoc loc) {
    work_ += std::max<int64_t>(units, 1);
    if (work_ > limits_.max_compile_work) {
      return LimitErr(loc, "too much work while compiling (loops are unrolled at compile time)",
                      "max_compile_work", limits_.max_compile_work);
    }
    return absl::OkStatus();
  }

  absl::Status CheckElements(int64_t count, SourceLoc loc) const {
    if (count > limits_.max_value_elements) {
      return LimitErr(loc, absl::StrCat("a value of ", count, " elements"), "max_value_elements",
                      limits_.max_value_elements);
    }
    return absl::OkStatus();
  }

  // ---- Tape building --------------------------------------------------------------------------

  absl::StatusOr<int32_t> NewRows(int64_t count, SourceLoc loc) {
    if (tape_->num_rows + count > limits_.max_tape_rows) {
      return LimitErr(loc, "the compiled tape is too large", "max_tape_rows",
                      limits_.max_tape_rows);
    }
    const int32_t start = tape_->num_rows;
    tape_->num_rows += static_cast<int32_t>(count);
    return start;
  }

  // Appends `node` with `rows` new output rows; returns the first. Rows are allocated here, in
  // node order, which Finalize relies on.
  absl::StatusOr<int32_t> Emit(Node node, int64_t rows, SourceLoc loc) {
    if (static_cast<int64_t>(tape_->nodes.size()) >= limits_.max_tape_nodes) {
      return LimitErr(loc, "the compiled tape has too many nodes", "max_tape_nodes",
                      limits_.max_tape_nodes);
    }
    absl::StatusOr<int32_t> start = NewRows(rows, loc);
    if (!start.ok()) return start.status();
    node.out = *start;
    node.rows = static_cast<int32_t>(rows);
    tape_->nodes.push_back(node);
    return *start;
  }

  absl::Status CheckConsts(int64_t more, SourceLoc loc) const {
    if (static_cast<int64_t>(tape_->consts.size()) + matrix_elements_ + more >
        limits_.max_tape_constants) {
      return LimitErr(loc, "the compiled tape holds too many constants", "max_tape_constants",
                      limits_.max_tape_constants);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int32_t> AddConst(double x, SourceLoc loc) {
    uint64_t bits;
    std::memcpy(&bits, &x, sizeof(bits));
    auto it = const_index_.find(bits);
    if (it != const_index_.end()) return it->second;
    LANG_RETURN_IF_ERROR(CheckConsts(1, loc));
    const int32_t i = static_cast<int32_t>(tape_->consts.size());
    tape_->consts.push_back(x);
    const_index_.emplace(bits, i);
    return i;
  }

  // An operand holding all elements of v, in order: constants, a block of rows, or a gather.
  absl::StatusOr<Operand> ToOperand(const Value& v, SourceLoc loc) {
    const int64_t n = v.size();
    Operand op;
    op.rows = static_cast<int32_t>(n);
    if (!v.symbolic()) {
      op.is_const = true;
      if (n == 1) {
        absl::StatusOr<int32_t> i = AddConst(v.real(0), loc);
        if (!i.ok()) return i.status();
        op.start = *i;
        return op;
      }
      LANG_RETURN_IF_ERROR(CheckConsts(n, loc));
      op.start = static_cast<int32_t>(tape_->consts.size());
      for (int64_t i = 0; i < n; ++i) tape_->consts.push_back(v.real(i));
      return op;
    }
    bool contiguous = v.rows[0] >= 0;
    for (int64_t i = 1; i < n && contiguous; ++i) contiguous = v.rows[i] == v.rows[0] + i;
    if (contiguous) {
      op.start = v.rows[0];
      return op;
    }
    Node node;
    node.op = OpCode::kGather;
    node.aux = static_cast<int32_t>(tape_->gather.size());
    for (int64_t i = 0; i < n; ++i) {
      if (v.rows[i] >= 0) {
        tape_->gather.push_back(v.rows[i]);
      } else {
        absl::StatusOr<int32_t> c = AddConst(v.reals[i], loc);
        if (!c.ok()) return c.status();
        tape_->gather.push_back(-1 - *c);
      }
    }
    absl::StatusOr<int32_t> start = Emit(node, n, loc);
    if (!start.ok()) return start.status();
    op.start = *start;
    return op;
  }

  static Value NodeValue(Type type, std::vector<int64_t> shape, int32_t start, int64_t n) {
    Value v;
    v.type = type;
    v.shape = std::move(shape);
    v.reals.assign(n, kNaN);
    v.rows.resize(n);
    for (int64_t i = 0; i < n; ++i) v.rows[i] = start + static_cast<int32_t>(i);
    return v;
  }

  // Makes a symbolic value's rows one contiguous block (so that later uses need no gather).
  absl::Status Normalize(Value* v, SourceLoc loc) {
    if (!v->symbolic() || v->size() <= 1) return absl::OkStatus();
    bool contiguous = v->rows[0] >= 0;
    for (int64_t i = 1; i < v->size() && contiguous; ++i) contiguous = v->rows[i] == v->rows[0] + i;
    if (contiguous) return absl::OkStatus();
    absl::StatusOr<Operand> op = ToOperand(*v, loc);
    if (!op.ok()) return op.status();
    for (int64_t i = 0; i < v->size(); ++i) v->rows[i] = op->start + static_cast<int32_t>(i);
    return absl::OkStatus();
  }

  // ---- Declarations ---------------------------------------------------------------------------

  absl::StatusOr<int64_t> EvalSize(const Expr& e) {
    Value v;
    LANG_RETURN_IF_ERROR(Eval(e, &v));
    const int64_t n = v.ints[0];
    if (n < 0) return Err(e.loc, absl::StrCat("size must be non-negative, found ", n));
    return n;
  }

  absl::StatusOr<std::vector<int64_t>> DeclShape(const DeclType& t) {
    std::vector<int64_t> shape;
    int64_t count = 1;
    auto add = [&](const ExprPtr& e) -> absl::Status {
      absl::StatusOr<int64_t> n = EvalSize(*e);
      if (!n.ok()) return n.status();
      shape.push_back(*n);
      count = SatMul(count, *n);
      return CheckElements(*n, e->loc);
    };
    for (const ExprPtr& e : t.array_sizes) LANG_RETURN_IF_ERROR(add(e));
    for (const ExprPtr& e : t.sizes) LANG_RETURN_IF_ERROR(add(e));
    LANG_RETURN_IF_ERROR(CheckElements(count, t.loc));
    return shape;
  }

  static int64_t Count(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }

  // A declared variable before assignment: NaN reals, the smallest int for ints (as Stan).
  static Value Uninitialized(Type type, std::vector<int64_t> shape) {
    Value v;
    v.type = type;
    const int64_t n = Count(shape);
    v.shape = std::move(shape);
    if (type.base == Base::kInt) {
      v.ints.assign(n, kIntMin);
    } else {
      v.reals.assign(n, kNaN);
    }
    return v;
  }

  // A bound: a scalar, or a constant of the variable's `shape` (elementwise bounds).
  absl::Status EvalBound(const Expr& e, const std::vector<int64_t>& shape, Value* out) {
    LANG_RETURN_IF_ERROR(Eval(e, out));
    ToReal(out);
    if (out->symbolic()) {
      return Err(e.loc,
                 "bounds must not depend on parameters (expected data, transformed data "
                 "or constants)");
    }
    if (!out->type.is_scalar() && out->shape != shape) {
      return Err(e.loc,
                 absl::StrCat("dimension mismatch: the bound is a ", ShapeText(*out),
                              " but the variable has shape [", absl::StrJoin(shape, ", "), "]"));
    }
    return absl::OkStatus();
  }

  // Checks constant elements of a block variable against its bounds (data, transformed data,
  // transformed parameters); symbolic elements get a run-time check node.
  absl::Status CheckBounds(const VarDecl& d, const char* kind) {
    const DeclType& t = d.type;
    if (t.lower == nullptr && t.upper == nullptr) return absl::OkStatus();
    const Value& v = values_[d.slot];
    Value lo, hi;
    if (t.lower != nullptr) LANG_RETURN_IF_ERROR(EvalBound(*t.lower, v.shape, &lo));
    if (t.upper != nullptr) LANG_RETURN_IF_ERROR(EvalBound(*t.upper, v.shape, &hi));
    for (int64_t i = 0; i < v.size(); ++i) {
      if (v.is_symbolic(i)) continue;
      const double x = v.real(i);
      const bool below = t.lower != nullptr && !(x >= BoundAt(lo, i));
      const bool above = t.upper != nullptr && !(x <= BoundAt(hi, i));
      if (below || above) {
        return Err(
            d.loc,
            absl::StrCat(kind, " '", ElementName(d.name, v.shape, i), "' is ", ShortNum(x), ", ",
                         below ? absl::StrCat("below its lower bound ", ShortNum(BoundAt(lo, i)))
                               : absl::StrCat("above its upper bound ", ShortNum(BoundAt(hi, i)))));
      }
    }
    if (!v.symbolic()) return absl::OkStatus();
    // Run-time check of the whole variable.
    absl::StatusOr<Operand> x = ToOperand(v, d.loc);
    if (!x.ok()) return x.status();
    Node node;
    node.op = OpCode::kCheck;
    node.args[0] = *x;
    ErrorSite site;
    site.where = Lines().Split(d.loc);
    site.what = d.name;
    site.shape = v.shape;
    if (t.lower != nullptr) {
      absl::StatusOr<Operand> o = ToOperand(lo, d.loc);
      if (!o.ok()) return o.status();
      node.args[1] = site.lower = *o;
    }
    if (t.upper != nullptr) {
      absl::StatusOr<Operand> o = ToOperand(hi, d.loc);
      if (!o.ok()) return o.status();
      node.args[2] = site.upper = *o;
    }
    node.aux = static_cast<int32_t>(tape_->sites.size());
    tape_->sites.push_back(std::move(site));
    return Emit(node, 0, d.loc).status();
  }

  absl::Status BindData(const VarDecl& d) {
    absl::StatusOr<std::vector<int64_t>> shape = DeclShape(d.type);
    if (!shape.ok()) return shape.status();
    const Type type = d.type.type();
    Value decl_shape;  // type and shape only, for messages
    decl_shape.type = type;
    decl_shape.shape = *shape;
    auto it = data_.find(d.name);
    if (it == data_.end()) {
      return Err(d.loc, absl::StrCat("missing data: expected a member \"", d.name,
                                     "\" in the data JSON (", ShapeText(decl_shape), ")"));
    }
    const DataValue& dv = it->second;
    const std::string where = absl::StrCat(" (data ", dv.loc.line, ":", dv.loc.col, ")");
    if (!dv.error.empty()) {
      return Err(d.loc, absl::StrCat("data for '", d.name,
                                     "' must be a number or a rectangular "
                                     "array of numbers, found ",
                                     dv.error, where));
    }
    const int64_t count = Count(*shape);
    const bool shapes_match = dv.shape == *shape || (count == 0 && dv.reals.empty());
    if (!shapes_match) {
      return Err(d.loc,
                 absl::StrCat("data for '", d.name, "' is ", DataShapeText(dv.shape), ": expected ",
                              DataShapeText(*shape), " for ", ShapeText(decl_shape), where));
    }
    LANG_RETURN_IF_ERROR(Work(count, d.loc));
    Value v;
    v.type = type;
    v.shape = *shape;
    if (type.base == Base::kInt) {
      if (!dv.all_int) {
        // An integer literal too large for int64 reads as a real: it is out of range.
        int64_t bad = dv.first_real;
        for (int64_t i = 0; bad < 0 && i < count; ++i) {
          if (std::abs(dv.reals[i]) > static_cast<double>(kIntMax)) bad = i;
        }
        bad = std::max<int64_t>(bad, 0);
        const double x = dv.reals[bad];
        if (dv.first_real < 0) {
          return Err(d.loc, absl::StrCat("data for '", ElementName(d.name, *shape, bad), "' is ",
                                         Num(x), ": out of the range of int (32-bit)", where));
        }
        return Err(d.loc, absl::StrCat("data for '", ElementName(d.name, *shape, bad),
                                       "' must be an integer (written without '.' or an "
                                       "exponent), found ",
                                       Num(x), where));
      }
      for (int64_t i = 0; i < count; ++i) {
        if (dv.ints[i] > kIntMax || dv.ints[i] < kIntMin) {
          return Err(d.loc, absl::StrCat("data for '", ElementName(d.name, *shape, i), "' is ",
                                         dv.ints[i], ": out of the range of int (32-bit)", where));
        }
      }
      v.ints.assign(dv.ints.begin(), dv.ints.begin() + count);
    } else {
      v.reals.assign(dv.reals.begin(), dv.reals.begin() + count);
    }
    values_[d.slot] = std::move(v);
    return CheckBounds(d, "data");
  }

  absl::Status ExecDecl(const VarDecl& d) {
    absl::StatusOr<std::vector<int64_t>> shape = DeclShape(d.type);
    if (!shape.ok()) return shape.status();
    LANG_RETURN_IF_ERROR(Work(Count(*shape), d.loc));
    Value v = Uninitialized(d.type.type(), *shape);
    if (d.init != nullptr) {
      Value init;
      LANG_RETURN_IF_ERROR(Eval(*d.init, &init));
      LANG_RETURN_IF_ERROR(StoreWhole(&v, std::move(init), d.name, d.init->loc));
    }
    values_[d.slot] = std::move(v);
    return absl::OkStatus();
  }

  // *var = rhs, with int -> real promotion and a size check.
  absl::Status StoreWhole(Value* var, Value rhs, absl::string_view name, SourceLoc loc) {
    if (var->type.base != Base::kInt) ToReal(&rhs);
    if (rhs.shape != var->shape) {
      return Err(loc, absl::StrCat("dimension mismatch: cannot assign a ", ShapeText(rhs), " to '",
                                   name, "' of shape ", ShapeText(*var)));
    }
    rhs.type = var->type;
    *var = std::move(rhs);
    return absl::OkStatus();
  }

  // ---- Parameters -----------------------------------------------------------------------------

  absl::Status Parameters() {
    const Block& block = program_.block(BlockKind::kParameters);
    std::vector<std::vector<int64_t>> shapes;
    int64_t dim = 0;
    for (const StmtPtr& s : block.stmts) {
      absl::StatusOr<std::vector<int64_t>> shape = DeclShape(s->decl->type);
      if (!shape.ok()) return shape.status();
      dim += Count(*shape);
      if (dim > limits_.max_parameters) {
        return LimitErr(s->decl->loc, absl::StrCat("the model has ", dim, " or more parameters"),
                        "max_parameters", limits_.max_parameters);
      }
      shapes.push_back(*std::move(shape));
    }
    if (dim > 0) {
      absl::StatusOr<int32_t> start = NewRows(dim, block.loc);
      if (!start.ok()) return start.status();
    }
    tape_->dim = static_cast<int32_t>(dim);
    int32_t offset = 0;
    for (size_t p = 0; p < block.stmts.size(); ++p) {
      const VarDecl& d = *block.stmts[p]->decl;
      const std::vector<int64_t>& shape = shapes[p];
      const int64_t count = Count(shape);
      Value lo, hi;
      bool has_lo = false, has_hi = false;
      if (d.type.lower != nullptr) {
        LANG_RETURN_IF_ERROR(EvalBound(*d.type.lower, shape, &lo));
        LANG_RETURN_IF_ERROR(BoundKind(lo, -kInf, d.type.lower->loc, &has_lo));
      }
      if (d.type.upper != nullptr) {
        LANG_RETURN_IF_ERROR(EvalBound(*d.type.upper, shape, &hi));
        LANG_RETURN_IF_ERROR(BoundKind(hi, kInf, d.type.upper->loc, &has_hi));
      }
      if (has_lo && has_hi) {
        for (int64_t i = 0; i < count; ++i) {
          if (!(BoundAt(lo, i) < BoundAt(hi, i))) {
            return Err(d.type.bounds_loc,
                       absl::StrCat("lower bound ", ShortNum(BoundAt(lo, i)),
                                    " must be below upper bound ", ShortNum(BoundAt(hi, i)),
                                    " for '", ElementName(d.name, shape, i), "'"));
          }
        }
      }
      ParamTransform::Kind kind = has_lo && has_hi ? ParamTransform::Kind::kLowerUpper
                                  : has_lo         ? ParamTransform::Kind::kLower
                                  : has_hi         ? ParamTransform::Kind::kUpper
                                                   : ParamTransform::Kind::kNone;
      for (int64_t i = 0; i < count; ++i) {
        ParamTransform tr;
        tr.kind = kind;
        if (has_lo) tr.lower = BoundAt(lo, i);
        if (has_hi) tr.upper = BoundAt(hi, i);
        const std::string name = ElementName(d.name, shape, i);
        out_.names.push_back(name);
        out_.unconstrained_names.push_back(UnconstrainedName(name, tr));
        out_.transforms.push_back(tr);
      }
      const Operand u{offset, static_cast<int32_t>(count), false};
      const Type type = d.type.type();
      if (count == 0 || kind == ParamTransform::Kind::kNone) {
        values_[d.slot] = NodeValue(type, shape, offset, count);
        offset += static_cast<int32_t>(count);
        continue;
      }
      Node node;
      node.args[0] = u;
      node.partial[0] = 0;
      if (has_lo) {
        absl::StatusOr<Operand> o = ToOperand(lo, d.loc);
        if (!o.ok()) return o.status();
        node.args[1] = *o;
      }
      if (has_hi) {
        absl::StatusOr<Operand> o = ToOperand(hi, d.loc);
        if (!o.ok()) return o.status();
        node.args[2] = *o;
      }
      node.op = kind == ParamTransform::Kind::kLower   ? OpCode::kLower
                : kind == ParamTransform::Kind::kUpper ? OpCode::kUpper
                                                       : OpCode::kLowerUpper;
      absl::StatusOr<int32_t> start = Emit(node, count, d.loc);
      if (!start.ok()) return start.status();
      values_[d.slot] = NodeValue(type, shape, *start, count);
      // The log-Jacobian of the transform: u for exp transforms; for the logistic one,
      // log(upper - lower) - softplus(u) - softplus(-u).
      if (kind != ParamTransform::Kind::kLowerUpper) {
        tape_->target.push_back(u);
      } else {
        for (int64_t i = 0; i < count; ++i)
          tape_->target_const += std::log(BoundAt(hi, i) - BoundAt(lo, i));
        Node j;
        j.op = OpCode::kLogJacLU;
        j.args[0] = u;
        j.partial[0] = 0;
        absl::StatusOr<int32_t> jac = Emit(j, 1, d.loc);
        if (!jac.ok()) return jac.status();
        tape_->target.push_back(Operand{*jac, 1, false});
      }
      offset += static_cast<int32_t>(count);
    }
    return absl::OkStatus();
  }

  // Whether a bound is in effect: all finite, or all equal to `absent` (+-inf: no bound).
  absl::Status BoundKind(const Value& b, double absent, SourceLoc loc, bool* present) {
    int finite = 0;
    for (double x : b.reals) {
      if (std::isnan(x)) return Err(loc, "bound is NaN");
      if (std::isfinite(x)) {
        ++finite;
      } else if (x != absent) {
        return Err(loc, absl::StrCat("bound is ", ShortNum(x),
                                     ": a lower bound may be finite or "
                                     "-inf, an upper bound finite or +inf"));
      }
    }
    if (finite != 0 && finite != static_cast<int>(b.reals.size())) {
      return Err(loc, "bounds mixing finite and infinite values are not supported");
    }
    *present = finite > 0;
    return absl::OkStatus();
  }

  static std::string UnconstrainedName(const std::string& name, const ParamTransform& t) {
    switch (t.kind) {
      case ParamTransform::Kind::kNone:
        return name;
      case ParamTransform::Kind::kLower:
        return t.lower == 0 ? absl::StrCat("log(", name, ")")
                            : absl::StrCat("log(", name, " - ", ShortNum(t.lower), ")");
      case ParamTransform::Kind::kUpper:
        return absl::StrCat("log(", ShortNum(t.upper), " - ", name, ")");
      case ParamTransform::Kind::kLowerUpper:
        if (t.lower == 0 && t.upper == 1) return absl::StrCat("logit(", name, ")");
        return absl::StrCat("logit((", name, " - ", ShortNum(t.lower), ") / ",
                            ShortNum(t.upper - t.lower), ")");
    }
    return name;
  }

  // ---- Statements -----------------------------------------------------------------------------

  absl::Status RunBlock(BlockKind kind) {
    const Block& block = program_.block(kind);
    for (const StmtPtr& s : block.stmts) LANG_RETURN_IF_ERROR(Exec(*s));
    if (kind == BlockKind::kTransformedData || kind == BlockKind::kTransformedParameters) {
      for (const StmtPtr& s : block.stmts) {
        if (s->kind != StmtKind::kDecl) continue;
        LANG_RETURN_IF_ERROR(CheckBounds(*s->decl, kind == BlockKind::kTransformedData
                                                       ? "transformed data"
                                                       : "transformed parameter"));
      }
    }
    return absl::OkStatus();
  }

  enum class Ctl { kNone, kBreak, kContinue };

  absl::Status Exec(const Stmt& s) {
    LANG_RETURN_IF_ERROR(Work(1, s.loc));
    switch (s.kind) {
      case StmtKind::kDecl:
        return ExecDecl(*s.decl);
      case StmtKind::kAssign:
        return ExecAssign(s);
      case StmtKind::kTargetPlus: {
        Value v;
        LANG_RETURN_IF_ERROR(Eval(*s.expr, &v));
        return AddTarget(v, s.loc);
      }
      case StmtKind::kTilde: {
        std::vector<const Expr*> args;
        for (const ExprPtr& a : s.args) args.push_back(a.get());
        Value lp;
        LANG_RETURN_IF_ERROR(EvalDist(static_cast<Dist>(s.dist), *s.expr, args, s.name_loc,
                                      /*constant_to_target=*/true, &lp));
        return AddTarget(lp, s.loc);
      }
      case StmtKind::kFor: {
        Value lo, hi;
        LANG_RETURN_IF_ERROR(Eval(*s.expr, &lo));
        LANG_RETURN_IF_ERROR(Eval(*s.expr2, &hi));
        for (int64_t i = lo.ints[0]; i <= hi.ints[0]; ++i) {
          LANG_RETURN_IF_ERROR(Work(1, s.loc));
          values_[s.slot] = IntValue(i);
          LANG_RETURN_IF_ERROR(Exec(*s.body[0]));
          if (ctl_ == Ctl::kBreak) {
            ctl_ = Ctl::kNone;
            break;
          }
          ctl_ = Ctl::kNone;
        }
        return absl::OkStatus();
      }
      case StmtKind::kForEach: {
        Value c;
        LANG_RETURN_IF_ERROR(Eval(*s.expr, &c));
        const bool array = c.type.dims > 0;
        const int64_t count = array ? (c.shape.empty() ? 0 : c.shape[0]) : c.size();
        const int64_t stride = count == 0 ? 0 : c.size() / count;
        for (int64_t i = 0; i < count; ++i) {
          LANG_RETURN_IF_ERROR(Work(stride, s.loc));
          Value e;
          e.type = slots_[s.slot].type;
          if (array) e.shape.assign(c.shape.begin() + 1, c.shape.end());
          if (c.type.base == Base::kInt) {
            e.ints.assign(c.ints.begin() + i * stride, c.ints.begin() + (i + 1) * stride);
          } else {
            e.reals.assign(c.reals.begin() + i * stride, c.reals.begin() + (i + 1) * stride);
            if (c.symbolic()) {
              e.rows.assign(c.rows.begin() + i * stride, c.rows.begin() + (i + 1) * stride);
            }
          }
          values_[s.slot] = std::move(e);
          LANG_RETURN_IF_ERROR(Exec(*s.body[0]));
          if (ctl_ == Ctl::kBreak) {
            ctl_ = Ctl::kNone;
            break;
          }
          ctl_ = Ctl::kNone;
        }
        return absl::OkStatus();
      }
      case StmtKind::kIf: {
        bool truth = false;
        LANG_RETURN_IF_ERROR(Condition(*s.expr, &truth));
        if (truth) return Exec(*s.body[0]);
        if (s.body.size() > 1) return Exec(*s.body[1]);
        return absl::OkStatus();
      }
      case StmtKind::kBlock:
        for (const StmtPtr& c : s.body) {
          LANG_RETURN_IF_ERROR(Exec(*c));
          if (ctl_ != Ctl::kNone) break;
        }
        return absl::OkStatus();
      case StmtKind::kBreak:
        ctl_ = Ctl::kBreak;
        return absl::OkStatus();
      case StmtKind::kContinue:
        ctl_ = Ctl::kContinue;
        return absl::OkStatus();
      case StmtKind::kEmpty:
        return absl::OkStatus();
    }
    return absl::OkStatus();
  }

  absl::Status Condition(const Expr& e, bool* truth) {
    Value v;
    LANG_RETURN_IF_ERROR(Eval(e, &v));
    return Truth(v, e.loc, truth);
  }

  absl::Status Truth(const Value& v, SourceLoc loc, bool* truth) const {
    if (v.symbolic()) {
      return Err(loc,
                 "condition depends on parameters: conditions must depend on data only "
                 "(they are resolved when compiling; the compiled model has no branches)");
    }
    *truth = v.real(0) != 0;
    return absl::OkStatus();
  }

  absl::Status ExecAssign(const Stmt& s) {
    const Expr& lhs = *s.lhs;
    const Expr& var_expr = lhs.kind == ExprKind::kVar ? lhs : *lhs.args[0];
    Value& var = values_[var_expr.slot];
    const std::string& name = var_expr.name;
    Value rhs;
    LANG_RETURN_IF_ERROR(Eval(*s.expr, &rhs));
    if (lhs.kind == ExprKind::kVar) {
      if (s.assign_op != AssignOp::kSet) {
        Value current = var;
        LANG_RETURN_IF_ERROR(Compound(s, std::move(current), std::move(rhs), &rhs));
      }
      LANG_RETURN_IF_ERROR(Work(rhs.size(), s.loc));
      return StoreWhole(&var, std::move(rhs), name, s.loc);
    }
    std::vector<int64_t> positions, shape;
    LANG_RETURN_IF_ERROR(Select(var, lhs, name, &positions, &shape));
    if (s.assign_op != AssignOp::kSet) {
      Value current = Pick(var, lhs.type, shape, positions);
      LANG_RETURN_IF_ERROR(Compound(s, std::move(current), std::move(rhs), &rhs));
    }
    if (var.type.base != Base::kInt) ToReal(&rhs);
    if (rhs.shape != shape) {
      Value target = Uninitialized(lhs.type, shape);
      return Err(s.loc, absl::StrCat("dimension mismatch: cannot assign a ", ShapeText(rhs),
                                     " to '", name, "[...]' of shape ", ShapeText(target)));
    }
    LANG_RETURN_IF_ERROR(Work(static_cast<int64_t>(positions.size()), s.loc));
    if (var.type.base == Base::kInt) {
      for (size_t k = 0; k < positions.size(); ++k) var.ints[positions[k]] = rhs.ints[k];
      return absl::OkStatus();
    }
    if (rhs.symbolic() && !var.symbolic()) var.rows.assign(var.reals.size(), -1);
    for (size_t k = 0; k < positions.size(); ++k) {
      var.reals[positions[k]] = rhs.reals[k];
      if (var.symbolic()) var.rows[positions[k]] = rhs.symbolic() ? rhs.rows[k] : -1;
    }
    return absl::OkStatus();
  }

  absl::Status Compound(const Stmt& s, Value current, Value rhs, Value* out) {
    const BinOp op = CompoundOp(s.assign_op);
    Type result = current.type;
    if (current.type.base == Base::kInt && rhs.type.base != Base::kInt) result.base = Base::kReal;
    return Binary(op, std::move(current), std::move(rhs), result, s.loc, out);
  }

  absl::Status AddTarget(const Value& v, SourceLoc loc) {
    LANG_RETURN_IF_ERROR(Work(v.size(), loc));
    if (v.type.base == Base::kInt) {
      for (int64_t x : v.ints) tape_->target_const += static_cast<double>(x);
      return absl::OkStatus();
    }
    for (int64_t i = 0; i < v.size(); ++i) {
      if (!v.is_symbolic(i)) {
        tape_->target_const += v.reals[i];
        continue;
      }
      std::vector<Operand>& t = tape_->target;
      if (!t.empty() && t.back().start + t.back().rows == v.rows[i]) {
        ++t.back().rows;
      } else {
        if (static_cast<int64_t>(t.size()) >= limits_.max_tape_nodes) {
          return LimitErr(loc, "too many separate terms added to the target", "max_tape_nodes",
                          limits_.max_tape_nodes);
        }
        t.push_back(Operand{v.rows[i], 1, false});
      }
    }
    return absl::OkStatus();
  }

  // ---- Expressions ----------------------------------------------------------------------------

  absl::Status Eval(const Expr& e, Value* out) {
    switch (e.kind) {
      case ExprKind::kIntLit:
        *out = IntValue(e.int_value);
        return absl::OkStatus();
      case ExprKind::kRealLit:
        *out = RealValue(e.real_value);
        return absl::OkStatus();
      case ExprKind::kVar: {
        Value& v = values_[e.slot];
        LANG_RETURN_IF_ERROR(Work(v.size(), e.loc));
        LANG_RETURN_IF_ERROR(Normalize(&v, e.loc));
        *out = v;
        return absl::OkStatus();
      }
      case ExprKind::kUnary: {
        Value a;
        LANG_RETURN_IF_ERROR(Eval(*e.args[0], &a));
        switch (e.unop) {
          case UnOp::kPlus:
            *out = std::move(a);
            return absl::OkStatus();
          case UnOp::kNot:
            if (a.symbolic()) {
              return Err(e.loc,
                         "'!' of a value that depends on parameters: logical operators "
                         "apply to data only");
            }
            *out = IntValue(a.real(0) == 0 ? 1 : 0);
            return absl::OkStatus();
          case UnOp::kNeg:
            if (a.type.base == Base::kInt) {
              for (int64_t& x : a.ints) {
                if (x == kIntMin) return Err(e.loc, "integer overflow");
                x = -x;
              }
              *out = std::move(a);
              return absl::OkStatus();
            }
            return Unary(UnaryOp::kNeg, std::move(a), e.loc, out);
        }
        return absl::OkStatus();
      }
      case ExprKind::kBinary:
        return EvalBinary(e, out);
      case ExprKind::kCond: {
        bool truth = false;
        LANG_RETURN_IF_ERROR(Condition(*e.args[0], &truth));
        LANG_RETURN_IF_ERROR(Eval(*e.args[truth ? 1 : 2], out));
        if (e.type.base != Base::kInt) ToReal(out);
        out->type = e.type;
        return absl::OkStatus();
      }
      case ExprKind::kCall:
        return EvalCall(e, out);
      case ExprKind::kIndex:
        return EvalIndex(e, out);
      case ExprKind::kArray:
      case ExprKind::kRowVector: {
        Value result;
        result.type = e.type;
        const bool real = e.type.base != Base::kInt;
        std::vector<int64_t> elem_shape;
        for (size_t i = 0; i < e.args.size(); ++i) {
          Value a;
          LANG_RETURN_IF_ERROR(Eval(*e.args[i], &a));
          if (real) ToReal(&a);
          if (i == 0) {
            elem_shape = a.shape;
          } else if (a.shape != elem_shape) {
            return Err(e.args[i]->loc, absl::StrCat("dimension mismatch: elements of different "
                                                    "sizes in an array expression (",
                                                    ShapeText(a), ")"));
          }
          LANG_RETURN_IF_ERROR(Work(a.size(), e.loc));
          LANG_RETURN_IF_ERROR(CheckElements(result.size() + a.size(), e.loc));
          Append(&result, a);
        }
        result.shape = {static_cast<int64_t>(e.args.size())};
        result.shape.insert(result.shape.end(), elem_shape.begin(), elem_shape.end());
        *out = std::move(result);
        return absl::OkStatus();
      }
      case ExprKind::kTranspose: {
        Value a;
        LANG_RETURN_IF_ERROR(Eval(*e.args[0], &a));
        if (a.type.base == Base::kMatrix) {
          const int64_t r = a.shape[0], c = a.shape[1];
          std::vector<int64_t> perm;
          perm.reserve(a.size());
          for (int64_t j = 0; j < c; ++j) {
            for (int64_t i = 0; i < r; ++i) perm.push_back(i * c + j);
          }
          *out = Pick(a, e.type, {c, r}, perm);
          return absl::OkStatus();
        }
        *out = std::move(a);
        out->type = e.type;
        return absl::OkStatus();
      }
    }
    return absl::OkStatus();
  }

  static void Append(Value* to, const Value& a) {
    if (a.type.base == Base::kInt) {
      to->ints.insert(to->ints.end(), a.ints.begin(), a.ints.end());
      return;
    }
    const size_t before = to->reals.size();
    to->reals.insert(to->reals.end(), a.reals.begin(), a.reals.end());
    if (!a.symbolic() && !to->symbolic()) return;
    to->rows.resize(before, -1);  // constants so far (a no-op when already symbolic)
    if (a.symbolic()) {
      to->rows.insert(to->rows.end(), a.rows.begin(), a.rows.end());
    } else {
      to->rows.insert(to->rows.end(), a.reals.size(), -1);
    }
  }

  // The elements of v at `positions`, as a value of `type` and `shape`.
  static Value Pick(const Value& v, Type type, std::vector<int64_t> shape,
                    const std::vector<int64_t>& positions) {
    Value out;
    out.type = type;
    out.shape = std::move(shape);
    if (v.type.base == Base::kInt) {
      out.ints.reserve(positions.size());
      for (int64_t p : positions) out.ints.push_back(v.ints[p]);
      return out;
    }
    out.reals.reserve(positions.size());
    for (int64_t p : positions) out.reals.push_back(v.reals[p]);
    if (v.symbolic()) {
      bool any = false;
      out.rows.reserve(positions.size());
      for (int64_t p : positions) {
        out.rows.push_back(v.rows[p]);
        any = any || v.rows[p] >= 0;
      }
      if (!any) out.rows.clear();
    }
    return out;
  }

  // The flat positions selected by the indexes of `e` in v, and the selection's shape.
  absl::Status Select(const Value& v, const Expr& e, absl::string_view name,
                      std::vector<int64_t>* positions, std::vector<int64_t>* shape) {
    const size_t m = e.indexes.size();
    std::vector<std::vector<int64_t>> sel(m);
    shape->clear();
    for (size_t i = 0; i < m; ++i) {
      const Index& idx = e.indexes[i];
      const int64_t size = v.shape[i];
      auto check = [&](int64_t k, SourceLoc loc) -> absl::Status {
        if (k < 1 || k > size) {
          return Err(loc, absl::StrCat("index ", k, " out of range for '", name, "'",
                                       m > 1 ? absl::StrCat(" (dimension ", i + 1, ")") : "",
                                       ": expected 1 to ", size));
        }
        return absl::OkStatus();
      };
      if (idx.kind == Index::Kind::kSingle) {
        Value k;
        LANG_RETURN_IF_ERROR(Eval(*idx.lo, &k));
        for (int64_t x : k.ints) LANG_RETURN_IF_ERROR(check(x, idx.lo->loc));
        for (int64_t x : k.ints) sel[i].push_back(x - 1);
        if (idx.multi) shape->push_back(static_cast<int64_t>(k.ints.size()));
      } else {
        int64_t lo = 1, hi = size;
        if (idx.kind == Index::Kind::kRange) {
          if (idx.lo != nullptr) {
            Value a;
            LANG_RETURN_IF_ERROR(Eval(*idx.lo, &a));
            lo = a.ints[0];
          }
          if (idx.hi != nullptr) {
            Value b;
            LANG_RETURN_IF_ERROR(Eval(*idx.hi, &b));
            hi = b.ints[0];
          }
        }
        if (hi >= lo) {
          LANG_RETURN_IF_ERROR(check(lo, idx.loc));
          LANG_RETURN_IF_ERROR(check(hi, idx.loc));
          for (int64_t k = lo; k <= hi; ++k) sel[i].push_back(k - 1);
        }
        shape->push_back(static_cast<int64_t>(sel[i].size()));
      }
    }
    int64_t tail = 1;
    for (size_t i = m; i < v.shape.size(); ++i) {
      tail *= v.shape[i];
      shape->push_back(v.shape[i]);
    }
    int64_t total = tail;
    for (const auto& s : sel) total = SatMul(total, static_cast<int64_t>(s.size()));
    LANG_RETURN_IF_ERROR(CheckElements(total, e.loc));
    LANG_RETURN_IF_ERROR(Work(total, e.loc));
    std::vector<int64_t> stride(m);
    int64_t st = tail;
    for (size_t i = m; i-- > 0;) {
      stride[i] = st;
      st *= v.shape[i];
    }
    positions->clear();
    positions->reserve(total);
    if (total == 0) return absl::OkStatus();
    std::vector<size_t> odo(m, 0);
    while (true) {
      int64_t base = 0;
      for (size_t i = 0; i < m; ++i) base += sel[i][odo[i]] * stride[i];
      for (int64_t t = 0; t < tail; ++t) positions->push_back(base + t);
      size_t i = m;
      while (i > 0) {
        --i;
        if (++odo[i] < sel[i].size()) break;
        odo[i] = 0;
        if (i == 0) return absl::OkStatus();
      }
      if (m == 0) return absl::OkStatus();
    }
  }

  absl::Status EvalIndex(const Expr& e, Value* out) {
    const Expr& base = *e.args[0];
    Value temp;
    const Value* v = &temp;
    std::string name = "value";
    if (base.kind == ExprKind::kVar) {
      v = &values_[base.slot];
      name = base.name;
    } else {
      LANG_RETURN_IF_ERROR(Eval(base, &temp));
    }
    std::vector<int64_t> positions, shape;
    LANG_RETURN_IF_ERROR(Select(*v, e, name, &positions, &shape));
    *out = Pick(*v, e.type, std::move(shape), positions);
    return absl::OkStatus();
  }

  absl::Status EvalBinary(const Expr& e, Value* out) {
    // The left spine (a + b + c + ...) iteratively: it may be long.
    std::vector<const Expr*> spine;
    const Expr* leftmost = &e;
    for (; leftmost->kind == ExprKind::kBinary; leftmost = leftmost->args[0].get()) {
      spine.push_back(leftmost);
    }
    Value acc;
    LANG_RETURN_IF_ERROR(Eval(*leftmost, &acc));
    for (auto it = spine.rbegin(); it != spine.rend(); ++it) {
      const Expr& node = **it;
      Value lhs = std::move(acc);
      if (node.binop == BinOp::kAnd || node.binop == BinOp::kOr) {
        // Short-circuit: the right side is evaluated only when it decides.
        bool a = false;
        LANG_RETURN_IF_ERROR(Truth(lhs, node.args[0]->loc, &a));
        bool r = a;
        if (node.binop == BinOp::kAnd ? a : !a) {
          LANG_RETURN_IF_ERROR(Condition(*node.args[1], &r));
        }
        acc = IntValue(r ? 1 : 0);
        continue;
      }
      Value rhs;
      LANG_RETURN_IF_ERROR(Eval(*node.args[1], &rhs));
      LANG_RETURN_IF_ERROR(
          Binary(node.binop, std::move(lhs), std::move(rhs), node.type, node.loc, &acc));
    }
    *out = std::move(acc);
    return absl::OkStatus();
  }

  absl::Status Binary(BinOp op, Value a, Value b, Type result, SourceLoc loc, Value* out) {
    switch (op) {
      case BinOp::kEq:
      case BinOp::kNe:
      case BinOp::kLt:
      case BinOp::kLe:
      case BinOp::kGt:
      case BinOp::kGe: {
        if (a.symbolic() || b.symbolic()) {
          return Err(loc, absl::StrCat("comparison '", BinOpName(op),
                                       "' of a value that depends on parameters: comparisons "
                                       "apply to data only (the compiled model has no branches)"));
        }
        const double x = a.real(0), y = b.real(0);
        bool r = false;
        switch (op) {
          case BinOp::kEq:
            r = x == y;
            break;
          case BinOp::kNe:
            r = x != y;
            break;
          case BinOp::kLt:
            r = x < y;
            break;
          case BinOp::kLe:
            r = x <= y;
            break;
          case BinOp::kGt:
            r = x > y;
            break;
          default:
            r = x >= y;
            break;
        }
        *out = IntValue(r ? 1 : 0);
        return absl::OkStatus();
      }
      case BinOp::kAnd:  // (EvalBinary short-circuits these before they get here)
      case BinOp::kOr:
        *out = IntValue(op == BinOp::kAnd ? (a.real(0) != 0 && b.real(0) != 0)
                                          : (a.real(0) != 0 || b.real(0) != 0));
        return absl::OkStatus();
      case BinOp::kMod:
      case BinOp::kIntDiv:
        return IntArith(op, a.ints[0], b.ints[0], loc, out);
      case BinOp::kAdd:
      case BinOp::kSub:
      case BinOp::kDiv:
        if (result.base == Base::kInt) return IntArith(op, a.ints[0], b.ints[0], loc, out);
        return Elementwise(op == BinOp::kAdd   ? BinaryOp::kAdd
                           : op == BinOp::kSub ? BinaryOp::kSub
                                               : BinaryOp::kDiv,
                           std::move(a), std::move(b), result, loc, out);
      case BinOp::kMul:
        if (result.base == Base::kInt) return IntArith(op, a.ints[0], b.ints[0], loc, out);
        if (a.type.is_scalar() || b.type.is_scalar()) {
          return Elementwise(BinaryOp::kMul, std::move(a), std::move(b), result, loc, out);
        }
        return MatMul(std::move(a), std::move(b), result, loc, out);
      case BinOp::kEltMul:
        return Elementwise(BinaryOp::kMul, std::move(a), std::move(b), result, loc, out);
      case BinOp::kEltDiv:
        return Elementwise(BinaryOp::kDiv, std::move(a), std::move(b), result, loc, out);
      case BinOp::kPow:
      case BinOp::kEltPow:
        return Elementwise(BinaryOp::kPow, std::move(a), std::move(b), result, loc, out);
    }
    return absl::OkStatus();
  }

  absl::Status IntArith(BinOp op, int64_t x, int64_t y, SourceLoc loc, Value* out) {
    int64_t r = 0;
    switch (op) {
      case BinOp::kAdd:
        r = x + y;
        break;
      case BinOp::kSub:
        r = x - y;
        break;
      case BinOp::kMul:
        if (__builtin_mul_overflow(x, y, &r)) r = kIntMax + 1;
        break;
      case BinOp::kDiv:
      case BinOp::kIntDiv:
      case BinOp::kMod:
        if (y == 0) return Err(loc, "integer division by zero");
        r = op == BinOp::kMod ? x % y : x / y;
        break;
      default:
        break;
    }
    if (r > kIntMax || r < kIntMin) return Err(loc, "integer overflow (int is 32-bit)");
    *out = IntValue(r);
    return absl::OkStatus();
  }

  absl::Status Unary(UnaryOp op, Value a, SourceLoc loc, Value* out) {
    ToReal(&a);
    const int64_t n = a.size();
    LANG_RETURN_IF_ERROR(Work(n, loc));
    if (!a.symbolic()) {
      out->type = a.type;
      out->shape = a.shape;
      out->ints.clear();
      out->rows.clear();
      out->reals.assign(n, 0.0);
      if (n > 0) UnaryKernel(op, static_cast<int>(n), a.reals.data(), out->reals.data(), nullptr);
      return absl::OkStatus();
    }
    absl::StatusOr<Operand> x = ToOperand(a, loc);
    if (!x.ok()) return x.status();
    Node node;
    node.op = OpCode::kUnary;
    node.sub = static_cast<uint8_t>(op);
    node.args[0] = *x;
    node.partial[0] = 0;
    absl::StatusOr<int32_t> start = Emit(node, n, loc);
    if (!start.ok()) return start.status();
    *out = NodeValue(a.type, a.shape, *start, n);
    return absl::OkStatus();
  }

  absl::Status Elementwise(BinaryOp op, Value a, Value b, Type result, SourceLoc loc, Value* out) {
    ToReal(&a);
    ToReal(&b);
    result.base = result.base == Base::kInt ? Base::kReal : result.base;
    const bool as = a.type.is_scalar(), bs = b.type.is_scalar();
    if (!as && !bs && a.shape != b.shape) {
      return Err(loc, absl::StrCat("dimension mismatch: ", ShapeText(a), " and ", ShapeText(b)));
    }
    std::vector<int64_t> shape = as ? b.shape : a.shape;
    const int64_t n = as ? b.size() : a.size();
    LANG_RETURN_IF_ERROR(Work(n, loc));
    if (!a.symbolic() && !b.symbolic()) {
      out->type = result;
      out->shape = std::move(shape);
      out->ints.clear();
      out->rows.clear();
      out->reals.assign(n, 0.0);
      if (n > 0) {
        BinaryKernel(op, static_cast<int>(n), a.reals.data(), as, b.reals.data(), bs,
                     out->reals.data(), nullptr, nullptr);
      }
      return absl::OkStatus();
    }
    // x + 0, x - 0, x * 1, x / 1, x ^ 1 are x; x ^ 2, x ^ 0.5 and x ^ -1 are cheaper unary ops.
    if (bs && !b.symbolic()) {
      const double c = b.reals[0];
      if (((op == BinaryOp::kAdd || op == BinaryOp::kSub) && c == 0) ||
          ((op == BinaryOp::kMul || op == BinaryOp::kDiv || op == BinaryOp::kPow) && c == 1)) {
        *out = std::move(a);
        out->type = result;
        return absl::OkStatus();
      }
      if (op == BinaryOp::kPow && (c == 2 || c == 0.5 || c == -1)) {
        LANG_RETURN_IF_ERROR(Unary(c == 2     ? UnaryOp::kSquare
                                   : c == 0.5 ? UnaryOp::kSqrt
                                              : UnaryOp::kInv,
                                   std::move(a), loc, out));
        out->type = result;
        return absl::OkStatus();
      }
    }
    if (as && !a.symbolic()) {
      const double c = a.reals[0];
      if ((op == BinaryOp::kAdd && c == 0) || (op == BinaryOp::kMul && c == 1)) {
        *out = std::move(b);
        out->type = result;
        return absl::OkStatus();
      }
      if (op == BinaryOp::kSub && c == 0) {
        LANG_RETURN_IF_ERROR(Unary(UnaryOp::kNeg, std::move(b), loc, out));
        out->type = result;
        return absl::OkStatus();
      }
    }
    if (n == 0) {
      *out = Uninitialized(result, shape);
      return absl::OkStatus();
    }
    absl::StatusOr<Operand> x = ToOperand(a, loc);
    if (!x.ok()) return x.status();
    absl::StatusOr<Operand> y = ToOperand(b, loc);
    if (!y.ok()) return y.status();
    Node node;
    node.op = OpCode::kBinary;
    node.sub = static_cast<uint8_t>(op);
    node.args[0] = *x;
    node.args[1] = *y;
    const bool stored = op != BinaryOp::kAdd && op != BinaryOp::kSub;
    node.partial[0] = stored && !x->is_const ? 0 : -1;
    node.partial[1] = stored && !y->is_const ? 0 : -1;
    absl::StatusOr<int32_t> start = Emit(node, n, loc);
    if (!start.ok()) return start.status();
    *out = NodeValue(result, std::move(shape), *start, n);
    return absl::OkStatus();
  }

  absl::Status Dot(Value a, Value b, SourceLoc loc, Value* out) {
    ToReal(&a);
    ToReal(&b);
    if (a.size() != b.size()) {
      return Err(loc, absl::StrCat("dimension mismatch: ", ShapeText(a), " and ", ShapeText(b),
                                   " have different sizes"));
    }
    const int64_t n = a.size();
    LANG_RETURN_IF_ERROR(Work(n, loc));
    if (!a.symbolic() && !b.symbolic()) {
      double s = 0;
      for (int64_t i = 0; i < n; ++i) s += a.reals[i] * b.reals[i];
      *out = RealValue(s);
      return absl::OkStatus();
    }
    absl::StatusOr<Operand> x = ToOperand(a, loc);
    if (!x.ok()) return x.status();
    absl::StatusOr<Operand> y = ToOperand(b, loc);
    if (!y.ok()) return y.status();
    Node node;
    node.op = OpCode::kDot;
    node.args[0] = *x;
    node.args[1] = *y;
    absl::StatusOr<int32_t> start = Emit(node, 1, loc);
    if (!start.ok()) return start.status();
    *out = NodeValue(RealType(), {}, *start, 1);
    return absl::OkStatus();
  }

  // Constant matrix (rows x cols, row-major data) times v: a MatVec node, or a constant.
  absl::Status MatVec(const AlignedDoubles& m, int64_t rows, int64_t cols, Value v, Type result,
                      SourceLoc loc, Value* out) {
    LANG_RETURN_IF_ERROR(Work(rows * cols, loc));
    using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const Eigen::Map<const RowMajor> mat(m.data(), rows, cols);
    if (!v.symbolic()) {
      out->type = result;
      out->shape = {rows};
      out->ints.clear();
      out->rows.clear();
      out->reals.resize(rows);
      Eigen::Map<Eigen::VectorXd>(out->reals.data(), rows) =
          mat * Eigen::Map<const Eigen::VectorXd>(v.reals.data(), cols);
      return absl::OkStatus();
    }
    if (rows == 0) {
      *out = Uninitialized(result, {0});
      return absl::OkStatus();
    }
    LANG_RETURN_IF_ERROR(CheckConsts(rows * cols, loc));
    absl::StatusOr<Operand> x = ToOperand(v, loc);
    if (!x.ok()) return x.status();
    Node node;
    node.op = OpCode::kMatVec;
    node.args[0] = *x;
    node.aux = static_cast<int32_t>(tape_->matrices.size());
    tape_->matrices.push_back(mat);
    matrix_elements_ += rows * cols;
    absl::StatusOr<int32_t> start = Emit(node, rows, loc);
    if (!start.ok()) return start.status();
    *out = NodeValue(result, {rows}, *start, rows);
    return absl::OkStatus();
  }

  absl::Status MatMul(Value a, Value b, Type result, SourceLoc loc, Value* out) {
    ToReal(&a);
    ToReal(&b);
    const Base ab = a.type.base, bb = b.type.base;
    auto mismatch = [&]() {
      return Err(loc,
                 absl::StrCat("dimension mismatch in '*': ", ShapeText(a), " and ", ShapeText(b)));
    };
    auto needs_data = [&]() {
      return Err(loc,
                 "a matrix that depends on parameters is not supported in '*': expected "
                 "a data (constant) matrix");
    };
    if (ab == Base::kRowVector && bb == Base::kVector) {
      if (a.size() != b.size()) return mismatch();
      return Dot(std::move(a), std::move(b), loc, out);
    }
    if (ab == Base::kMatrix && bb == Base::kVector) {
      if (a.shape[1] != b.shape[0]) return mismatch();
      if (a.symbolic()) return needs_data();
      return MatVec(a.reals, a.shape[0], a.shape[1], std::move(b), result, loc, out);
    }
    if (ab == Base::kRowVector && bb == Base::kMatrix) {
      if (a.shape[0] != b.shape[0]) return mismatch();
      if (b.symbolic()) return needs_data();
      // x' M = (M' x)': transpose M into row-major data.
      const int64_t r = b.shape[0], c = b.shape[1];
      AlignedDoubles t(static_cast<size_t>(r * c));
      for (int64_t i = 0; i < r; ++i) {
        for (int64_t j = 0; j < c; ++j) t[j * r + i] = b.reals[i * c + j];
      }
      return MatVec(t, c, r, std::move(a), result, loc, out);
    }
    // matrix * matrix, vector * row_vector: constants only.
    if (a.symbolic() || b.symbolic()) {
      return Err(loc, absl::StrCat("'*' of ", ShapeText(a), " and ", ShapeText(b),
                                   " is only supported for data (constant) values"));
    }
    const int64_t r = ab == Base::kVector ? a.shape[0] : a.shape[0];
    const int64_t k = ab == Base::kVector ? 1 : a.shape[1];
    const int64_t kb = bb == Base::kRowVector ? 1 : b.shape[0];
    const int64_t c = bb == Base::kRowVector ? b.shape[0] : b.shape[1];
    if (k != kb) return mismatch();
    LANG_RETURN_IF_ERROR(CheckElements(r * c, loc));
    LANG_RETURN_IF_ERROR(Work(r * c * std::max<int64_t>(k, 1), loc));
    using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    out->type = result;
    out->shape = {r, c};
    out->ints.clear();
    out->rows.clear();
    out->reals.resize(r * c);
    Eigen::Map<RowMajor>(out->reals.data(), r, c) =
        Eigen::Map<const RowMajor>(a.reals.data(), r, k) *
        Eigen::Map<const RowMajor>(b.reals.data(), k, c);
    return absl::OkStatus();
  }

  absl::Status Reduce(OpCode op, Value a, SourceLoc loc, Value* out) {
    ToReal(&a);
    const int64_t n = a.size();
    LANG_RETURN_IF_ERROR(Work(n, loc));
    if (n == 0) {
      *out = RealValue(op == OpCode::kSum ? 0.0 : -kInf);
      return absl::OkStatus();
    }
    if (n == 1) {
      *out = std::move(a);
      out->type = RealType();
      out->shape.clear();
      return absl::OkStatus();
    }
    if (!a.symbolic()) {
      const Eigen::Map<const Eigen::ArrayXd> x(a.reals.data(), n);
      if (op == OpCode::kSum) {
        *out = RealValue(x.sum());
      } else {
        const double m = x.maxCoeff();
        *out = RealValue(m == -kInf ? -kInf : m + std::log((x - m).exp().sum()));
      }
      return absl::OkStatus();
    }
    absl::StatusOr<Operand> x = ToOperand(a, loc);
    if (!x.ok()) return x.status();
    Node node;
    node.op = op;
    node.args[0] = *x;
    if (op == OpCode::kLogSumExp) node.partial[0] = 0;
    absl::StatusOr<int32_t> start = Emit(node, 1, loc);
    if (!start.ok()) return start.status();
    *out = NodeValue(RealType(), {}, *start, 1);
    return absl::OkStatus();
  }

  absl::Status EvalCall(const Expr& e, Value* out) {
    if (e.dist) {
      std::vector<const Expr*> params;
      for (size_t i = 1; i < e.args.size(); ++i) params.push_back(e.args[i].get());
      return EvalDist(static_cast<Dist>(e.builtin), *e.args[0], params, e.loc,
                      /*constant_to_target=*/false, out);
    }
    std::vector<Value> args(e.args.size());
    for (size_t i = 0; i < e.args.size(); ++i) LANG_RETURN_IF_ERROR(Eval(*e.args[i], &args[i]));
    if (e.builtin < 0) {
      const UnaryOp op = static_cast<UnaryOp>(-1 - e.builtin);
      if (op == UnaryOp::kAbs && args[0].type.base == Base::kInt) {
        for (int64_t& x : args[0].ints) {
          if (x == kIntMin) return Err(e.loc, "integer overflow");
          x = x < 0 ? -x : x;
        }
        *out = std::move(args[0]);
        return absl::OkStatus();
      }
      LANG_RETURN_IF_ERROR(Unary(op, std::move(args[0]), e.loc, out));
      out->type = e.type;
      return absl::OkStatus();
    }
    const Fn fn = static_cast<Fn>(e.builtin);
    switch (fn) {
      case Fn::kUnary:
        break;
      case Fn::kPow:
        return Elementwise(BinaryOp::kPow, std::move(args[0]), std::move(args[1]), e.type, e.loc,
                           out);
      case Fn::kLogSumExp:
        if (args.size() == 2) {
          return Elementwise(BinaryOp::kLogSumExp, std::move(args[0]), std::move(args[1]), e.type,
                             e.loc, out);
        }
        return Reduce(OpCode::kLogSumExp, std::move(args[0]), e.loc, out);
      case Fn::kSum:
        if (args[0].type.base == Base::kInt) {
          int64_t s = 0;
          for (int64_t x : args[0].ints) {
            s += x;
            if (s > kIntMax || s < kIntMin) return Err(e.loc, "integer overflow (int is 32-bit)");
          }
          *out = IntValue(s);
          return absl::OkStatus();
        }
        return Reduce(OpCode::kSum, std::move(args[0]), e.loc, out);
      case Fn::kMean: {
        const int64_t n = args[0].size();
        if (n == 0) return Err(e.loc, "mean of an empty container");
        Value s;
        LANG_RETURN_IF_ERROR(Reduce(OpCode::kSum, std::move(args[0]), e.loc, &s));
        return Elementwise(BinaryOp::kDiv, std::move(s), RealValue(static_cast<double>(n)),
                           RealType(), e.loc, out);
      }
      case Fn::kDotProduct:
        return Dot(std::move(args[0]), std::move(args[1]), e.loc, out);
      case Fn::kRepVector:
      case Fn::kRepArray: {
        std::vector<int64_t> dims;
        int64_t count = 1;
        for (size_t i = 1; i < args.size(); ++i) {
          const int64_t d = args[i].ints[0];
          if (d < 0)
            return Err(e.args[i]->loc, absl::StrCat("size must be non-negative, found ", d));
          LANG_RETURN_IF_ERROR(CheckElements(d, e.loc));
          dims.push_back(d);
          count *= d;
          LANG_RETURN_IF_ERROR(CheckElements(count, e.loc));
          LANG_RETURN_IF_ERROR(CheckElements(count * std::max<int64_t>(args[0].size(), 1), e.loc));
        }
        Value x = std::move(args[0]);
        if (fn == Fn::kRepVector) ToReal(&x);
        LANG_RETURN_IF_ERROR(Work(count * x.size(), e.loc));
        Value r;
        r.type = e.type;
        r.shape = dims;
        r.shape.insert(r.shape.end(), x.shape.begin(), x.shape.end());
        for (int64_t i = 0; i < count; ++i) Append(&r, x);
        *out = std::move(r);
        return absl::OkStatus();
      }
      case Fn::kSize: {
        const Value& a = args[0];
        *out = IntValue(a.type.dims > 0 || a.type.base != Base::kMatrix ? a.shape[0] : a.size());
        return absl::OkStatus();
      }
      case Fn::kNumElements:
        *out = IntValue(args[0].size());
        return absl::OkStatus();
      case Fn::kRows:
      case Fn::kCols: {
        const Value& a = args[0];
        const bool rows = fn == Fn::kRows;
        int64_t n = 0;
        switch (a.type.base) {
          case Base::kVector:
            n = rows ? a.shape[0] : 1;
            break;
          case Base::kRowVector:
            n = rows ? 1 : a.shape[0];
            break;
          default:
            n = rows ? a.shape[0] : a.shape[1];
            break;
        }
        *out = IntValue(n);
        return absl::OkStatus();
      }
      case Fn::kToVector: {
        Value a = std::move(args[0]);
        ToReal(&a);
        if (a.type.base == Base::kMatrix) {  // column-major order, as Stan
          const int64_t r = a.shape[0], c = a.shape[1];
          std::vector<int64_t> perm;
          for (int64_t j = 0; j < c; ++j) {
            for (int64_t i = 0; i < r; ++i) perm.push_back(i * c + j);
          }
          *out = Pick(a, e.type, {r * c}, perm);
          return absl::OkStatus();
        }
        a.type = e.type;
        a.shape = {a.size()};
        *out = std::move(a);
        return absl::OkStatus();
      }
      case Fn::kPi:
        *out = RealValue(3.14159265358979323846);
        return absl::OkStatus();
      case Fn::kE:
        *out = RealValue(2.71828182845904523536);
        return absl::OkStatus();
      case Fn::kPositiveInfinity:
        *out = RealValue(kInf);
        return absl::OkStatus();
      case Fn::kNegativeInfinity:
        *out = RealValue(-kInf);
        return absl::OkStatus();
      case Fn::kNotANumber:
        *out = RealValue(kNaN);
        return absl::OkStatus();
      case Fn::kMin:
      case Fn::kMax: {
        std::vector<double> xs;
        for (const Value& a : args) {
          if (a.symbolic()) {
            return Err(e.loc, absl::StrCat("'", e.name,
                                           "' of values that depend on parameters "
                                           "is not supported (it is not differentiable)"));
          }
          for (int64_t i = 0; i < a.size(); ++i) xs.push_back(a.real(i));
        }
        if (xs.empty()) return Err(e.loc, absl::StrCat("'", e.name, "' of an empty container"));
        const double r = fn == Fn::kMin ? *std::min_element(xs.begin(), xs.end())
                                        : *std::max_element(xs.begin(), xs.end());
        *out = e.type.base == Base::kInt ? IntValue(static_cast<int64_t>(r)) : RealValue(r);
        return absl::OkStatus();
      }
    }
    return absl::OkStatus();
  }

  // The log density of distribution `dist` at `variate` given `params`. The integer-only
  // constant of discrete distributions goes into the target when `constant_to_target`, else
  // into the returned value.
  absl::Status EvalDist(Dist dist, const Expr& variate, const std::vector<const Expr*>& params,
                        SourceLoc loc, bool constant_to_target, Value* out) {
    const DistInfo& info = GetDist(dist);
    const int nargs = 1 + info.num_params;
    std::vector<Value> args(nargs);
    LANG_RETURN_IF_ERROR(Eval(variate, &args[0]));
    for (int k = 1; k < nargs; ++k) LANG_RETURN_IF_ERROR(Eval(*params[k - 1], &args[k]));
    auto arg_name = [&](int k) {
      return k == 0 ? std::string("the variate") : absl::StrCat("'", info.params[k - 1], "'");
    };
    int64_t n = 1;
    int first = -1;
    for (int k = 0; k < nargs; ++k) {
      ToReal(&args[k]);
      if (args[k].type.is_scalar()) continue;
      if (first < 0) {
        first = k;
        n = args[k].size();
      } else if (args[k].size() != n) {
        return Err(
            loc, absl::StrCat("dimension mismatch in '", info.name, "': ", arg_name(first), " has ",
                              n, " elements but ", arg_name(k), " has ", args[k].size()));
      }
    }
    LANG_RETURN_IF_ERROR(Work(n, loc));
    if (n == 0) {
      *out = RealValue(0);
      return absl::OkStatus();
    }
    // Supports of the constant elements, and the relations between arguments.
    auto item = [&](int k, int64_t j) { return args[k].size() == 1 ? 0 : j; };
    for (int k = 0; k < nargs; ++k) {
      const Support sup = k == 0 ? info.variate_support : info.param_support[k - 1];
      for (int64_t j = 0; j < args[k].size(); ++j) {
        if (args[k].is_symbolic(j) || InSupport(sup, args[k].reals[j])) continue;
        return Err(loc,
                   absl::StrCat(info.name, ": ", arg_name(k), " ", SupportText(sup), ", found ",
                                ShortNum(args[k].reals[j]),
                                args[k].size() > 1 ? absl::StrCat(" (element ", j + 1, ")") : ""));
      }
    }
    if (dist == Dist::kBinomial || dist == Dist::kBinomialLogit) {
      for (int64_t j = 0; j < n; ++j) {
        const double k = args[0].reals[item(0, j)], trials = args[1].reals[item(1, j)];
        if (k > trials) {
          return Err(loc, absl::StrCat(info.name,
                                       ": the variate (successes) must not exceed N, "
                                       "found ",
                                       ShortNum(k), " > ", ShortNum(trials)));
        }
      }
    }
    if (dist == Dist::kUniform) {
      for (int64_t j = 0; j < n; ++j) {
        if (args[1].is_symbolic(item(1, j)) || args[2].is_symbolic(item(2, j))) continue;
        const double a = args[1].reals[item(1, j)], b = args[2].reals[item(2, j)];
        if (!(b > a)) {
          return Err(loc, absl::StrCat("uniform: 'beta' must be greater than 'alpha', found "
                                       "alpha = ",
                                       ShortNum(a), ", beta = ", ShortNum(b)));
        }
      }
    }
    // Broadcast copies of the constants (for folding and the discrete constant).
    std::vector<AlignedDoubles> full(nargs);
    std::vector<const double*> ptrs(nargs);
    auto broadcast = [&](int k) {
      full[k].resize(n);
      for (int64_t j = 0; j < n; ++j) full[k][j] = args[k].reals[item(k, j)];
      ptrs[k] = full[k].data();
    };
    double constant = 0;
    if (info.discrete) {
      for (int k = 0; k < nargs; ++k) {
        if (k == 0 || info.int_param[k - 1]) broadcast(k);
      }
      constant = DiscreteConstant(dist, static_cast<int>(n), ptrs.data());
    }
    bool any_symbolic = false;
    for (const Value& a : args) any_symbolic = any_symbolic || a.symbolic();
    if (!any_symbolic) {
      for (int k = 0; k < nargs; ++k) broadcast(k);
      AlignedDoubles lp(n, 0.0), scratch(kDistScratchRows * n);
      double* dx[4] = {nullptr, nullptr, nullptr, nullptr};
      DistKernel(dist, static_cast<int>(n), ptrs.data(), lp.data(), dx, scratch.data());
      double sum = constant;
      for (double x : lp) sum += x;
      *out = RealValue(sum);
      return absl::OkStatus();
    }
    Node node;
    node.op = OpCode::kDist;
    node.sub = static_cast<uint8_t>(dist);
    node.items = static_cast<int32_t>(n);
    for (int k = 0; k < nargs; ++k) {
      absl::StatusOr<Operand> o = ToOperand(args[k], loc);
      if (!o.ok()) return o.status();
      node.args[k] = *o;
      node.partial[k] = o->is_const ? -1 : 0;
    }
    node.aux = DistSite(loc, info.name);
    absl::StatusOr<int32_t> start = Emit(node, 1, loc);
    if (!start.ok()) return start.status();
    Value lp = NodeValue(RealType(), {}, *start, 1);
    if (constant == 0) {
      *out = std::move(lp);
    } else if (constant_to_target) {
      tape_->target_const += constant;
      *out = std::move(lp);
    } else {
      LANG_RETURN_IF_ERROR(
          Elementwise(BinaryOp::kAdd, std::move(lp), RealValue(constant), RealType(), loc, out));
    }
    return absl::OkStatus();
  }

  const LineIndex& Lines() {
    if (lines_ == nullptr) lines_ = std::make_unique<LineIndex>(source_);
    return *lines_;
  }

  // The error site of a distribution at `loc`, shared by every node made there (a statement in
  // a loop makes one node per iteration).
  int32_t DistSite(SourceLoc loc, const char* name) {
    const uint64_t key = (static_cast<uint64_t>(loc.line) << 32) | static_cast<uint32_t>(loc.col);
    auto it = dist_sites_.find(key);
    if (it != dist_sites_.end()) return it->second;
    const int32_t id = static_cast<int32_t>(tape_->sites.size());
    ErrorSite site;
    site.where = Lines().Split(loc);
    site.what = name;
    tape_->sites.push_back(std::move(site));
    dist_sites_.emplace(key, id);
    return id;
  }

  // ---- Finishing ------------------------------------------------------------------------------

  static int32_t PartialRows(const Node& node) {
    switch (node.op) {
      case OpCode::kLogSumExp:
      case OpCode::kLogJacLU:
        return node.args[0].rows;
      case OpCode::kDist:
        return node.items;
      default:
        return node.rows;
    }
  }

  // Drops nodes that nothing in the target depends on, packs the rows of the rest, and lays
  // out the partial-derivative rows.
  void Finalize() {
    Tape& t = *tape_;
    std::vector<int32_t> owner(t.num_rows, -1);
    for (size_t i = 0; i < t.nodes.size(); ++i) {
      const Node& node = t.nodes[i];
      for (int32_t r = node.out; r < node.out + node.rows; ++r) owner[r] = static_cast<int32_t>(i);
    }
    std::vector<char> live(t.nodes.size(), 0);
    std::vector<int32_t> stack;
    auto mark = [&](int32_t start, int32_t rows) {
      for (int32_t r = start; r < start + rows;) {
        const int32_t o = owner[r];
        if (o < 0) {
          ++r;
          continue;
        }
        if (!live[o]) {
          live[o] = 1;
          stack.push_back(o);
        }
        r = t.nodes[o].out + t.nodes[o].rows;
      }
    };
    for (const Operand& op : t.target) mark(op.start, op.rows);
    for (size_t i = 0; i < t.nodes.size(); ++i) {
      if (t.nodes[i].op == OpCode::kCheck && !live[i]) {
        live[i] = 1;
        stack.push_back(static_cast<int32_t>(i));
      }
    }
    while (!stack.empty()) {
      const Node& node = t.nodes[stack.back()];
      stack.pop_back();
      for (const Operand& a : node.args) {
        if (!a.is_const && a.rows > 0) mark(a.start, a.rows);
      }
      if (node.op == OpCode::kGather) {
        for (int32_t r = 0; r < node.rows; ++r) {
          const int32_t src = t.gather[node.aux + r];
          if (src >= 0) mark(src, 1);
        }
      }
    }
    std::vector<int32_t> new_start(t.nodes.size(), -1);
    int32_t next = t.dim;
    int32_t next_partial = 0;
    for (size_t i = 0; i < t.nodes.size(); ++i) {
      if (!live[i]) continue;
      new_start[i] = next;
      next += t.nodes[i].rows;
    }
    auto remap = [&](int32_t r) {
      const int32_t o = owner[r];
      return o < 0 ? r : new_start[o] + (r - t.nodes[o].out);
    };
    std::vector<Node> kept;
    for (size_t i = 0; i < t.nodes.size(); ++i) {
      if (!live[i]) continue;
      Node node = t.nodes[i];
      for (Operand& a : node.args) {
        if (!a.is_const && a.rows > 0) a.start = remap(a.start);
      }
      if (node.op == OpCode::kGather) {
        for (int32_t r = 0; r < node.rows; ++r) {
          int32_t& src = t.gather[node.aux + r];
          if (src >= 0) src = remap(src);
        }
      }
      for (int k = 0; k < 4; ++k) {
        if (node.partial[k] < 0) continue;
        node.partial[k] = next_partial;
        next_partial += PartialRows(node);
      }
      node.out = new_start[i];
      kept.push_back(node);
    }
    for (Operand& op : t.target) op.start = remap(op.start);
    t.nodes = std::move(kept);
    t.num_rows = next;
    t.num_partial_rows = next_partial;
  }

  absl::string_view source_;
  const Program& program_;
  const std::vector<SlotInfo>& slots_;
  const DataMap& data_;
  const ModelLimits& limits_;
  std::vector<Value> values_;
  std::shared_ptr<Tape> tape_;
  CompiledProgram out_;
  absl::flat_hash_map<uint64_t, int32_t> const_index_;
  std::unique_ptr<LineIndex> lines_;                   // made on first use
  absl::flat_hash_map<uint64_t, int32_t> dist_sites_;  // by (line, column)
  int64_t work_ = 0;
  int64_t matrix_elements_ = 0;  // constants held in tape_->matrices
  Ctl ctl_ = Ctl::kNone;
};

}  // namespace

absl::StatusOr<CompiledProgram> CompileProgram(absl::string_view source, const Program& program,
                                               const std::vector<SlotInfo>& slots,
                                               const DataMap& data, const ModelLimits& limits) {
  Compiler compiler(source, program, slots, data, limits);
  return compiler.Run();
}

}  // namespace flowvi::lang
