#include "engine/lang/parser.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/lang/lexer.h"

namespace flowvi::lang {

std::string TypeName(Type t) {
  const char* base = "real";
  switch (t.base) {
    case Base::kInt:
      base = "int";
      break;
    case Base::kReal:
      base = "real";
      break;
    case Base::kVector:
      base = "vector";
      break;
    case Base::kRowVector:
      base = "row_vector";
      break;
    case Base::kMatrix:
      base = "matrix";
      break;
  }
  if (t.dims == 0) return base;
  return absl::StrCat("array[", std::string(t.dims - 1, ','), "] ", base);
}

const char* BinOpName(BinOp op) {
  switch (op) {
    case BinOp::kOr:
      return "||";
    case BinOp::kAnd:
      return "&&";
    case BinOp::kEq:
      return "==";
    case BinOp::kNe:
      return "!=";
    case BinOp::kLt:
      return "<";
    case BinOp::kLe:
      return "<=";
    case BinOp::kGt:
      return ">";
    case BinOp::kGe:
      return ">=";
    case BinOp::kAdd:
      return "+";
    case BinOp::kSub:
      return "-";
    case BinOp::kMul:
      return "*";
    case BinOp::kDiv:
      return "/";
    case BinOp::kMod:
      return "%";
    case BinOp::kIntDiv:
      return "%/%";
    case BinOp::kEltMul:
      return ".*";
    case BinOp::kEltDiv:
      return "./";
    case BinOp::kPow:
      return "^";
    case BinOp::kEltPow:
      return ".^";
  }
  return "?";
}

Expr::~Expr() {
  // Tear the tree down with an explicit stack: a left spine may be too long to recurse on.
  std::vector<ExprPtr> pending;
  auto take = [&pending](Expr& e) {
    for (ExprPtr& a : e.args) pending.push_back(std::move(a));
    for (Index& i : e.indexes) {
      pending.push_back(std::move(i.lo));
      pending.push_back(std::move(i.hi));
    }
  };
  take(*this);
  while (!pending.empty()) {
    ExprPtr e = std::move(pending.back());
    pending.pop_back();
    if (e != nullptr) take(*e);
  }  // each e is destroyed childless
}

const char* BlockName(BlockKind kind) {
  switch (kind) {
    case BlockKind::kData:
      return "data";
    case BlockKind::kTransformedData:
      return "transformed data";
    case BlockKind::kParameters:
      return "parameters";
    case BlockKind::kTransformedParameters:
      return "transformed parameters";
    case BlockKind::kModel:
      return "model";
  }
  return "?";
}

namespace {

// Words that cannot name a variable. (lower, upper, offset and multiplier are keywords only
// inside bounds, as in Stan.)
// clang-format off
constexpr absl::string_view kReservedWords[] = {
    "for", "in", "while", "if", "else", "int", "real", "vector", "row_vector", "matrix", "array",
    "target", "functions", "model", "data", "parameters", "quantities", "transformed",
    "generated", "break", "continue", "return", "void", "print", "reject", "profile",
    "fatal_error", "complex", "tuple", "simplex", "ordered", "positive_ordered", "unit_vector",
    "cov_matrix", "corr_matrix", "cholesky_factor_cov", "cholesky_factor_corr"};
// clang-format on

bool IsReserved(absl::string_view word) {
  for (absl::string_view w : kReservedWords) {
    if (w == word) return true;
  }
  return false;
}

// Stan types this language does not have: named in a clear error rather than "unknown".
// clang-format off
constexpr absl::string_view kUnsupportedTypes[] = {
    "simplex", "ordered", "positive_ordered", "unit_vector", "cov_matrix", "corr_matrix",
    "cholesky_factor_cov", "cholesky_factor_corr", "complex", "tuple", "complex_vector",
    "complex_matrix", "complex_row_vector", "sum_to_zero_vector"};
// clang-format on

bool IsUnsupportedType(absl::string_view word) {
  for (absl::string_view w : kUnsupportedTypes) {
    if (w == word) return true;
  }
  return false;
}

bool IsTypeKeyword(absl::string_view s) {
  return s == "int" || s == "real" || s == "vector" || s == "row_vector" || s == "matrix" ||
         s == "array";
}

// Binary operator levels, loosest first (Stan's precedence table).
struct Level {
  Tok toks[4];
  BinOp ops[4];
  int count;
};
constexpr Level kLevels[] = {
    {{Tok::kOr}, {BinOp::kOr}, 1},
    {{Tok::kAnd}, {BinOp::kAnd}, 1},
    {{Tok::kEqEq, Tok::kNe}, {BinOp::kEq, BinOp::kNe}, 2},
    {{Tok::kLt, Tok::kLe, Tok::kGt, Tok::kGe}, {BinOp::kLt, BinOp::kLe, BinOp::kGt, BinOp::kGe}, 4},
    {{Tok::kPlus, Tok::kMinus}, {BinOp::kAdd, BinOp::kSub}, 2},
    {{Tok::kTimes, Tok::kDiv, Tok::kMod, Tok::kIntDiv},
     {BinOp::kMul, BinOp::kDiv, BinOp::kMod, BinOp::kIntDiv},
     4},
    {{Tok::kEltTimes, Tok::kEltDiv}, {BinOp::kEltMul, BinOp::kEltDiv}, 2},
};
constexpr int kNumLevels = sizeof(kLevels) / sizeof(kLevels[0]);
constexpr int kAdditiveLevel = 4;  // bounds (<lower=..., upper=...>) are parsed from here down

class Parser {
 public:
  Parser(absl::string_view source, std::vector<Token> tokens, const ModelLimits& limits)
      : source_(source), toks_(std::move(tokens)), limits_(limits) {}

  const absl::Status& status() const { return status_; }

  Program ParseProgram() {
    Program program;
    int next_allowed = 0;
    while (ok() && !At(Tok::kEnd)) {
      const Token& tok = Peek();
      BlockKind kind;
      int words = 1;
      if (AtIdent("functions")) {
        Fail(tok.loc, "user-defined functions are not supported");
        return program;
      } else if (AtIdent("generated")) {
        Fail(tok.loc,
             "'generated quantities' blocks are not supported: samples are returned in the "
             "constrained space of the parameters; derive other quantities from them");
        return program;
      } else if (AtIdent("data")) {
        kind = BlockKind::kData;
      } else if (AtIdent("parameters")) {
        kind = BlockKind::kParameters;
      } else if (AtIdent("model")) {
        kind = BlockKind::kModel;
      } else if (AtIdent("transformed") && Peek(1).kind == Tok::kIdent && Peek(1).text == "data") {
        kind = BlockKind::kTransformedData;
        words = 2;
      } else if (AtIdent("transformed") && Peek(1).kind == Tok::kIdent &&
                 Peek(1).text == "parameters") {
        kind = BlockKind::kTransformedParameters;
        words = 2;
      } else {
        Fail(tok.loc, absl::StrCat("expected a block ('data', 'transformed data', 'parameters', "
                                   "'transformed parameters' or 'model'), found ",
                                   Describe(tok)));
        return program;
      }
      if (static_cast<int>(kind) < next_allowed) {
        Fail(tok.loc, absl::StrCat("block '", BlockName(kind),
                                   "' is repeated or out of order: expected the blocks in the "
                                   "order data, transformed data, parameters, transformed "
                                   "parameters, model, each at most once"));
        return program;
      }
      next_allowed = static_cast<int>(kind) + 1;
      Block& block = program.block(kind);
      block.kind = kind;
      block.present = true;
      block.loc = tok.loc;
      for (int i = 0; i < words; ++i) Next();
      if (!Expect(Tok::kLBrace, absl::StrCat("after '", BlockName(kind), "'"))) return program;
      const bool decls_only = kind == BlockKind::kData || kind == BlockKind::kParameters;
      while (ok() && !At(Tok::kRBrace)) {
        if (At(Tok::kEnd)) {
          Fail(Peek().loc, absl::StrCat("expected '}' to close the ", BlockName(kind),
                                        " block, found end of input"));
          return program;
        }
        StmtPtr stmt = decls_only ? ParseTopDecl(kind) : ParseStatement();
        if (stmt != nullptr) block.stmts.push_back(std::move(stmt));
      }
      Accept(Tok::kRBrace);
    }
    return program;
  }

  ExprPtr ParseWholeExpression() {
    ExprPtr e = ParseExpr();
    if (ok() && !At(Tok::kEnd)) {
      Fail(Peek().loc, absl::StrCat("expected an operator or the end of the expression, found ",
                                    Describe(Peek())));
    }
    return e;
  }

 private:
  bool ok() const { return status_.ok(); }

  const Token& Peek(int k = 0) const {
    const size_t i = std::min(pos_ + static_cast<size_t>(k), toks_.size() - 1);
    return toks_[i];
  }
  const Token& Next() {
    const Token& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  bool At(Tok kind) const { return Peek().kind == kind; }
  bool AtIdent(absl::string_view name) const {
    return Peek().kind == Tok::kIdent && Peek().text == name;
  }
  bool Accept(Tok kind) {
    if (!At(kind)) return false;
    Next();
    return true;
  }
  bool Expect(Tok kind, absl::string_view context) {
    if (!ok()) return false;
    if (Accept(kind)) return true;
    // A ';' missing at the end of a line is reported there, not at the next line's first token.
    SourceLoc loc = Peek().loc;
    if (kind == Tok::kSemi && pos_ > 0 && toks_[pos_ - 1].loc.line < loc.line) {
      const Token& prev = toks_[pos_ - 1];
      loc = {prev.loc.line, prev.loc.col + static_cast<int>(prev.text.size())};
    }
    Fail(loc,
         absl::StrCat("expected ", Describe(kind), " ", context, ", found ", Describe(Peek())));
    return false;
  }
  void Fail(SourceLoc loc, absl::string_view message) {
    if (ok()) status_ = SourceError(source_, loc, message);
  }

  // Bounds the recursion of the parser (and therefore of every later pass over the tree).
  class DepthGuard {
   public:
    explicit DepthGuard(Parser* p) : p_(p) {
      if (++p_->depth_ > p_->limits_.max_nesting && p_->ok()) {
        p_->status_ =
            SourceLimitError(p_->source_, p_->Peek().loc,
                             absl::StrCat("nesting too deep: exceeds ModelLimits::max_nesting (",
                                          p_->limits_.max_nesting, ")"));
      }
    }
    ~DepthGuard() { --p_->depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;

   private:
    Parser* p_;
  };

  // ---- Declarations ---------------------------------------------------------------------------

  StmtPtr ParseTopDecl(BlockKind kind) {
    const Token& tok = Peek();
    if (tok.kind != Tok::kIdent || !(IsTypeKeyword(tok.text) || IsUnsupportedType(tok.text))) {
      Fail(tok.loc, absl::StrCat("expected a variable declaration (int, real, vector, row_vector, "
                                 "matrix or array) in the ",
                                 BlockName(kind), " block, found ", Describe(tok)));
      return nullptr;
    }
    StmtPtr s = ParseDecl();
    if (s != nullptr && s->decl->init != nullptr) {
      Fail(s->decl->init->loc,
           kind == BlockKind::kData
               ? "data variables cannot be given a value here: their values come from the data"
               : "parameters cannot be given a value: the flow chooses them (use transformed "
                 "parameters for derived quantities)");
      return nullptr;
    }
    return s;
  }

  void ParseBounds(DeclType* t) {
    t->bounds_loc = Peek().loc;
    Next();  // '<'
    bool any = false;
    while (ok()) {
      const Token& key = Peek();
      if (key.kind == Tok::kIdent && (key.text == "lower" || key.text == "upper")) {
        ExprPtr& slot = key.text == "lower" ? t->lower : t->upper;
        if (slot != nullptr) {
          Fail(key.loc, absl::StrCat("bound '", key.text, "' given twice"));
          return;
        }
        Next();
        if (!Expect(Tok::kAssign, absl::StrCat("after '", key.text, "'"))) return;
        slot = ParseLevel(kAdditiveLevel);
        any = true;
      } else if (key.kind == Tok::kIdent && (key.text == "offset" || key.text == "multiplier")) {
        Fail(key.loc,
             absl::StrCat("'", key.text, "' is not supported: expected 'lower' or 'upper' bounds"));
        return;
      } else {
        Fail(key.loc,
             absl::StrCat("expected 'lower' or 'upper' in the bounds, found ", Describe(key)));
        return;
      }
      if (Accept(Tok::kComma)) continue;
      break;
    }
    if (ok() && !any) Fail(Peek().loc, "expected 'lower' or 'upper' in the bounds");
    Expect(Tok::kGt, "to close the bounds");
  }

  void ParseSizes(std::vector<ExprPtr>* out, int count, absl::string_view what) {
    if (!Expect(Tok::kLBracket, absl::StrCat("with the size of the ", what))) return;
    for (int i = 0; i < count && ok(); ++i) {
      if (i > 0 && !Expect(Tok::kComma, absl::StrCat("between the sizes of the ", what))) return;
      out->push_back(ParseExpr());
    }
    Expect(Tok::kRBracket, absl::StrCat("after the size", count > 1 ? "s" : "", " of the ", what));
  }

  // int | real | vector[n] | row_vector[n] | matrix[m, n], each with optional bounds.
  bool ParseBaseType(DeclType* t) {
    const Token& tok = Peek();
    if (tok.kind != Tok::kIdent) {
      Fail(tok.loc,
           absl::StrCat("expected a type (int, real, vector, row_vector or matrix), found ",
                        Describe(tok)));
      return false;
    }
    if (IsUnsupportedType(tok.text)) {
      Fail(tok.loc, absl::StrCat("type '", tok.text,
                                 "' is not supported; expected int, real, vector, row_vector, "
                                 "matrix or array"));
      return false;
    }
    if (tok.text == "array") {
      Fail(tok.loc, "arrays of arrays are written array[m, n] T");
      return false;
    }
    int sizes = 0;
    if (tok.text == "int") {
      t->base = Base::kInt;
    } else if (tok.text == "real") {
      t->base = Base::kReal;
    } else if (tok.text == "vector") {
      t->base = Base::kVector;
      sizes = 1;
    } else if (tok.text == "row_vector") {
      t->base = Base::kRowVector;
      sizes = 1;
    } else if (tok.text == "matrix") {
      t->base = Base::kMatrix;
      sizes = 2;
    } else {
      Fail(tok.loc,
           absl::StrCat("expected a type (int, real, vector, row_vector or matrix), found ",
                        Describe(tok)));
      return false;
    }
    Next();
    if (At(Tok::kLt)) ParseBounds(t);
    if (sizes > 0 && ok())
      ParseSizes(&t->sizes, sizes,
                 tok.text == "matrix"   ? "matrix"
                 : tok.text == "vector" ? "vector"
                                        : "row_vector");
    return ok();
  }

  StmtPtr ParseDecl() {
    DepthGuard guard(this);
    auto stmt = std::make_unique<Stmt>();
    stmt->kind = StmtKind::kDecl;
    stmt->loc = Peek().loc;
    auto decl = std::make_unique<VarDecl>();
    decl->type.loc = Peek().loc;
    if (AtIdent("array")) {
      Next();
      if (!Expect(Tok::kLBracket, "after 'array' (written array[n] T)")) return nullptr;
      do {
        decl->type.array_sizes.push_back(ParseExpr());
      } while (ok() && Accept(Tok::kComma));
      if (!Expect(Tok::kRBracket, "after the array sizes")) return nullptr;
    }
    if (!ParseBaseType(&decl->type)) return nullptr;
    const Token& name = Peek();
    if (name.kind != Tok::kIdent) {
      Fail(name.loc, absl::StrCat("expected a variable name, found ", Describe(name)));
      return nullptr;
    }
    if (IsReserved(name.text) || absl::EndsWith(name.text, "__")) {
      Fail(name.loc,
           absl::StrCat("'", name.text, "' is a reserved word: expected a variable name"));
      return nullptr;
    }
    decl->name = std::string(name.text);
    decl->loc = name.loc;
    Next();
    if (At(Tok::kLBracket)) {  // old array syntax: real y[n];
      if (!decl->type.array_sizes.empty()) {
        Fail(Peek().loc, "array sizes given twice (array[...] and after the name)");
        return nullptr;
      }
      Next();
      do {
        decl->type.array_sizes.push_back(ParseExpr());
      } while (ok() && Accept(Tok::kComma));
      if (!Expect(Tok::kRBracket, "after the array sizes")) return nullptr;
    }
    if (Accept(Tok::kAssign)) decl->init = ParseExpr();
    if (!Expect(Tok::kSemi, "to end the declaration")) return nullptr;
    stmt->decl = std::move(decl);
    return stmt;
  }

  // ---- Statements -----------------------------------------------------------------------------

  StmtPtr ParseStatement() {
    DepthGuard guard(this);
    if (!ok()) return nullptr;
    const Token& tok = Peek();
    auto stmt = std::make_unique<Stmt>();
    stmt->loc = tok.loc;
    if (tok.kind == Tok::kLBrace) {
      Next();
      stmt->kind = StmtKind::kBlock;
      while (ok() && !At(Tok::kRBrace)) {
        if (At(Tok::kEnd)) {
          Fail(Peek().loc, "expected '}' to close the block, found end of input");
          return nullptr;
        }
        StmtPtr s = ParseStatement();
        if (s != nullptr) stmt->body.push_back(std::move(s));
      }
      Accept(Tok::kRBrace);
      return stmt;
    }
    if (tok.kind == Tok::kSemi) {
      Next();
      stmt->kind = StmtKind::kEmpty;
      return stmt;
    }
    if (tok.kind == Tok::kIdent) {
      if (IsTypeKeyword(tok.text) || IsUnsupportedType(tok.text)) return ParseDecl();
      if (tok.text == "for") return ParseFor(std::move(stmt));
      if (tok.text == "if") return ParseIf(std::move(stmt));
      if (tok.text == "break" || tok.text == "continue") {
        stmt->kind = tok.text == "break" ? StmtKind::kBreak : StmtKind::kContinue;
        Next();
        if (!Expect(Tok::kSemi,
                    absl::StrCat("after '", stmt->kind == StmtKind::kBreak ? "break" : "continue",
                                 "'")))
          return nullptr;
        return stmt;
      }
      if (tok.text == "while") {
        Fail(tok.loc,
             "while loops are not supported: use a for loop (loops are unrolled at "
             "compile time and must have data-only bounds)");
        return nullptr;
      }
      if (tok.text == "print" || tok.text == "reject" || tok.text == "return" ||
          tok.text == "profile" || tok.text == "fatal_error") {
        Fail(tok.loc, absl::StrCat("'", tok.text, "' statements are not supported"));
        return nullptr;
      }
      if (tok.text == "target" && Peek(1).kind == Tok::kPlusAssign) {
        Next();
        Next();
        stmt->kind = StmtKind::kTargetPlus;
        stmt->expr = ParseExpr();
        if (!Expect(Tok::kSemi, "to end the statement")) return nullptr;
        return stmt;
      }
    }
    ExprPtr e = ParseExpr();
    if (!ok()) return nullptr;
    const Token& op = Peek();
    if (op.kind == Tok::kTilde) {
      Next();
      stmt->kind = StmtKind::kTilde;
      stmt->loc = op.loc;
      stmt->expr = std::move(e);
      const Token& name = Peek();
      if (name.kind != Tok::kIdent) {
        Fail(name.loc,
             absl::StrCat("expected a distribution name after '~', found ", Describe(name)));
        return nullptr;
      }
      stmt->name = std::string(name.text);
      stmt->name_loc = name.loc;
      Next();
      if (!Expect(Tok::kLParen, absl::StrCat("after the distribution name '", stmt->name, "'")))
        return nullptr;
      if (!At(Tok::kRParen)) {
        do {
          stmt->args.push_back(ParseExpr());
        } while (ok() && Accept(Tok::kComma));
      }
      if (!Expect(Tok::kRParen, "to close the distribution's arguments")) return nullptr;
      if (AtIdent("T") && Peek(1).kind == Tok::kLBracket) {
        Fail(Peek().loc, "truncation (T[...]) is not supported");
        return nullptr;
      }
      if (!Expect(Tok::kSemi, "to end the statement")) return nullptr;
      return stmt;
    }
    AssignOp aop;
    switch (op.kind) {
      case Tok::kAssign:
        aop = AssignOp::kSet;
        break;
      case Tok::kPlusAssign:
        aop = AssignOp::kAdd;
        break;
      case Tok::kMinusAssign:
        aop = AssignOp::kSub;
        break;
      case Tok::kTimesAssign:
        aop = AssignOp::kMul;
        break;
      case Tok::kDivAssign:
        aop = AssignOp::kDiv;
        break;
      case Tok::kEltTimesAssign:
        aop = AssignOp::kEltMul;
        break;
      case Tok::kEltDivAssign:
        aop = AssignOp::kEltDiv;
        break;
      default:
        Fail(op.loc, absl::StrCat("expected '=', '~' or a compound assignment ('+=', ...) after "
                                  "the expression, found ",
                                  Describe(op)));
        return nullptr;
    }
    const bool lvalue = e->kind == ExprKind::kVar ||
                        (e->kind == ExprKind::kIndex && e->args[0]->kind == ExprKind::kVar);
    if (!lvalue) {
      Fail(e->loc, "expected a variable or an indexed variable on the left of the assignment");
      return nullptr;
    }
    Next();
    stmt->kind = StmtKind::kAssign;
    stmt->loc = op.loc;
    stmt->assign_op = aop;
    stmt->lhs = std::move(e);
    stmt->expr = ParseExpr();
    if (!Expect(Tok::kSemi, "to end the statement")) return nullptr;
    return stmt;
  }

  StmtPtr ParseFor(StmtPtr stmt) {
    Next();  // for
    if (!Expect(Tok::kLParen, "after 'for'")) return nullptr;
    const Token& var = Peek();
    if (var.kind != Tok::kIdent || IsReserved(var.text)) {
      Fail(var.loc, absl::StrCat("expected a loop variable name, found ", Describe(var)));
      return nullptr;
    }
    stmt->name = std::string(var.text);
    stmt->name_loc = var.loc;
    Next();
    if (!AtIdent("in")) {
      Fail(Peek().loc,
           absl::StrCat("expected 'in' after the loop variable, found ", Describe(Peek())));
      return nullptr;
    }
    Next();
    stmt->expr = ParseExpr();
    if (Accept(Tok::kColon)) {
      stmt->kind = StmtKind::kFor;
      stmt->expr2 = ParseExpr();
    } else {
      stmt->kind = StmtKind::kForEach;
    }
    if (!Expect(Tok::kRParen, "to close the loop header")) return nullptr;
    StmtPtr body = ParseStatement();
    if (body == nullptr) return nullptr;
    stmt->body.push_back(std::move(body));
    return stmt;
  }

  StmtPtr ParseIf(StmtPtr stmt) {
    Next();  // if
    stmt->kind = StmtKind::kIf;
    if (!Expect(Tok::kLParen, "after 'if'")) return nullptr;
    stmt->expr = ParseExpr();
    if (!Expect(Tok::kRParen, "to close the condition")) return nullptr;
    StmtPtr then = ParseStatement();
    if (then == nullptr) return nullptr;
    stmt->body.push_back(std::move(then));
    if (AtIdent("else")) {
      Next();
      StmtPtr other = ParseStatement();
      if (other == nullptr) return nullptr;
      stmt->body.push_back(std::move(other));
    }
    return stmt;
  }

  // ---- Expressions ----------------------------------------------------------------------------

  static ExprPtr MakeExpr(ExprKind kind, SourceLoc loc) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->loc = loc;
    return e;
  }

  ExprPtr ParseExpr() {
    DepthGuard guard(this);
    if (!ok()) return MakeExpr(ExprKind::kIntLit, Peek().loc);
    ExprPtr cond = ParseLevel(0);
    if (!ok() || !At(Tok::kQuestion)) return cond;
    const SourceLoc loc = Next().loc;
    ExprPtr a = ParseExpr();
    if (!Expect(Tok::kColon, "in the conditional expression 'c ? a : b'")) return cond;
    ExprPtr b = ParseExpr();
    ExprPtr e = MakeExpr(ExprKind::kCond, loc);
    e->args.push_back(std::move(cond));
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return e;
  }

  ExprPtr ParseLevel(int level) {
    if (level >= kNumLevels) return ParseUnary();
    ExprPtr lhs = ParseLevel(level + 1);
    while (ok()) {
      const Level& lv = kLevels[level];
      int found = -1;
      for (int i = 0; i < lv.count; ++i) {
        if (At(lv.toks[i])) found = i;
      }
      if (found < 0) break;
      const SourceLoc loc = Next().loc;
      ExprPtr rhs = ParseLevel(level + 1);
      ExprPtr e = MakeExpr(ExprKind::kBinary, loc);
      e->binop = lv.ops[found];
      e->args.push_back(std::move(lhs));
      e->args.push_back(std::move(rhs));
      lhs = std::move(e);
    }
    return lhs;
  }

  ExprPtr ParseUnary() {
    DepthGuard guard(this);
    if (!ok()) return MakeExpr(ExprKind::kIntLit, Peek().loc);
    if (At(Tok::kMinus) || At(Tok::kPlus) || At(Tok::kNot)) {
      const Token& op = Next();
      ExprPtr e = MakeExpr(ExprKind::kUnary, op.loc);
      e->unop = op.kind == Tok::kMinus  ? UnOp::kNeg
                : op.kind == Tok::kPlus ? UnOp::kPlus
                                        : UnOp::kNot;
      e->args.push_back(ParseUnary());
      return e;
    }
    ExprPtr base = ParsePostfix();
    if (ok() && (At(Tok::kHat) || At(Tok::kEltHat))) {
      const Token& op = Next();
      ExprPtr e = MakeExpr(ExprKind::kBinary, op.loc);
      e->binop = op.kind == Tok::kHat ? BinOp::kPow : BinOp::kEltPow;
      e->args.push_back(std::move(base));
      e->args.push_back(ParseUnary());  // right-associative; a^-b allowed
      return e;
    }
    return base;
  }

  ExprPtr ParsePostfix() {
    ExprPtr e = ParsePrimary();
    // Postfix operators nest without recursing here: bound their number like nesting.
    for (int count = 0; ok(); ++count) {
      if (count >= limits_.max_nesting && (At(Tok::kLBracket) || At(Tok::kQuote))) {
        status_ = SourceLimitError(source_, Peek().loc,
                                   absl::StrCat("too many indexes or transpositions in a row: "
                                                "exceeds ModelLimits::max_nesting (",
                                                limits_.max_nesting, ")"));
        break;
      }
      if (At(Tok::kLBracket)) {
        ExprPtr idx = MakeExpr(ExprKind::kIndex, Next().loc);
        idx->args.push_back(std::move(e));
        do {
          idx->indexes.push_back(ParseIndex());
        } while (ok() && Accept(Tok::kComma));
        Expect(Tok::kRBracket, "to close the index");
        e = std::move(idx);
      } else if (At(Tok::kQuote)) {
        ExprPtr t = MakeExpr(ExprKind::kTranspose, Next().loc);
        t->args.push_back(std::move(e));
        e = std::move(t);
      } else {
        break;
      }
    }
    return e;
  }

  Index ParseIndex() {
    DepthGuard guard(this);
    Index index;
    index.loc = Peek().loc;
    if (Accept(Tok::kColon)) {
      if (At(Tok::kComma) || At(Tok::kRBracket)) {
        index.kind = Index::Kind::kAll;
      } else {
        index.kind = Index::Kind::kRange;
        index.hi = ParseLevel(0);
      }
      return index;
    }
    if (At(Tok::kComma) || At(Tok::kRBracket)) {
      Fail(Peek().loc, absl::StrCat("expected an index, found ", Describe(Peek())));
      return index;
    }
    index.lo = ParseLevel(0);
    if (Accept(Tok::kColon)) {
      index.kind = Index::Kind::kRange;
      if (!At(Tok::kComma) && !At(Tok::kRBracket)) index.hi = ParseLevel(0);
    }
    return index;
  }

  ExprPtr ParsePrimary() {
    DepthGuard guard(this);
    const Token& tok = Peek();
    if (!ok()) return MakeExpr(ExprKind::kIntLit, tok.loc);
    switch (tok.kind) {
      case Tok::kInt: {
        ExprPtr e = MakeExpr(ExprKind::kIntLit, tok.loc);
        e->int_value = tok.int_value;
        Next();
        return e;
      }
      case Tok::kReal: {
        ExprPtr e = MakeExpr(ExprKind::kRealLit, tok.loc);
        e->real_value = tok.real_value;
        Next();
        return e;
      }
      case Tok::kLParen: {
        Next();
        ExprPtr e = ParseExpr();
        Expect(Tok::kRParen, "to close the parenthesis");
        return e;
      }
      case Tok::kLBrace:
      case Tok::kLBracket: {
        const bool array = tok.kind == Tok::kLBrace;
        ExprPtr e = MakeExpr(array ? ExprKind::kArray : ExprKind::kRowVector, tok.loc);
        Next();
        if (At(array ? Tok::kRBrace : Tok::kRBracket)) {
          Fail(Peek().loc, array ? "empty array expressions are not supported"
                                 : "empty row-vector expressions are not supported");
          return e;
        }
        do {
          e->args.push_back(ParseExpr());
        } while (ok() && Accept(Tok::kComma));
        Expect(array ? Tok::kRBrace : Tok::kRBracket,
               array ? "to close the array expression" : "to close the row-vector expression");
        return e;
      }
      case Tok::kIdent: {
        if (tok.text == "target" && Peek(1).kind == Tok::kLParen) {
          Fail(tok.loc, "target() is not supported");
          return MakeExpr(ExprKind::kIntLit, tok.loc);
        }
        if (IsReserved(tok.text) && Peek(1).kind != Tok::kLParen) {
          Fail(tok.loc,
               absl::StrCat("expected an expression, found the reserved word ", Describe(tok)));
          return MakeExpr(ExprKind::kIntLit, tok.loc);
        }
        Next();
        if (!At(Tok::kLParen)) {
          ExprPtr e = MakeExpr(ExprKind::kVar, tok.loc);
          e->name = std::string(tok.text);
          return e;
        }
        Next();
        ExprPtr e = MakeExpr(ExprKind::kCall, tok.loc);
        e->name = std::string(tok.text);
        const bool density = absl::EndsWith(e->name, "_lpdf") || absl::EndsWith(e->name, "_lpmf") ||
                             absl::EndsWith(e->name, "_lupdf") || absl::EndsWith(e->name, "_lupmf");
        if (!At(Tok::kRParen)) {
          e->args.push_back(ParseExpr());
          if (density && ok() && !At(Tok::kRParen)) {
            if (!Expect(Tok::kBar, absl::StrCat("after the first argument of '", e->name,
                                                "' (written ", e->name, "(y | ...))"))) {
              return e;
            }
            e->bar = true;
            do {
              e->args.push_back(ParseExpr());
            } while (ok() && Accept(Tok::kComma));
          } else {
            while (ok() && Accept(Tok::kComma)) e->args.push_back(ParseExpr());
          }
        }
        Expect(Tok::kRParen, absl::StrCat("to close the arguments of '", e->name, "'"));
        return e;
      }
      default:
        Fail(tok.loc, absl::StrCat("expected an expression, found ", Describe(tok)));
        return MakeExpr(ExprKind::kIntLit, tok.loc);
    }
  }

  absl::string_view source_;
  std::vector<Token> toks_;
  size_t pos_ = 0;
  const ModelLimits& limits_;
  absl::Status status_;
  int depth_ = 0;
};

absl::Status CheckSize(absl::string_view source, const ModelLimits& limits) {
  if (static_cast<int64_t>(source.size()) > limits.max_program_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "model source is ", source.size(), " bytes: exceeds ModelLimits::max_program_bytes (",
        limits.max_program_bytes, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Program> ParseProgram(absl::string_view source, const ModelLimits& limits) {
  if (absl::Status s = CheckSize(source, limits); !s.ok()) return s;
  absl::StatusOr<std::vector<Token>> tokens = Lex(source);
  if (!tokens.ok()) return tokens.status();
  Parser parser(source, *std::move(tokens), limits);
  Program program = parser.ParseProgram();
  if (!parser.status().ok()) return parser.status();
  return program;
}

absl::StatusOr<ExprPtr> ParseExpression(absl::string_view source, const ModelLimits& limits) {
  if (absl::Status s = CheckSize(source, limits); !s.ok()) return s;
  absl::StatusOr<std::vector<Token>> tokens = Lex(source);
  if (!tokens.ok()) return tokens.status();
  Parser parser(source, *std::move(tokens), limits);
  ExprPtr e = parser.ParseWholeExpression();
  if (!parser.status().ok()) return parser.status();
  return e;
}

}  // namespace flowvi::lang
