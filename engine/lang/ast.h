// The abstract syntax tree of the model language (see engine/lang/README.md), produced by the
// parser (parser.h) and annotated in place by the type checker (checker.h): each expression gets
// its type, each variable reference its storage slot, each call its builtin.
#ifndef FLOWVI_ENGINE_LANG_AST_H_
#define FLOWVI_ENGINE_LANG_AST_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/lang/source.h"

namespace flowvi::lang {

// ---- Types ------------------------------------------------------------------------------------

enum class Base : uint8_t { kInt, kReal, kVector, kRowVector, kMatrix };

// A static type: a base type with `dims` array dimensions around it ("array[,] vector" is
// {kVector, 2}). Sizes are not part of the type; they are checked when compiling.
struct Type {
  Base base = Base::kReal;
  int dims = 0;

  bool operator==(const Type&) const = default;
  bool is_scalar() const { return dims == 0 && (base == Base::kInt || base == Base::kReal); }
  bool is_int() const { return dims == 0 && base == Base::kInt; }
};

inline Type IntType() { return {Base::kInt, 0}; }
inline Type RealType() { return {Base::kReal, 0}; }

// "int", "real", "vector", "array[] real", "array[,] vector", ...
std::string TypeName(Type t);

// ---- Expressions ------------------------------------------------------------------------------

enum class ExprKind : uint8_t {
  kIntLit,
  kRealLit,
  kVar,
  kUnary,
  kBinary,
  kCond,       // c ? a : b
  kCall,       // name(args) or name(first | rest) for _lpdf/_lpmf
  kIndex,      // args[0][indexes]
  kArray,      // {a, b, c}
  kRowVector,  // [a, b, c]
  kTranspose,  // args[0]'
};

enum class UnOp : uint8_t { kNeg, kPlus, kNot };

enum class BinOp : uint8_t {
  kOr,
  kAnd,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kIntDiv,  // %/%
  kEltMul,  // .*
  kEltDiv,  // ./
  kPow,     // ^
  kEltPow,  // .^
};

const char* BinOpName(BinOp op);

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Index {
  enum class Kind : uint8_t { kSingle, kRange, kAll };  // e; lo:hi (either may be missing); :
  Kind kind = Kind::kSingle;
  ExprPtr lo, hi;  // kSingle: lo only
  SourceLoc loc;
  bool multi = false;  // checker: kSingle whose expression is an int array (multi-indexing)
};

// Trees are at most ModelLimits::max_nesting deep except along the left spine of binary
// operators (a + b + c + ... of any length), which every pass walks iteratively; the destructor
// too.
struct Expr {
  Expr() = default;
  ~Expr();
  Expr(const Expr&) = delete;
  Expr& operator=(const Expr&) = delete;

  ExprKind kind = ExprKind::kIntLit;
  SourceLoc loc;
  int64_t int_value = 0;
  double real_value = 0;
  std::string name;  // kVar, kCall
  UnOp unop = UnOp::kNeg;
  BinOp binop = BinOp::kAdd;
  std::vector<ExprPtr> args;  // operands, call arguments, array elements, indexed base
  std::vector<Index> indexes;
  bool bar = false;  // kCall written name(a | b, c)

  // Set by the checker.
  Type type;
  int slot = -1;     // kVar: the variable's storage slot
  int builtin = -1;  // kCall: a Fn (builtins.h), or a distribution id when dist = true
  bool dist = false;
};

// ---- Statements -------------------------------------------------------------------------------

struct DeclType {
  Base base = Base::kReal;
  std::vector<ExprPtr> array_sizes;  // array[...]; also the old "real x[n]" form
  std::vector<ExprPtr> sizes;        // vector/row_vector: 1; matrix: 2
  ExprPtr lower, upper;              // bounds, either may be missing
  SourceLoc loc;
  SourceLoc bounds_loc;

  Type type() const { return {base, static_cast<int>(array_sizes.size())}; }
};

struct VarDecl {
  DeclType type;
  std::string name;
  SourceLoc loc;  // of the name
  ExprPtr init;
  int slot = -1;  // set by the checker
};

enum class StmtKind : uint8_t {
  kDecl,
  kAssign,
  kTargetPlus,  // target += expr
  kTilde,       // expr ~ dist(args)
  kFor,         // for (i in lo:hi) body
  kForEach,     // for (x in container) body
  kIf,
  kBlock,
  kBreak,
  kContinue,
  kEmpty,
};

enum class AssignOp : uint8_t { kSet, kAdd, kSub, kMul, kDiv, kEltMul, kEltDiv };

// The binary operator of a compound assignment (x += e means x = x + e). kSet has none; it
// maps to kAdd, which callers do not use.
inline BinOp CompoundOp(AssignOp op) {
  switch (op) {
    case AssignOp::kSub:
      return BinOp::kSub;
    case AssignOp::kMul:
      return BinOp::kMul;
    case AssignOp::kDiv:
      return BinOp::kDiv;
    case AssignOp::kEltMul:
      return BinOp::kEltMul;
    case AssignOp::kEltDiv:
      return BinOp::kEltDiv;
    case AssignOp::kSet:
    case AssignOp::kAdd:
      break;
  }
  return BinOp::kAdd;
}

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;

struct Stmt {
  StmtKind kind = StmtKind::kEmpty;
  SourceLoc loc;
  std::unique_ptr<VarDecl> decl;  // kDecl
  ExprPtr lhs;                    // kAssign: kVar or kIndex of a kVar
  AssignOp assign_op = AssignOp::kSet;
  ExprPtr expr;      // rhs, target increment, tilde variate, if/for condition or lo
  ExprPtr expr2;     // for: hi
  std::string name;  // for: loop variable; tilde: distribution
  SourceLoc name_loc;
  std::vector<ExprPtr> args;  // tilde: distribution arguments
  std::vector<StmtPtr> body;  // block statements; for: body[0]; if: then body[0], else body[1]
  int slot = -1;              // for: the loop variable's slot (checker)
  int dist = -1;              // tilde: distribution id (checker)
};

// ---- Programs ---------------------------------------------------------------------------------

enum class BlockKind : uint8_t {
  kData,
  kTransformedData,
  kParameters,
  kTransformedParameters,
  kModel
};

const char* BlockName(BlockKind kind);

struct Block {
  BlockKind kind = BlockKind::kModel;
  bool present = false;
  SourceLoc loc;
  std::vector<StmtPtr> stmts;  // data, parameters: declarations only
};

struct Program {
  Block blocks[5];    // indexed by BlockKind
  int num_slots = 0;  // set by the checker

  Block& block(BlockKind k) { return blocks[static_cast<int>(k)]; }
  const Block& block(BlockKind k) const { return blocks[static_cast<int>(k)]; }
};

}  // namespace flowvi::lang

#endif  // FLOWVI_ENGINE_LANG_AST_H_
