#include "engine/lang/checker.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/lang/builtins.h"

namespace flowvi::lang {
namespace {

bool IsVectorLike(Type t) {
  return t.dims == 0 &&
         (t.base == Base::kVector || t.base == Base::kRowVector || t.base == Base::kMatrix);
}

Type Promote(Type a, Type b) {  // a and b scalars
  return a.is_int() && b.is_int() ? IntType() : RealType();
}

// Whether a value of type `from` may be stored in a variable of type `to` (int promotes to real).
bool Assignable(Type to, Type from) {
  if (to == from) return true;
  return to.dims == from.dims && to.base == Base::kReal && from.base == Base::kInt;
}

const char* KindName(VarKind k) {
  switch (k) {
    case VarKind::kData:
      return "data variable";
    case VarKind::kTransformedData:
      return "transformed data variable";
    case VarKind::kParameter:
      return "parameter";
    case VarKind::kTransformedParameter:
      return "transformed parameter";
    case VarKind::kLocal:
      return "local variable";
    case VarKind::kLoop:
      return "loop variable";
  }
  return "variable";
}

// Elementwise operators broadcast a scalar over the other operand; two scalars give
// `scalar_result`; otherwise the operands must have the same type.
std::string Broadcast(BinOp op, Type a, Type b, Type scalar_result, const std::string& found,
                      Type* out) {
  if (a.is_scalar() && b.is_scalar()) {
    *out = scalar_result;
    return "";
  }
  if (a.is_scalar()) {
    *out = b;
    return "";
  }
  if (b.is_scalar() || a == b) {
    *out = a;
    return "";
  }
  return absl::StrCat("operator '", BinOpName(op),
                      "' expects operands of the same type or a scalar; ", found);
}

// The type of `a op b`, or an error message.
std::string BinaryType(BinOp op, Type a, Type b, Type* out) {
  const std::string found =
      absl::StrCat("found ", TypeName(a), " ", BinOpName(op), " ", TypeName(b));
  if (a.dims > 0 || b.dims > 0) {
    return absl::StrCat("operator '", BinOpName(op),
                        "' does not apply to arrays (use vectors, e.g. to_vector(...)); ", found);
  }
  switch (op) {
    case BinOp::kOr:
    case BinOp::kAnd:
    case BinOp::kEq:
    case BinOp::kNe:
    case BinOp::kLt:
    case BinOp::kLe:
    case BinOp::kGt:
    case BinOp::kGe:
      if (a.is_scalar() && b.is_scalar()) {
        *out = IntType();
        return "";
      }
      return absl::StrCat("operator '", BinOpName(op), "' expects int or real operands; ", found);
    case BinOp::kAdd:
    case BinOp::kSub:
      return Broadcast(op, a, b, Promote(a, b), found, out);
    case BinOp::kMul:
      if (a.is_scalar() && b.is_scalar()) {
        *out = Promote(a, b);
        return "";
      }
      if (a.is_scalar()) {
        *out = b;
        return "";
      }
      if (b.is_scalar()) {
        *out = a;
        return "";
      }
      if (a.base == Base::kMatrix && b.base == Base::kVector) {
        *out = {Base::kVector, 0};
        return "";
      }
      if (a.base == Base::kRowVector && b.base == Base::kVector) {
        *out = RealType();
        return "";
      }
      if (a.base == Base::kRowVector && b.base == Base::kMatrix) {
        *out = {Base::kRowVector, 0};
        return "";
      }
      if (a.base == Base::kMatrix && b.base == Base::kMatrix) {
        *out = {Base::kMatrix, 0};
        return "";
      }
      if (a.base == Base::kVector && b.base == Base::kRowVector) {
        *out = {Base::kMatrix, 0};
        return "";
      }
      return absl::StrCat(
          "operator '*' is the matrix product: expected scalar * x, matrix * "
          "vector, row_vector * vector, row_vector * matrix or matrix * matrix "
          "(use .* for elementwise products, dot_product for dot products); ",
          found);
    case BinOp::kDiv:
      if (a.is_scalar() && b.is_scalar()) {
        *out = Promote(a, b);
        return "";
      }
      if (b.is_scalar()) {
        *out = a;
        return "";
      }
      return absl::StrCat(
          "operator '/' expects a scalar divisor (use ./ for elementwise "
          "division); ",
          found);
    case BinOp::kMod:
    case BinOp::kIntDiv:
      if (a.is_int() && b.is_int()) {
        *out = IntType();
        return "";
      }
      return absl::StrCat("operator '", BinOpName(op), "' expects int operands; ", found);
    case BinOp::kEltMul:
    case BinOp::kEltDiv:
    case BinOp::kEltPow:
      return Broadcast(op, a, b, RealType(), found, out);
    case BinOp::kPow:
      if (a.is_scalar() && b.is_scalar()) {
        *out = RealType();
        return "";
      }
      return absl::StrCat("operator '^' expects scalars (use .^ or pow(...) for vectors); ", found);
  }
  return "unknown operator";
}

class Checker {
 public:
  Checker(absl::string_view source, std::vector<SlotInfo>* slots)
      : source_(source), slots_(slots) {}

  absl::Status Run(Program* program) {
    scopes_.emplace_back();  // the global scope of the block variables
    for (Block& block : program->blocks) {
      if (!block.present) continue;
      block_ = block.kind;
      if (block.kind == BlockKind::kModel) scopes_.emplace_back();  // model variables are local
      for (StmtPtr& stmt : block.stmts) {
        if (stmt->kind == StmtKind::kDecl) {
          if (!CheckDecl(stmt->decl.get(), block.kind != BlockKind::kModel)) return status_;
        } else if (!CheckStmt(stmt.get())) {
          return status_;
        }
      }
    }
    program->num_slots = static_cast<int>(slots_->size());
    return status_;
  }

 private:
  bool Fail(SourceLoc loc, absl::string_view message) {
    if (status_.ok()) status_ = SourceError(source_, loc, message);
    return false;
  }

  int Lookup(absl::string_view name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto found = it->find(name);
      if (found != it->end()) return found->second;
    }
    return -1;
  }

  bool Declare(const std::string& name, SourceLoc loc, Type type, VarKind kind, int* slot) {
    const int existing = Lookup(name);
    if (existing >= 0) {
      const SlotInfo& s = (*slots_)[existing];
      return Fail(loc, absl::StrCat("'", name, "' is already declared (", KindName(s.kind), " at ",
                                    s.loc.line, ":", s.loc.col, "): expected a new name"));
    }
    *slot = static_cast<int>(slots_->size());
    slots_->push_back(SlotInfo{name, type, kind, loc});
    scopes_.back().emplace(name, *slot);
    return true;
  }

  bool CheckDecl(VarDecl* decl, bool block_variable) {
    DeclType& t = decl->type;
    for (ExprPtr& e : t.array_sizes) {
      if (!CheckExpr(e.get())) return false;
      if (!e->type.is_int())
        return Fail(e->loc, absl::StrCat("array size must be int, found ", TypeName(e->type)));
    }
    for (ExprPtr& e : t.sizes) {
      if (!CheckExpr(e.get())) return false;
      if (!e->type.is_int())
        return Fail(e->loc, absl::StrCat("size must be int, found ", TypeName(e->type)));
    }
    const Type type = t.type();
    VarKind kind = VarKind::kLocal;
    if (block_variable) {
      switch (block_) {
        case BlockKind::kData:
          kind = VarKind::kData;
          break;
        case BlockKind::kTransformedData:
          kind = VarKind::kTransformedData;
          break;
        case BlockKind::kParameters:
          kind = VarKind::kParameter;
          break;
        case BlockKind::kTransformedParameters:
          kind = VarKind::kTransformedParameter;
          break;
        case BlockKind::kModel:
          kind = VarKind::kLocal;
          break;
      }
    }
    if (kind == VarKind::kParameter || kind == VarKind::kTransformedParameter) {
      if (t.base == Base::kInt) {
        return Fail(t.loc, absl::StrCat(kind == VarKind::kParameter ? "parameters"
                                                                    : "transformed parameters",
                                        " must be real-valued (real, vector, row_vector or "
                                        "arrays of them); found int"));
      }
    }
    if (kind == VarKind::kParameter && t.base == Base::kMatrix) {
      return Fail(t.loc,
                  "matrix parameters are not supported: expected real, vector, "
                  "row_vector or arrays of them");
    }
    if (t.lower != nullptr || t.upper != nullptr) {
      if (kind == VarKind::kLocal) {
        return Fail(t.bounds_loc,
                    "local variables cannot have bounds: expected bounds only on "
                    "data, transformed data, parameters and transformed parameters");
      }
      for (ExprPtr* b : {&t.lower, &t.upper}) {
        if (*b == nullptr) continue;
        if (!CheckExpr(b->get())) return false;
        const Type bt = (*b)->type;
        if (!bt.is_scalar() && !(bt.dims == type.dims && RealBaseOf(bt) == RealBaseOf(type))) {
          return Fail((*b)->loc, absl::StrCat("bound must be int, real or a ", TypeName(type),
                                              " of bounds, found ", TypeName(bt)));
        }
      }
    }
    if (decl->init != nullptr) {
      if (!CheckExpr(decl->init.get())) return false;
      if (!Assignable(type, decl->init->type)) {
        return Fail(decl->init->loc,
                    absl::StrCat("cannot initialize '", decl->name, "' of type ", TypeName(type),
                                 " with a value of type ", TypeName(decl->init->type)));
      }
    }
    return Declare(decl->name, decl->loc, type, kind, &decl->slot);
  }

  static Base RealBaseOf(Type t) { return t.base == Base::kInt ? Base::kReal : t.base; }

  bool CheckStmt(Stmt* s) {
    switch (s->kind) {
      case StmtKind::kDecl:
        return CheckDecl(s->decl.get(), false);
      case StmtKind::kEmpty:
        return true;
      case StmtKind::kBreak:
      case StmtKind::kContinue:
        if (loop_depth_ == 0) {
          return Fail(s->loc, absl::StrCat("'", s->kind == StmtKind::kBreak ? "break" : "continue",
                                           "' outside a loop"));
        }
        return true;
      case StmtKind::kBlock: {
        scopes_.emplace_back();
        for (StmtPtr& c : s->body) {
          if (!CheckStmt(c.get())) return false;
        }
        scopes_.pop_back();
        return true;
      }
      case StmtKind::kIf: {
        if (!CheckExpr(s->expr.get())) return false;
        if (!s->expr->type.is_scalar()) {
          return Fail(s->expr->loc, absl::StrCat("condition must be int or real, found ",
                                                 TypeName(s->expr->type)));
        }
        for (StmtPtr& c : s->body) {
          if (!CheckScoped(c.get())) return false;
        }
        return true;
      }
      case StmtKind::kFor: {
        for (Expr* e : {s->expr.get(), s->expr2.get()}) {
          if (!CheckExpr(e)) return false;
          if (!e->type.is_int()) {
            return Fail(e->loc, absl::StrCat("loop bound must be int, found ", TypeName(e->type)));
          }
        }
        return CheckLoopBody(s, IntType());
      }
      case StmtKind::kForEach: {
        if (!CheckExpr(s->expr.get())) return false;
        Type t = s->expr->type;
        if (t.dims > 0) {
          --t.dims;
        } else if (t.base == Base::kVector || t.base == Base::kRowVector ||
                   t.base == Base::kMatrix) {
          t = RealType();
        } else {
          return Fail(s->expr->loc,
                      absl::StrCat("expected a range lo:hi or a container to loop over, found ",
                                   TypeName(t)));
        }
        return CheckLoopBody(s, t);
      }
      case StmtKind::kTargetPlus:
        if (block_ != BlockKind::kModel) {
          return Fail(s->loc, "target can only be incremented in the model block");
        }
        return CheckExpr(s->expr.get());
      case StmtKind::kTilde:
        return CheckTilde(s);
      case StmtKind::kAssign:
        return CheckAssign(s);
    }
    return true;
  }

  bool CheckScoped(Stmt* s) {
    scopes_.emplace_back();
    const bool ok = CheckStmt(s);
    scopes_.pop_back();
    return ok;
  }

  bool CheckLoopBody(Stmt* s, Type var_type) {
    scopes_.emplace_back();
    if (!Declare(s->name, s->name_loc, var_type, VarKind::kLoop, &s->slot)) return false;
    ++loop_depth_;
    const bool ok = CheckScoped(s->body[0].get());
    --loop_depth_;
    scopes_.pop_back();
    return ok;
  }

  bool CheckTilde(Stmt* s) {
    if (block_ != BlockKind::kModel) {
      return Fail(s->loc, "'~' statements are only allowed in the model block");
    }
    const DistInfo* info = FindDist(s->name);
    if (info == nullptr) {
      std::string msg = absl::StrCat("unknown distribution '", s->name, "'");
      for (const char* suffix : {"_lpdf", "_lpmf", "_lupdf", "_lupmf"}) {
        if (absl::EndsWith(s->name, suffix)) {
          msg = absl::StrCat("'~' takes the distribution's name without '", suffix, "'");
        }
      }
      const std::string hint = SuggestName(s->name, true);
      if (!hint.empty()) absl::StrAppend(&msg, "; did you mean '", hint, "'?");
      return Fail(s->name_loc, msg);
    }
    s->dist = static_cast<int>(info->dist);
    if (!CheckExpr(s->expr.get())) return false;
    std::vector<Type> params;
    for (ExprPtr& a : s->args) {
      if (!CheckExpr(a.get())) return false;
      params.push_back(a->type);
    }
    const std::string error = CheckDistArgs(*info, s->expr->type, params);
    if (!error.empty()) return Fail(s->name_loc, error);
    return true;
  }

  bool CheckAssign(Stmt* s) {
    Expr* lhs = s->lhs.get();
    Expr* var = lhs->kind == ExprKind::kVar ? lhs : lhs->args[0].get();
    const int slot = Lookup(var->name);
    if (slot < 0) return Fail(var->loc, absl::StrCat("unknown variable '", var->name, "'"));
    const SlotInfo& info = (*slots_)[slot];
    const bool allowed =
        info.kind == VarKind::kLocal ||
        (info.kind == VarKind::kTransformedData && block_ == BlockKind::kTransformedData) ||
        (info.kind == VarKind::kTransformedParameter &&
         block_ == BlockKind::kTransformedParameters);
    if (!allowed) {
      std::string why;
      if (info.kind == VarKind::kTransformedData || info.kind == VarKind::kTransformedParameter) {
        why = absl::StrCat(
            ": it can only be assigned in the ",
            info.kind == VarKind::kTransformedData ? "transformed data" : "transformed parameters",
            " block");
      }
      return Fail(var->loc, absl::StrCat("cannot assign to ", KindName(info.kind), " '", var->name,
                                         "'", why));
    }
    if (!CheckExpr(lhs)) return false;
    if (lhs->kind == ExprKind::kIndex) {
      for (const Index& idx : lhs->indexes) {
        if (idx.multi) {
          return Fail(idx.loc,
                      "multi-indexing (an index that is an array of ints) is not "
                      "supported on the left of an assignment: expected an int or a "
                      "range lo:hi");
        }
      }
    }
    if (!CheckExpr(s->expr.get())) return false;
    Type rhs = s->expr->type;
    if (s->assign_op != AssignOp::kSet) {
      const BinOp op = CompoundOp(s->assign_op);
      Type combined;
      const std::string error = BinaryType(op, lhs->type, rhs, &combined);
      if (!error.empty()) return Fail(s->loc, error);
      rhs = combined;
    }
    if (!Assignable(lhs->type, rhs)) {
      return Fail(s->loc,
                  absl::StrCat("cannot assign a value of type ", TypeName(rhs), " to '", var->name,
                               "'", lhs->kind == ExprKind::kIndex ? " (indexed)" : "", " of type ",
                               TypeName(lhs->type)));
    }
    return true;
  }

  bool CheckIndex(Expr* e) {
    if (!CheckExpr(e->args[0].get())) return false;
    const Type t = e->args[0]->type;
    int array_left = t.dims;
    int kept = 0;
    Base base = t.base;
    int base_indexes = 0;     // indexes applied to the vector/matrix part
    bool row_chosen = false;  // matrix: the first index was single
    for (Index& idx : e->indexes) {
      bool single = false;
      if (idx.kind == Index::Kind::kSingle) {
        if (!CheckExpr(idx.lo.get())) return false;
        const Type it = idx.lo->type;
        if (it.is_int()) {
          single = true;
        } else if (it.base == Base::kInt && it.dims == 1) {
          idx.multi = true;
        } else {
          return Fail(idx.lo->loc, absl::StrCat("index must be int, array[] int or a range "
                                                "lo:hi, found ",
                                                TypeName(it)));
        }
      } else {
        for (Expr* b : {idx.lo.get(), idx.hi.get()}) {
          if (b == nullptr) continue;
          if (!CheckExpr(b)) return false;
          if (!b->type.is_int()) {
            return Fail(b->loc, absl::StrCat("range bound must be int, found ", TypeName(b->type)));
          }
        }
      }
      if (array_left > 0) {
        --array_left;
        if (!single) ++kept;
        continue;
      }
      const bool vec = t.base == Base::kVector || t.base == Base::kRowVector;
      if (vec && base_indexes == 0) {
        if (single) base = Base::kReal;
        ++base_indexes;
        continue;
      }
      if (t.base == Base::kMatrix && base_indexes == 0) {
        row_chosen = single;
        if (single) base = Base::kRowVector;
        ++base_indexes;
        continue;
      }
      if (t.base == Base::kMatrix && base_indexes == 1) {
        if (row_chosen) {
          base = single ? Base::kReal : Base::kRowVector;
        } else {
          base = single ? Base::kVector : Base::kMatrix;
        }
        ++base_indexes;
        continue;
      }
      return Fail(idx.loc, absl::StrCat("too many indexes for a value of type ", TypeName(t)));
    }
    e->type = {base, kept + array_left};
    return true;
  }

  bool CheckCall(Expr* e) {
    std::vector<Type> types;
    for (ExprPtr& a : e->args) {
      if (!CheckExpr(a.get())) return false;
      types.push_back(a->type);
    }
    const absl::string_view name = e->name;
    for (const char* suffix : {"_lpdf", "_lpmf", "_lupdf", "_lupmf"}) {
      if (!absl::EndsWith(name, suffix)) continue;
      const absl::string_view base = name.substr(0, name.size() - absl::string_view(suffix).size());
      const DistInfo* info = FindDist(base);
      if (info == nullptr) {
        std::string msg = absl::StrCat("unknown distribution '", base, "' in '", name, "'");
        const std::string hint = SuggestName(base, true);
        if (!hint.empty()) absl::StrAppend(&msg, "; did you mean '", hint, suffix, "'?");
        return Fail(e->loc, msg);
      }
      const bool pmf = absl::StrContains(suffix, "pmf");
      if (pmf != info->discrete) {
        return Fail(e->loc, absl::StrCat("'", info->name, "' is ",
                                         info->discrete ? "a discrete distribution: use '"
                                                        : "a continuous distribution: use '",
                                         info->name, info->discrete ? "_lpmf'" : "_lpdf'"));
      }
      if (types.empty()) {
        return Fail(e->loc, absl::StrCat("'", name, "' needs a variate: ", name, "(y | ...)"));
      }
      std::vector<Type> params(types.begin() + 1, types.end());
      const std::string error = CheckDistArgs(*info, types[0], params);
      if (!error.empty()) return Fail(e->loc, error);
      e->dist = true;
      e->builtin = static_cast<int>(info->dist);
      e->type = RealType();
      return true;
    }
    if (e->bar) return Fail(e->loc, absl::StrCat("'|' is only used in _lpdf and _lpmf calls"));
    if (!IsFunction(name)) {
      if (FindDist(name) != nullptr) {
        return Fail(
            e->loc,
            absl::StrCat("'", name, "' is a distribution: write 'y ~ ", name, "(...)' or call '",
                         name, FindDist(name)->discrete ? "_lpmf" : "_lpdf", "(y | ...)'"));
      }
      std::string msg = absl::StrCat("unknown function '", name, "'");
      const std::string hint = SuggestName(name, false);
      if (!hint.empty()) absl::StrAppend(&msg, "; did you mean '", hint, "'?");
      return Fail(e->loc, msg);
    }
    const CallCheck check = lang::CheckCall(name, types);
    if (!check.ok) return Fail(e->loc, check.error);
    e->builtin =
        check.fn == Fn::kUnary ? -1 - static_cast<int>(check.unary) : static_cast<int>(check.fn);
    e->type = check.result;
    return true;
  }

  bool CheckExpr(Expr* e) {
    switch (e->kind) {
      case ExprKind::kIntLit:
        e->type = IntType();
        return true;
      case ExprKind::kRealLit:
        e->type = RealType();
        return true;
      case ExprKind::kVar: {
        const int slot = Lookup(e->name);
        if (slot < 0) {
          std::string msg = absl::StrCat("unknown variable '", e->name, "'");
          if (IsFunction(e->name))
            absl::StrAppend(&msg, " ('", e->name, "' is a function: call it as ", e->name,
                            "(...))");
          return Fail(e->loc, msg);
        }
        e->slot = slot;
        e->type = (*slots_)[slot].type;
        return true;
      }
      case ExprKind::kUnary: {
        if (!CheckExpr(e->args[0].get())) return false;
        const Type t = e->args[0]->type;
        if (e->unop == UnOp::kNot) {
          if (!t.is_scalar())
            return Fail(e->loc,
                        absl::StrCat("operator '!' expects int or real, found ", TypeName(t)));
          e->type = IntType();
          return true;
        }
        if (t.dims > 0) {
          return Fail(e->loc, absl::StrCat("unary '", e->unop == UnOp::kNeg ? "-" : "+",
                                           "' does not apply to arrays, found ", TypeName(t)));
        }
        e->type = t;
        return true;
      }
      case ExprKind::kBinary: {
        // The left spine (a + b + c + ...) iteratively: it may be long.
        std::vector<Expr*> spine;
        Expr* leftmost = e;
        for (; leftmost->kind == ExprKind::kBinary; leftmost = leftmost->args[0].get()) {
          spine.push_back(leftmost);
        }
        if (!CheckExpr(leftmost)) return false;
        for (auto it = spine.rbegin(); it != spine.rend(); ++it) {
          Expr* node = *it;
          if (!CheckExpr(node->args[1].get())) return false;
          const std::string error =
              BinaryType(node->binop, node->args[0]->type, node->args[1]->type, &node->type);
          if (!error.empty()) return Fail(node->loc, error);
        }
        return true;
      }
      case ExprKind::kCond: {
        for (ExprPtr& a : e->args) {
          if (!CheckExpr(a.get())) return false;
        }
        if (!e->args[0]->type.is_scalar()) {
          return Fail(e->args[0]->loc, absl::StrCat("condition must be int or real, found ",
                                                    TypeName(e->args[0]->type)));
        }
        const Type a = e->args[1]->type, b = e->args[2]->type;
        if (a == b) {
          e->type = a;
        } else if (Assignable(a, b)) {
          e->type = a;
        } else if (Assignable(b, a)) {
          e->type = b;
        } else {
          return Fail(e->loc, absl::StrCat("the branches of '?:' must have the same type, found ",
                                           TypeName(a), " and ", TypeName(b)));
        }
        return true;
      }
      case ExprKind::kCall:
        return CheckCall(e);
      case ExprKind::kIndex:
        return CheckIndex(e);
      case ExprKind::kArray: {
        Type t;
        for (size_t i = 0; i < e->args.size(); ++i) {
          if (!CheckExpr(e->args[i].get())) return false;
          const Type at = e->args[i]->type;
          if (i == 0) {
            t = at;
          } else if (Assignable(t, at)) {
          } else if (Assignable(at, t)) {
            t = at;
          } else {
            return Fail(e->args[i]->loc, absl::StrCat("array elements must have the same type: "
                                                      "expected ",
                                                      TypeName(t), ", found ", TypeName(at)));
          }
        }
        t.dims += 1;
        e->type = t;
        return true;
      }
      case ExprKind::kRowVector:
        for (ExprPtr& a : e->args) {
          if (!CheckExpr(a.get())) return false;
          if (!a->type.is_scalar()) {
            return Fail(a->loc, absl::StrCat("row-vector expressions take int or real elements, "
                                             "found ",
                                             TypeName(a->type)));
          }
        }
        e->type = {Base::kRowVector, 0};
        return true;
      case ExprKind::kTranspose: {
        if (!CheckExpr(e->args[0].get())) return false;
        const Type t = e->args[0]->type;
        if (!IsVectorLike(t)) {
          return Fail(e->loc, absl::StrCat("transpose (') expects a vector, row_vector or "
                                           "matrix, found ",
                                           TypeName(t)));
        }
        e->type = t;
        if (t.base == Base::kVector) e->type.base = Base::kRowVector;
        if (t.base == Base::kRowVector) e->type.base = Base::kVector;
        return true;
      }
    }
    return true;
  }

  absl::string_view source_;
  std::vector<SlotInfo>* slots_;
  std::vector<absl::flat_hash_map<std::string, int>> scopes_;
  BlockKind block_ = BlockKind::kData;
  int loop_depth_ = 0;
  absl::Status status_;
};

}  // namespace

absl::Status CheckProgram(absl::string_view source, Program* program,
                          std::vector<SlotInfo>* slots) {
  slots->clear();
  Checker checker(source, slots);
  return checker.Run(program);
}

}  // namespace flowvi::lang
