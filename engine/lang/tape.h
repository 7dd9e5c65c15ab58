// The compiled form of a model: a straight-line, batched reverse-mode tape.
//
// Every value on the tape is a *row* of N numbers, one per sample of the batch (a D x N batch
// becomes D input rows). A node computes a block of rows from blocks of earlier rows (or from
// constants, which are broadcast over the batch), so the cost of interpreting a node is paid
// once per batch, not once per sample. Loops and conditionals were resolved when compiling, so
// the tape has no control flow. The forward sweep also stores each node's local partial
// derivatives; the reverse sweep then needs only multiply-adds.
//
// Storage is row-major: row r of a buffer occupies [r * N, (r + 1) * N). A Tape is immutable
// once built and may be shared by threads; each thread evaluates it with its own TapeWorkspace.
#ifndef FLOWVI_ENGINE_LANG_TAPE_H_
#define FLOWVI_ENGINE_LANG_TAPE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "engine/core/types.h"
#include "engine/lang/source.h"

namespace flowvi::lang {

// An input of a node: `rows` consecutive value rows starting at `start`, or (is_const) `rows`
// consecutive constants starting at consts[start], each broadcast over the batch. rows == 0:
// absent. A one-row operand of a multi-row node is broadcast over the node's rows.
struct Operand {
  int32_t start = 0;
  int32_t rows = 0;
  bool is_const = false;
};

enum class OpCode : uint8_t {
  kUnary,       // sub = UnaryOp: args[0] -> rows
  kBinary,      // sub = BinaryOp: args[0], args[1] -> rows
  kSum,         // sum of the rows of args[0] -> 1 row
  kLogSumExp,   // log-sum-exp of the rows of args[0] -> 1 row
  kDot,         // sum_r args[0]_r * args[1]_r -> 1 row
  kMatVec,      // matrices[aux] * args[0] -> rows
  kGather,      // row i from gather[aux + i] (a row, or -1 - k for consts[k]) -> rows
  kDist,        // sub = Dist: sum over `items` of the log density; args[0] variate -> 1 row
  kLower,       // args[1] + exp(args[0]) -> rows
  kUpper,       // args[2] - exp(args[0]) -> rows
  kLowerUpper,  // args[1] + (args[2] - args[1]) inv_logit(args[0]) -> rows
  kLogJacLU,    // sum_r -softplus(u_r) - softplus(-u_r), u = args[0] -> 1 row
  kCheck,       // flags samples whose args[0] is outside [args[1], args[2]] -> 0 rows
};

struct Node {
  OpCode op = OpCode::kUnary;
  uint8_t sub = 0;
  int32_t out = 0;    // first output row
  int32_t rows = 0;   // output rows
  int32_t items = 0;  // kDist: number of broadcast items (1 or the common length)
  Operand args[4];
  int32_t partial[4] = {-1, -1, -1, -1};  // first partial row for each argument, or -1
  int32_t aux = -1;                       // matrix, gather offset, or error site
};

// Where a run-time error comes from, for its message.
struct ErrorSite {
  LocatedParts where;          // "line:col: " ... "\n<line>\n<caret>"
  std::string what;            // kDist: the distribution; kCheck: the variable's name
  std::vector<int64_t> shape;  // kCheck: the variable's shape, to name the element
  Operand lower, upper;        // kCheck: its bounds (constants)
};

struct Tape {
  int32_t dim = 0;       // input rows [0, dim)
  int32_t num_rows = 0;  // value (and adjoint) rows
  int32_t num_partial_rows = 0;
  std::vector<Node> nodes;  // in execution order
  std::vector<double> consts;
  std::vector<Eigen::MatrixXd> matrices;
  std::vector<int32_t> gather;
  std::vector<Operand> target;  // rows summed into log p
  double target_const = 0;
  std::vector<ErrorSite> sites;
};

// The first out-of-support value met by a sweep.
struct RuntimeError {
  bool set = false;
  int32_t site = -1;
  int32_t arg = 0;     // argument of the node (kDist: 0 = variate)
  int32_t column = 0;  // sample in the batch
  double value = 0;
};

// Scratch of one evaluator (one thread). Resized only when the batch size changes.
class TapeWorkspace {
 private:
  friend void TapeForward(const Tape&, const Matrix&, bool, TapeWorkspace*, RowVector*);
  friend void TapeBackward(const Tape&, TapeWorkspace*, Matrix*);
  friend const RuntimeError& TapeError(const TapeWorkspace&);
  void Resize(const Tape& tape, int n);

  int n_ = -1;
  AlignedDoubles values_, adj_, partials_, scratch_;
  AlignedDoubles bad_;  // 1 where the sample met an out-of-support value
  bool any_bad_ = false;
  RuntimeError error_;
};

// Evaluates log p of each column of z (dim x N) into *log_p (1 x N, already sized). With
// `partials`, also stores what TapeBackward needs. A sample that meets an out-of-support value
// gets log p = -inf (and TapeError says where). Allocates only when N changes.
void TapeForward(const Tape& tape, const Matrix& z, bool partials, TapeWorkspace* ws,
                 RowVector* log_p);

// After TapeForward(..., partials = true, ...): writes d log p / dz into *grad (dim x N, already
// sized); zero for samples with log p = -inf.
void TapeBackward(const Tape& tape, TapeWorkspace* ws, Matrix* grad);

const RuntimeError& TapeError(const TapeWorkspace& ws);

// The message of a run-time error: "line:col: normal: sigma must be positive, found -0.31 (batch
// column 17)", the line and a caret.
std::string FormatRuntimeError(const Tape& tape, const RuntimeError& error);

// "x", "x[3]", "x[2,5]": the name of element `flat` (row-major) of a value of `shape`.
std::string ElementName(absl::string_view name, const std::vector<int64_t>& shape, int64_t flat);

}  // namespace flowvi::lang

#endif  // FLOWVI_ENGINE_LANG_TAPE_H_
