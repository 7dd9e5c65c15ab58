#include "engine/lang/model.h"

#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/lang/checker.h"
#include "engine/lang/json.h"
#include "engine/lang/parser.h"

namespace flowvi::lang {
namespace {

// Softplus(u) + softplus(-u) = |u| + 2 log1p(exp(-|u|)).
template <class A>
auto SoftplusBoth(const A& u) {
  return u.abs() + 2.0 * (-u.abs()).exp().log1p();
}

absl::StatusOr<std::unique_ptr<CompiledModel>> Finish(absl::string_view source, Program* program,
                                                      absl::string_view data_json,
                                                      const ModelLimits& limits,
                                                      CompiledModel* (*make)(CompiledProgram)) {
  std::vector<SlotInfo> slots;
  if (absl::Status s = CheckProgram(source, program, &slots); !s.ok()) return s;
  absl::StatusOr<DataMap> data = ParseDataJson(data_json, limits);
  if (!data.ok()) return data.status();
  absl::StatusOr<CompiledProgram> compiled = CompileProgram(source, *program, slots, *data, limits);
  if (!compiled.ok()) return compiled.status();
  return std::unique_ptr<CompiledModel>(make(*std::move(compiled)));
}

}  // namespace

absl::Status ModelLimits::Validate() const {
  const struct {
    const char* name;
    int64_t value;
  } fields[] = {{"max_program_bytes", max_program_bytes},
                {"max_data_bytes", max_data_bytes},
                {"max_nesting", max_nesting},
                {"max_parameters", max_parameters},
                {"max_value_elements", max_value_elements},
                {"max_compile_work", max_compile_work},
                {"max_tape_nodes", max_tape_nodes},
                {"max_tape_rows", max_tape_rows},
                {"max_tape_constants", max_tape_constants}};
  for (const auto& f : fields) {
    if (f.value <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("ModelLimits::", f.name, " must be positive, found ", f.value));
    }
  }
  // Tape rows and constants are addressed with 32-bit integers.
  if (max_tape_rows > (int64_t{1} << 30) || max_tape_constants > (int64_t{1} << 30) ||
      max_value_elements > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError(
        "ModelLimits::max_tape_rows, max_tape_constants and max_value_elements must be at most "
        "2^30");
  }
  return absl::OkStatus();
}

void ModelTarget::LogDensity(const Matrix& z, RowVector* log_p, Matrix* grad) {
  TapeForward(*tape_, z, grad != nullptr, &ws_, log_p);
  if (grad != nullptr) TapeBackward(*tape_, &ws_, grad);
}

absl::Status ModelTarget::last_error() const {
  const RuntimeError& error = TapeError(ws_);
  if (!error.set) return absl::OkStatus();
  return absl::InvalidArgumentError(FormatRuntimeError(*tape_, error));
}

std::unique_ptr<ModelTarget> CompiledModel::NewTarget() const {
  return std::unique_ptr<ModelTarget>(new ModelTarget(program_.tape, program_.unconstrained_names));
}

int64_t CompiledModel::bytes_per_sample() const {
  const Tape& t = *program_.tape;
  return static_cast<int64_t>(sizeof(double)) * (2 * int64_t{t.num_rows} + t.num_partial_rows + 8);
}

void CompiledModel::ConstrainBatch(const Matrix& u, Matrix* x) const {
  if (x->rows() != u.rows() || x->cols() != u.cols()) x->resize(u.rows(), u.cols());
  for (int i = 0; i < dim(); ++i) {
    const ParamTransform& t = program_.transforms[i];
    const auto ui = u.row(i).array();
    switch (t.kind) {
      case ParamTransform::Kind::kNone:
        x->row(i) = u.row(i);
        break;
      case ParamTransform::Kind::kLower:
        x->row(i).array() = t.lower + ui.exp();
        break;
      case ParamTransform::Kind::kUpper:
        x->row(i).array() = t.upper - ui.exp();
        break;
      case ParamTransform::Kind::kLowerUpper:
        x->row(i).array() = t.lower + (t.upper - t.lower) * ui.logistic();
        break;
    }
  }
}

absl::Status CompiledModel::UnconstrainBatch(const Matrix& x, Matrix* u) const {
  if (x.rows() != dim()) {
    return absl::InvalidArgumentError(
        absl::StrCat("points have ", x.rows(), " coordinates: expected ", dim()));
  }
  if (u->rows() != x.rows() || u->cols() != x.cols()) u->resize(x.rows(), x.cols());
  for (int i = 0; i < dim(); ++i) {
    const ParamTransform& t = program_.transforms[i];
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const double v = x(i, j);
      double r = v;
      switch (t.kind) {
        case ParamTransform::Kind::kNone:
          break;
        case ParamTransform::Kind::kLower:
          r = std::log(v - t.lower);
          break;
        case ParamTransform::Kind::kUpper:
          r = std::log(t.upper - v);
          break;
        case ParamTransform::Kind::kLowerUpper: {
          const double p = (v - t.lower) / (t.upper - t.lower);
          r = std::log(p) - std::log1p(-p);
          break;
        }
      }
      if (!std::isfinite(r)) {
        return absl::InvalidArgumentError(
            absl::StrCat("point ", j + 1, ": '", program_.names[i], "' = ", v,
                         " is outside the interior of its declared bounds (or not finite)"));
      }
      (*u)(i, j) = r;
    }
  }
  return absl::OkStatus();
}

void CompiledModel::LogJacobianBatch(const Matrix& u, RowVector* log_jacobian) const {
  if (log_jacobian->cols() != u.cols()) log_jacobian->resize(u.cols());
  log_jacobian->setZero();
  for (int i = 0; i < dim(); ++i) {
    const ParamTransform& t = program_.transforms[i];
    const auto ui = u.row(i).array();
    switch (t.kind) {
      case ParamTransform::Kind::kNone:
        break;
      case ParamTransform::Kind::kLower:
      case ParamTransform::Kind::kUpper:
        log_jacobian->array() += ui;
        break;
      case ParamTransform::Kind::kLowerUpper:
        log_jacobian->array() += std::log(t.upper - t.lower) - SoftplusBoth(ui);
        break;
    }
  }
}

absl::StatusOr<std::unique_ptr<CompiledModel>> CompileModel(absl::string_view source,
                                                            absl::string_view data_json,
                                                            const ModelLimits& limits) {
  if (absl::Status s = limits.Validate(); !s.ok()) return s;
  absl::StatusOr<Program> program = ParseProgram(source, limits);
  if (!program.ok()) return program.status();
  return Finish(source, &*program, data_json, limits,
                [](CompiledProgram p) { return new CompiledModel(std::move(p)); });
}

absl::StatusOr<std::unique_ptr<CompiledModel>> CompileExpression2D(absl::string_view expression,
                                                                   const ModelLimits& limits) {
  if (absl::Status s = limits.Validate(); !s.ok()) return s;
  absl::StatusOr<ExprPtr> expr = ParseExpression(expression, limits);
  if (!expr.ok()) return expr.status();
  // parameters { real z1; real z2; } model { target += <expression>; }
  Program program;
  Block& params = program.block(BlockKind::kParameters);
  params.kind = BlockKind::kParameters;
  params.present = true;
  for (const char* name : {"z1", "z2"}) {
    auto stmt = std::make_unique<Stmt>();
    stmt->kind = StmtKind::kDecl;
    stmt->decl = std::make_unique<VarDecl>();
    stmt->decl->name = name;
    params.stmts.push_back(std::move(stmt));
  }
  Block& model = program.block(BlockKind::kModel);
  model.kind = BlockKind::kModel;
  model.present = true;
  auto stmt = std::make_unique<Stmt>();
  stmt->kind = StmtKind::kTargetPlus;
  stmt->loc = (*expr)->loc;
  stmt->expr = *std::move(expr);
  model.stmts.push_back(std::move(stmt));
  return Finish(expression, &program, "", limits,
                [](CompiledProgram p) { return new CompiledModel(std::move(p)); });
}

}  // namespace flowvi::lang
