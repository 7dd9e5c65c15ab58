#include "engine/lang/builtins.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace flowvi::lang {
namespace {

struct UnaryName {
  const char* name;
  UnaryOp op;
};

constexpr UnaryName kUnaryNames[] = {
    {"exp", UnaryOp::kExp},
    {"log", UnaryOp::kLog},
    {"log1p", UnaryOp::kLog1p},
    {"expm1", UnaryOp::kExpm1},
    {"sqrt", UnaryOp::kSqrt},
    {"square", UnaryOp::kSquare},
    {"abs", UnaryOp::kAbs},
    {"fabs", UnaryOp::kAbs},
    {"sin", UnaryOp::kSin},
    {"cos", UnaryOp::kCos},
    {"tanh", UnaryOp::kTanh},
    {"inv_logit", UnaryOp::kInvLogit},
    {"logit", UnaryOp::kLogit},
    {"log1m", UnaryOp::kLog1m},
    {"log_inv_logit", UnaryOp::kLogInvLogit},
    {"log1m_inv_logit", UnaryOp::kLog1mInvLogit},
    {"inv", UnaryOp::kInv},
    {"lgamma", UnaryOp::kLgamma},
};

struct FnName {
  const char* name;
  Fn fn;
};

constexpr FnName kFnNames[] = {
    {"pow", Fn::kPow},
    {"log_sum_exp", Fn::kLogSumExp},
    {"sum", Fn::kSum},
    {"mean", Fn::kMean},
    {"dot_product", Fn::kDotProduct},
    {"rep_vector", Fn::kRepVector},
    {"rep_array", Fn::kRepArray},
    {"size", Fn::kSize},
    {"num_elements", Fn::kNumElements},
    {"rows", Fn::kRows},
    {"cols", Fn::kCols},
    {"to_vector", Fn::kToVector},
    {"pi", Fn::kPi},
    {"e", Fn::kE},
    {"positive_infinity", Fn::kPositiveInfinity},
    {"negative_infinity", Fn::kNegativeInfinity},
    {"not_a_number", Fn::kNotANumber},
    {"min", Fn::kMin},
    {"max", Fn::kMax},
};

constexpr DistInfo kDists[kNumDists] = {
    {"normal",
     Dist::kNormal,
     false,
     2,
     {"mu", "sigma"},
     {},
     Support::kAny,
     {Support::kAny, Support::kPositive}},
    {"std_normal", Dist::kStdNormal, false, 0, {}, {}, Support::kAny, {}},
    {"student_t",
     Dist::kStudentT,
     false,
     3,
     {"nu", "mu", "sigma"},
     {},
     Support::kAny,
     {Support::kPositive, Support::kAny, Support::kPositive}},
    {"cauchy",
     Dist::kCauchy,
     false,
     2,
     {"mu", "sigma"},
     {},
     Support::kAny,
     {Support::kAny, Support::kPositive}},
    {"exponential",
     Dist::kExponential,
     false,
     1,
     {"beta"},
     {},
     Support::kNonNegative,
     {Support::kPositive}},
    {"gamma",
     Dist::kGamma,
     false,
     2,
     {"alpha", "beta"},
     {},
     Support::kNonNegative,
     {Support::kPositive, Support::kPositive}},
    {"lognormal",
     Dist::kLognormal,
     false,
     2,
     {"mu", "sigma"},
     {},
     Support::kNonNegative,
     {Support::kAny, Support::kPositive}},
    {"beta",
     Dist::kBeta,
     false,
     2,
     {"alpha", "beta"},
     {},
     Support::kUnit,
     {Support::kPositive, Support::kPositive}},
    {"uniform",
     Dist::kUniform,
     false,
     2,
     {"alpha", "beta"},
     {},
     Support::kAny,
     {Support::kAny, Support::kAny}},
    {"bernoulli", Dist::kBernoulli, true, 1, {"theta"}, {}, Support::kBinary, {Support::kUnit}},
    {"bernoulli_logit",
     Dist::kBernoulliLogit,
     true,
     1,
     {"alpha"},
     {},
     Support::kBinary,
     {Support::kAny}},
    {"binomial",
     Dist::kBinomial,
     true,
     2,
     {"N", "theta"},
     {true, false},
     Support::kNonNegative,
     {Support::kNonNegative, Support::kUnit}},
    {"binomial_logit",
     Dist::kBinomialLogit,
     true,
     2,
     {"N", "alpha"},
     {true, false},
     Support::kNonNegative,
     {Support::kNonNegative, Support::kAny}},
    {"poisson",
     Dist::kPoisson,
     true,
     1,
     {"lambda"},
     {},
     Support::kNonNegative,
     {Support::kNonNegative}},
    {"poisson_log",
     Dist::kPoissonLog,
     true,
     1,
     {"alpha"},
     {},
     Support::kNonNegative,
     {Support::kAny}},
};

Type RealBased(Type t) {
  if (t.base == Base::kInt) t.base = Base::kReal;
  return t;
}

// vector, row_vector, or a 1-D array of int or real.
bool IsSequence(Type t) {
  return (t.dims == 0 && (t.base == Base::kVector || t.base == Base::kRowVector)) ||
         (t.dims == 1 && (t.base == Base::kInt || t.base == Base::kReal));
}

bool IsContainer(Type t) { return t.dims > 0 || (t.base != Base::kInt && t.base != Base::kReal); }

std::string Plural(int n, const char* what) {
  return absl::StrCat(n, " ", what, n == 1 ? "" : "s");
}

CallCheck Fail(std::string error) {
  CallCheck c;
  c.error = std::move(error);
  return c;
}

CallCheck Ok(Fn fn, Type result) {
  CallCheck c;
  c.ok = true;
  c.fn = fn;
  c.result = result;
  return c;
}

std::string WrongCount(absl::string_view name, const char* expected, size_t found) {
  return absl::StrCat("wrong number of arguments to '", name, "': expected ", expected, ", found ",
                      found);
}

std::string WrongType(absl::string_view name, size_t i, const char* expected, Type found) {
  return absl::StrCat("argument ", i + 1, " of '", name, "' must be ", expected, ", found ",
                      TypeName(found));
}

int Levenshtein(absl::string_view a, absl::string_view b) {
  std::vector<int> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

const char* SupportText(Support s) {
  switch (s) {
    case Support::kAny:
      return "may be any value";
    case Support::kPositive:
      return "must be positive";
    case Support::kNonNegative:
      return "must be non-negative";
    case Support::kUnit:
      return "must be in [0, 1]";
    case Support::kBinary:
      return "must be 0 or 1";
  }
  return "";
}

bool InSupport(Support s, double x) {
  switch (s) {
    case Support::kAny:
      return true;
    case Support::kPositive:
      return x > 0;
    case Support::kNonNegative:
      return x >= 0;
    case Support::kUnit:
      return x >= 0 && x <= 1;
    case Support::kBinary:
      return x == 0 || x == 1;
  }
  return false;
}

const DistInfo& GetDist(Dist d) { return kDists[static_cast<int>(d)]; }

const DistInfo* FindDist(absl::string_view name) {
  for (const DistInfo& d : kDists) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

bool IsFunction(absl::string_view name) {
  for (const UnaryName& u : kUnaryNames) {
    if (name == u.name) return true;
  }
  for (const FnName& f : kFnNames) {
    if (name == f.name) return true;
  }
  return false;
}

CallCheck CheckCall(absl::string_view name, const std::vector<Type>& args) {
  const size_t n = args.size();
  for (const UnaryName& u : kUnaryNames) {
    if (name != u.name) continue;
    if (n != 1) return Fail(WrongCount(name, "1", n));
    // Every type of the language is accepted: the function applies elementwise.
    CallCheck c = Ok(Fn::kUnary, u.op == UnaryOp::kAbs ? args[0] : RealBased(args[0]));
    c.unary = u.op;
    return c;
  }
  Fn fn = Fn::kUnary;
  bool found = false;
  for (const FnName& f : kFnNames) {
    if (name == f.name) {
      fn = f.fn;
      found = true;
    }
  }
  if (!found) return Fail("unknown function");
  switch (fn) {
    case Fn::kUnary:
      break;
    case Fn::kPow: {
      if (n != 2) return Fail(WrongCount(name, "2", n));
      const Type a = args[0], b = args[1];
      if (a.is_scalar() && b.is_scalar()) return Ok(fn, RealType());
      if (IsContainer(a) && b.is_scalar()) return Ok(fn, RealBased(a));
      if (a.is_scalar() && IsContainer(b)) return Ok(fn, RealBased(b));
      if (RealBased(a) == RealBased(b)) return Ok(fn, RealBased(a));
      return Fail(
          absl::StrCat("arguments of 'pow' must be two scalars, a container and a "
                       "scalar, or two containers of the same type; found ",
                       TypeName(a), " and ", TypeName(b)));
    }
    case Fn::kLogSumExp:
      if (n == 2) {
        for (size_t i = 0; i < 2; ++i) {
          if (!args[i].is_scalar()) return Fail(WrongType(name, i, "int or real", args[i]));
        }
        return Ok(fn, RealType());
      }
      if (n == 1) {
        if (!IsSequence(args[0]) && !(args[0].dims == 0 && args[0].base == Base::kMatrix)) {
          return Fail(WrongType(name, 0, "vector, row_vector, matrix or array[] real", args[0]));
        }
        return Ok(fn, RealType());
      }
      return Fail(WrongCount(name, "1 (a container) or 2 (scalars)", n));
    case Fn::kSum:
    case Fn::kMean:
      if (n != 1) return Fail(WrongCount(name, "1", n));
      if (!IsSequence(args[0]) && !(args[0].dims == 0 && args[0].base == Base::kMatrix)) {
        return Fail(
            WrongType(name, 0, "vector, row_vector, matrix or array[] of int or real", args[0]));
      }
      return Ok(fn, fn == Fn::kSum && args[0].base == Base::kInt ? IntType() : RealType());
    case Fn::kDotProduct:
      if (n != 2) return Fail(WrongCount(name, "2", n));
      for (size_t i = 0; i < 2; ++i) {
        if (!IsSequence(args[i])) {
          return Fail(WrongType(name, i, "vector, row_vector or array[] real", args[i]));
        }
      }
      return Ok(fn, RealType());
    case Fn::kRepVector:
      if (n != 2) return Fail(WrongCount(name, "2", n));
      if (!args[0].is_scalar()) return Fail(WrongType(name, 0, "int or real", args[0]));
      if (!args[1].is_int()) return Fail(WrongType(name, 1, "int", args[1]));
      return Ok(fn, {Base::kVector, 0});
    case Fn::kRepArray: {
      if (n < 2 || n > 4) return Fail(WrongCount(name, "2 to 4", n));
      for (size_t i = 1; i < n; ++i) {
        if (!args[i].is_int()) return Fail(WrongType(name, i, "int", args[i]));
      }
      Type t = args[0];
      t.dims += static_cast<int>(n - 1);
      return Ok(fn, t);
    }
    case Fn::kSize:
      if (n != 1) return Fail(WrongCount(name, "1", n));
      if (args[0].dims == 0 && args[0].is_scalar()) {
        return Fail(WrongType(name, 0, "an array, vector, row_vector or matrix", args[0]));
      }
      return Ok(fn, IntType());
    case Fn::kNumElements:
      if (n != 1) return Fail(WrongCount(name, "1", n));
      return Ok(fn, IntType());
    case Fn::kRows:
    case Fn::kCols:
      if (n != 1) return Fail(WrongCount(name, "1", n));
      if (args[0].dims != 0 || args[0].is_scalar()) {
        return Fail(WrongType(name, 0, "vector, row_vector or matrix", args[0]));
      }
      return Ok(fn, IntType());
    case Fn::kToVector:
      if (n != 1) return Fail(WrongCount(name, "1", n));
      if (!IsSequence(args[0]) && !(args[0].dims == 0 && args[0].base == Base::kMatrix)) {
        return Fail(
            WrongType(name, 0, "vector, row_vector, matrix or array[] of int or real", args[0]));
      }
      return Ok(fn, {Base::kVector, 0});
    case Fn::kPi:
    case Fn::kE:
    case Fn::kPositiveInfinity:
    case Fn::kNegativeInfinity:
    case Fn::kNotANumber:
      if (n != 0) return Fail(WrongCount(name, "0", n));
      return Ok(fn, RealType());
    case Fn::kMin:
    case Fn::kMax:
      if (n == 2) {
        for (size_t i = 0; i < 2; ++i) {
          if (!args[i].is_scalar()) return Fail(WrongType(name, i, "int or real", args[i]));
        }
        return Ok(fn, args[0].is_int() && args[1].is_int() ? IntType() : RealType());
      }
      if (n == 1) {
        if (!IsSequence(args[0])) {
          return Fail(WrongType(name, 0, "vector, row_vector or array[] of int or real", args[0]));
        }
        return Ok(fn, args[0].base == Base::kInt ? IntType() : RealType());
      }
      return Fail(WrongCount(name, "1 or 2", n));
  }
  return Fail("unknown function");
}

std::string CheckDistArgs(const DistInfo& info, Type variate, const std::vector<Type>& params) {
  if (static_cast<int>(params.size()) != info.num_params) {
    std::vector<std::string> names(info.params, info.params + info.num_params);
    return absl::StrCat(
        "wrong number of arguments to '", info.name, "': expected ",
        Plural(info.num_params, "parameter"),
        info.num_params > 0 ? absl::StrCat(" (", absl::StrJoin(names, ", "), ")") : std::string(),
        ", found ", params.size());
  }
  auto ok_type = [](Type t, bool want_int) {
    if (want_int) return t.base == Base::kInt && t.dims <= 1;
    return t.is_scalar() || IsSequence(t);
  };
  if (!ok_type(variate, info.discrete)) {
    return absl::StrCat(
        "the variate of '", info.name, "' must be ",
        info.discrete ? "int or array[] int" : "int, real, vector, row_vector or array[] real",
        ", found ", TypeName(variate));
  }
  for (int i = 0; i < info.num_params; ++i) {
    if (!ok_type(params[i], info.int_param[i])) {
      return absl::StrCat("parameter '", info.params[i], "' of '", info.name, "' must be ",
                          info.int_param[i] ? "int or array[] int"
                                            : "int, real, vector, row_vector or array[] real",
                          ", found ", TypeName(params[i]));
    }
  }
  return "";
}

std::string SuggestName(absl::string_view name, bool distributions) {
  std::string best;
  int best_d = 3;
  auto consider = [&](absl::string_view cand) {
    const int d = Levenshtein(name, cand);
    if (d < best_d) {
      best_d = d;
      best = std::string(cand);
    }
  };
  if (distributions) {
    for (const DistInfo& d : kDists) consider(d.name);
  } else {
    for (const UnaryName& u : kUnaryNames) consider(u.name);
    for (const FnName& f : kFnNames) consider(f.name);
  }
  return best;
}

}  // namespace flowvi::lang
