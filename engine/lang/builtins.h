// The model language's builtin functions and distributions: their names, and the type rules
// that the checker applies to calls of them (sizes are checked later, when compiling).
#ifndef FLOWVI_ENGINE_LANG_BUILTINS_H_
#define FLOWVI_ENGINE_LANG_BUILTINS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "engine/lang/ast.h"

namespace flowvi::lang {

// Elementwise functions of one argument; also the tape's unary node kinds.
enum class UnaryOp : uint8_t {
  kNeg,
  kExp,
  kLog,
  kLog1p,
  kExpm1,
  kSqrt,
  kSquare,
  kAbs,
  kSin,
  kCos,
  kTanh,
  kInvLogit,
  kLogit,
  kLog1m,
  kLogInvLogit,
  kLog1mInvLogit,
  kInv,
  kLgamma,
};

// Elementwise functions of two arguments; also the tape's binary node kinds.
enum class BinaryOp : uint8_t { kAdd, kSub, kMul, kDiv, kPow, kLogSumExp };

enum class Fn : uint8_t {
  kUnary,      // an elementwise UnaryOp (see FunctionUnaryOp)
  kPow,        // pow(a, b), vectorized
  kLogSumExp,  // log_sum_exp(a, b) or log_sum_exp(container)
  kSum,
  kMean,
  kDotProduct,
  kRepVector,
  kRepArray,
  kSize,
  kNumElements,
  kRows,
  kCols,
  kToVector,
  kPi,
  kE,
  kPositiveInfinity,
  kNegativeInfinity,
  kNotANumber,
  kMin,
  kMax,
};

enum class Dist : uint8_t {
  kNormal,
  kStdNormal,
  kStudentT,
  kCauchy,
  kExponential,
  kGamma,
  kLognormal,
  kBeta,
  kUniform,
  kBernoulli,
  kBernoulliLogit,
  kBinomial,
  kBinomialLogit,
  kPoisson,
  kPoissonLog,
};
inline constexpr int kNumDists = 15;

// The values an argument of a distribution may take.
enum class Support : uint8_t {
  kAny,
  kPositive,     // > 0
  kNonNegative,  // >= 0
  kUnit,         // in [0, 1]
  kBinary,       // 0 or 1
};

// "must be positive", ...
const char* SupportText(Support s);
// True when x is in the support (NaN never is, except for kAny).
bool InSupport(Support s, double x);

struct DistInfo {
  const char* name;
  Dist dist;
  bool discrete;  // variate is int (use _lpmf); otherwise real (use _lpdf)
  int num_params;
  const char* params[3];
  bool int_param[3];
  Support variate_support;
  Support param_support[3];
};

const DistInfo& GetDist(Dist d);
// nullptr when `name` is not a distribution.
const DistInfo* FindDist(absl::string_view name);

// The result of checking a call's argument types.
struct CallCheck {
  bool ok = false;
  Fn fn = Fn::kUnary;
  UnaryOp unary = UnaryOp::kExp;  // when fn == kUnary
  Type result;
  std::string error;  // when !ok: what was expected
};

// True when `name` is a builtin function (not a distribution).
bool IsFunction(absl::string_view name);

// Checks a call of the function `name` with arguments of types `args`.
CallCheck CheckCall(absl::string_view name, const std::vector<Type>& args);

// Checks the argument types of distribution `info`: `variate` then `params`. Empty on success,
// else what was expected.
std::string CheckDistArgs(const DistInfo& info, Type variate, const std::vector<Type>& params);

// A nearby known name ("did you mean 'exp'?") or empty: functions when `distributions` is
// false, distributions otherwise.
std::string SuggestName(absl::string_view name, bool distributions);

}  // namespace flowvi::lang

#endif  // FLOWVI_ENGINE_LANG_BUILTINS_H_
