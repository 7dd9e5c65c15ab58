// Every class of error of the model language, with its code and message: syntax and type
// errors, unknown functions and distributions, wrong argument counts and types, dimension
// mismatches, missing or ill-typed data, out-of-support values (at compile time and at run
// time), conditions on parameters, and each resource limit. Located errors must carry
// "line:col: ", the offending line and a caret under the column.
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/lang/model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flowvi {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

struct ErrorCase {
  std::string name;
  std::string source;
  std::string data;
  int line;
  int col;
  std::string message;  // a substring of the first line
};

void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

// Checks that `status` is InvalidArgument (or `code`) pointing at line:col of `text`.
void ExpectLocated(const absl::Status& status, absl::string_view text, int line, int col,
                   absl::string_view message, absl::string_view prefix = "",
                   absl::StatusCode code = absl::StatusCode::kInvalidArgument) {
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), code) << status;
  const std::vector<std::string> lines = absl::StrSplit(status.message(), '\n');
  ASSERT_EQ(lines.size(), 3u) << status.message();
  EXPECT_THAT(lines[0], StartsWith(absl::StrCat(prefix, line, ":", col, ": "))) << status.message();
  EXPECT_THAT(lines[0], HasSubstr(message)) << status.message();
  const std::vector<std::string> src = absl::StrSplit(text, '\n');
  ASSERT_LE(line, static_cast<int>(src.size()));
  EXPECT_EQ(lines[1], src[line - 1]);
  EXPECT_EQ(lines[2], absl::StrCat(std::string(col - 1, ' '), "^"));
}

class LangErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(LangErrorTest, IsInvalidArgumentAtTheRightPlace) {
  const ErrorCase& c = GetParam();
  absl::StatusOr<std::unique_ptr<lang::CompiledModel>> model = lang::CompileModel(c.source, c.data);
  ExpectLocated(model.status(), c.source, c.line, c.col, c.message);
}

const char kSchoolsData[] = R"({"J": 3, "y": [1, 2, 3], "sigma": [1, 1, 2]})";

std::vector<ErrorCase> Cases() {
  return {
      // ---- Syntax -------------------------------------------------------------------------
      {"missing_semicolon", "parameters {\n  real mu\n  real sigma;\n}", "", 2, 10,
       "expected ';' to end the declaration, found 'real'"},
      {"missing_semicolon_same_line", "model {\n  target += 1 target += 2;\n}", "", 2, 15,
       "expected ';' to end the statement, found 'target'"},
      {"unknown_block", "modle {\n}", "", 1, 1, "expected a block ('data'"},
      {"blocks_out_of_order", "model { }\nparameters { real x; }", "", 2, 1,
       "block 'parameters' is repeated or out of order"},
      {"missing_operand", "model {\n  target += 1 +;\n}", "", 2, 16,
       "expected an expression, found ';'"},
      {"stray_character", "model {\n  target += 1 @ 2;\n}", "", 2, 15, "unexpected character '@'"},
      {"unterminated_comment", "model {\n  /* never closed\n}", "", 2, 3,
       "unterminated comment: expected '*/'"},
      {"unclosed_block", "model {\n  target += 1;\n", "", 3, 1,
       "expected '}' to close the model block, found end of input"},
      {"lpdf_needs_bar", "parameters { real x; }\nmodel { target += normal_lpdf(x, 0, 1); }", "", 2,
       32, "expected '|' after the first argument of 'normal_lpdf'"},
      {"while_unsupported", "model {\n  while (1) { }\n}", "", 2, 3,
       "while loops are not supported"},
      {"generated_quantities", "model { }\ngenerated quantities { }", "", 2, 1,
       "'generated quantities' blocks are not supported"},
      {"reserved_name", "parameters { real for; }", "", 1, 19, "'for' is a reserved word"},
      {"data_initialized", "data { real x = 1; }", "", 1, 17,
       "data variables cannot be given a value"},
      {"int_literal_too_large", "model { target += 99999999999; }", "", 1, 19,
       "integer literal out of range"},
      {"bad_bound_keyword", "parameters { real<lowr=0> x; }", "", 1, 19,
       "expected 'lower' or 'upper' in the bounds, found 'lowr'"},
      {"not_an_lvalue", "parameters { real x; }\nmodel { real y; (y + 1) = x; }", "", 2, 20,
       "expected a variable or an indexed variable on the left"},
      // ---- Names and types ----------------------------------------------------------------
      {"unknown_function", "parameters { real x; }\nmodel {\n  target += expp(x);\n}", "", 3, 13,
       "unknown function 'expp'; did you mean 'exp'?"},
      {"unknown_distribution", "parameters { real x; }\nmodel {\n  x ~ norml(0, 1);\n}", "", 3, 7,
       "unknown distribution 'norml'; did you mean 'normal'?"},
      {"unknown_lpdf", "parameters { real x; }\nmodel { target += nromal_lpdf(x | 0, 1); }", "", 2,
       19, "unknown distribution 'nromal' in 'nromal_lpdf'; did you mean 'normal_lpdf'?"},
      {"distribution_as_function", "parameters { real x; }\nmodel { target += normal(x, 1); }", "",
       2, 19, "'normal' is a distribution"},
      {"lpmf_for_continuous", "parameters { real x; }\nmodel { target += normal_lpmf(x | 0, 1); }",
       "", 2, 19, "'normal' is a continuous distribution: use 'normal_lpdf'"},
      {"unknown_variable", "model {\n  target += sigma;\n}", "", 2, 13, "unknown variable 'sigma'"},
      {"wrong_count_distribution", "parameters { real x; }\nmodel {\n  x ~ normal(0);\n}", "", 3, 7,
       "wrong number of arguments to 'normal': expected 2 parameters (mu, sigma), found 1"},
      {"wrong_count_function", "parameters { real x; }\nmodel { target += pow(x); }", "", 2, 19,
       "wrong number of arguments to 'pow': expected 2, found 1"},
      {"wrong_argument_type", "parameters { real x; }\nmodel { target += dot_product(x, x); }", "",
       2, 19, "argument 1 of 'dot_product' must be vector, row_vector or array[] real, found real"},
      {"wrong_variate_type",
       "data { real y; }\nparameters { real p; }\nmodel { y ~ bernoulli(p); }", R"({"y": 1})", 3,
       13, "the variate of 'bernoulli' must be int or array[] int, found real"},
      {"vector_times_vector", "parameters { vector[2] v; }\nmodel { target += sum(v * v); }", "", 2,
       25, "operator '*' is the matrix product"},
      {"array_arithmetic", "data { array[2] real a; }\nmodel { target += sum(a + a); }",
       R"({"a": [1, 2]})", 2, 25, "does not apply to arrays"},
      {"assign_wrong_type", "model {\n  real x;\n  x = {1.0, 2.0};\n}", "", 3, 5,
       "cannot assign a value of type array[] real to 'x' of type real"},
      {"assign_real_to_int", "model {\n  int n;\n  n = 2.5;\n}", "", 3, 5,
       "cannot assign a value of type real to 'n' of type int"},
      {"assign_to_data", "data { real y; }\nmodel { y = 2; }", R"({"y": 1})", 2, 9,
       "cannot assign to data variable 'y'"},
      {"assign_to_parameter", "parameters { real mu; }\nmodel { mu = 2; }", "", 2, 9,
       "cannot assign to parameter 'mu'"},
      {"assign_to_loop_variable", "model {\n  for (i in 1:3) i = 2;\n}", "", 2, 18,
       "cannot assign to loop variable 'i'"},
      {"target_outside_model",
       "parameters { real x; }\ntransformed parameters {\n  target += x;\n}", "", 3, 3,
       "target can only be incremented in the model block"},
      {"int_parameter", "parameters {\n  int n;\n}", "", 2, 3, "must be real-valued"},
      {"bounds_on_local", "model {\n  real<lower=0> x = 1;\n}", "", 2, 7,
       "local variables cannot have bounds"},
      {"redeclared", "parameters { real x; }\nmodel { real x; }", "", 2, 14,
       "'x' is already declared (parameter at 1:19)"},
      {"size_not_int", "parameters { vector[2.5] v; }", "", 1, 21, "size must be int, found real"},
      {"index_not_int", "parameters { vector[2] v; }\nmodel { target += v[1.0]; }", "", 2, 21,
       "index must be int, array[] int or a range lo:hi, found real"},
      {"too_many_indexes", "parameters { vector[2] v; }\nmodel { target += v[1, 2]; }", "", 2, 24,
       "too many indexes for a value of type vector"},
      {"break_outside_loop", "model {\n  break;\n}", "", 2, 3, "'break' outside a loop"},
      // ---- Compile time: sizes, indexes, data ---------------------------------------------
      {"dimension_mismatch_operator",
       "parameters { vector[3] a; vector[2] b; }\nmodel {\n  target += sum(a + b);\n}", "", 3, 19,
       "dimension mismatch: vector[3] and vector[2]"},
      {"dimension_mismatch_distribution",
       "data { int J; vector[J] y; }\nparameters { vector[2] theta; }\nmodel {\n  y ~ "
       "normal(theta, "
       "1);\n}",
       R"({"J": 3, "y": [1, 2, 3]})", 4, 7,
       "dimension mismatch in 'normal': the variate has 3 elements but 'mu' has 2"},
      {"dimension_mismatch_assign", "parameters { vector[3] a; }\nmodel {\n  vector[2] b = a;\n}",
       "", 3, 17, "dimension mismatch: cannot assign a vector[3] to 'b' of shape vector[2]"},
      {"dimension_mismatch_matvec",
       "data { matrix[2, 3] X; }\nparameters { vector[2] b; }\nmodel { target += sum(X * b); }",
       R"({"X": [[1, 2, 3], [4, 5, 6]]})", 3, 25, "dimension mismatch in '*'"},
      {"index_out_of_range",
       "parameters { vector[8] theta; }\nmodel {\n  for (j in 1:9) target += theta[j];\n}", "", 3,
       34, "index 9 out of range for 'theta': expected 1 to 8"},
      {"negative_size", "data { int n; }\nparameters { vector[n] v; }", R"({"n": -2})", 2, 21,
       "size must be non-negative, found -2"},
      {"missing_data", "data {\n  int J;\n  vector[J] y;\n}", R"({"J": 2})", 3, 13,
       "missing data: expected a member \"y\" in the data JSON (vector[2])"},
      {"data_not_integer", "data {\n  int N;\n}", R"({"N": 2.5})", 2, 7,
       "data for 'N' must be an integer"},
      {"data_wrong_shape", "data {\n  int J;\n  vector[J] y;\n}", R"({"J": 3, "y": [1, 2]})", 3, 13,
       "data for 'y' is an array of 2 numbers: expected an array of 3 numbers for vector[3]"},
      {"data_scalar_for_vector", "data {\n  vector[2] y;\n}", R"({"y": 1})", 2, 13,
       "data for 'y' is a single number: expected an array of 2 numbers"},
      {"data_not_numeric", "data {\n  real y;\n}", R"({"y": "three"})", 2, 8,
       "must be a number or a rectangular array of numbers, found a string"},
      {"data_ragged", "data {\n  matrix[2, 2] m;\n}", R"({"m": [[1, 2], [3]]})", 2, 16,
       "found a ragged array"},
      {"data_int_out_of_range", "data {\n  int n;\n}", R"({"n": 3000000000})", 2, 7,
       "out of the range of int"},
      {"data_int_beyond_int64", "data {\n  array[2] int n;\n}",
       R"({"n": [1, 100000000000000000000]})", 2, 16, "data for 'n[2]' is 1e+20: out of the range"},
      {"data_int_written_as_real", "data {\n  array[3] int n;\n}", R"({"n": [1, 2, 3.0]})", 2, 16,
       "data for 'n[3]' must be an integer (written without '.' or an exponent), found 3"},
      {"data_below_bound", "data {\n  int<lower=0> N;\n}", R"({"N": -1})", 2, 16,
       "data 'N' is -1, below its lower bound 0"},
      {"data_above_bound", "data {\n  array[2] real<upper=1> p;\n}", R"({"p": [0.5, 1.5]})", 2, 26,
       "data 'p[2]' is 1.5, above its upper bound 1"},
      {"transformed_data_bound", "transformed data {\n  real<lower=0> s = -1;\n}", "", 2, 17,
       "transformed data 's' is -1, below its lower bound 0"},
      {"constant_out_of_support", "parameters { real x; }\nmodel {\n  x ~ normal(0, -1);\n}", "", 3,
       7, "normal: 'sigma' must be positive, found -1"},
      {"data_variate_out_of_support",
       "data { array[3] int y; }\nparameters { real a; }\nmodel { y ~ bernoulli_logit(a); }",
       R"({"y": [0, 2, 1]})", 3, 13,
       "bernoulli_logit: the variate must be 0 or 1, found 2 (element 2)"},
      {"binomial_successes_exceed_trials",
       "data { int k; int n; }\nparameters { real a; }\nmodel { k ~ binomial_logit(n, a); }",
       R"({"k": 5, "n": 3})", 3, 13, "the variate (successes) must not exceed N, found 5 > 3"},
      {"uniform_bounds_reversed", "parameters { real x; }\nmodel { x ~ uniform(1, 0); }", "", 2, 13,
       "uniform: 'beta' must be greater than 'alpha'"},
      {"condition_on_parameter", "parameters { real x; }\nmodel {\n  if (x > 0) target += x;\n}",
       "", 3, 9, "comparison '>' of a value that depends on parameters"},
      {"ternary_on_parameter", "parameters { real x; }\nmodel { target += x ? 1 : 0; }", "", 2, 19,
       "condition depends on parameters"},
      {"bound_depends_on_parameter", "parameters { real mu; real<lower=mu> x; }", "", 1, 34,
       "bounds must not depend on parameters"},
      {"reversed_bounds", "parameters { real<lower=1, upper=0> p; }", "", 1, 18,
       "lower bound 1 must be below upper bound 0 for 'p'"},
      {"integer_division_by_zero", "data { int n; }\nmodel { target += 1 / n; }", R"({"n": 0})", 2,
       21, "integer division by zero"},
      {"min_of_parameters", "parameters { real x; }\nmodel { target += max(x, 1.0); }", "", 2, 19,
       "'max' of values that depend on parameters is not supported"},
  };
}

INSTANTIATE_TEST_SUITE_P(LangErrors, LangErrorTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<ErrorCase>& param_info) {
                           return param_info.param.name;
                         });

TEST(LangDataErrorTest, JsonSyntaxErrorsPointIntoTheData) {
  const std::string data = "{\n  \"N\": 3,\n}";
  absl::StatusOr<std::unique_ptr<lang::CompiledModel>> model =
      lang::CompileModel("data { int N; }", data);
  ExpectLocated(model.status(), data, 3, 1, "expected a string in double quotes", "data ");
  const std::string dup = R"({"N": 1, "N": 2})";
  model = lang::CompileModel("data { int N; }", dup);
  ExpectLocated(model.status(), dup, 1, 10, "duplicate member 'N'", "data ");
  const std::string number = R"({"N": 01})";
  model = lang::CompileModel("data { int N; }", number);
  ExpectLocated(model.status(), number, 1, 7, "malformed number", "data ");
  const std::string not_object = "[1, 2]";
  model = lang::CompileModel("data { int N; }", not_object);
  ExpectLocated(model.status(), not_object, 1, 1, "the data must be a JSON object", "data ");
}

TEST(LangShorthandTest, ErrorsPointIntoTheExpression) {
  const std::string expr = "-0.5 * (z1^2 + z3^2)";
  absl::StatusOr<std::unique_ptr<lang::CompiledModel>> model = lang::CompileExpression2D(expr);
  ExpectLocated(model.status(), expr, 1, 16, "unknown variable 'z3'");
  const std::string bad = "z1 + * z2";
  model = lang::CompileExpression2D(bad);
  ExpectLocated(model.status(), bad, 1, 6, "expected an expression, found '*'");
  const std::string trailing = "z1 z2";
  model = lang::CompileExpression2D(trailing);
  ExpectLocated(model.status(), trailing, 1, 4,
                "expected an operator or the end of the expression, found 'z2'");
}

// ---- Run time -------------------------------------------------------------------------------

TEST(LangRuntimeErrorTest, OutOfSupportParameterGivesMinusInfinityAndAMessage) {
  const std::string source = "parameters { real s; real m; }\nmodel {\n  1 ~ normal(m, s);\n}";
  absl::StatusOr<std::unique_ptr<lang::CompiledModel>> model = lang::CompileModel(source, "");
  ASSERT_TRUE(model.ok()) << model.status();
  auto target = (*model)->NewTarget();
  Matrix z(2, 3);
  z << 1.0, -0.5, 2.0,  //
      0.0, 0.0, 0.0;
  RowVector lp(3);
  Matrix grad(2, 3);
  target->LogDensity(z, &lp, &grad);
  EXPECT_TRUE(std::isfinite(lp[0]));
  EXPECT_EQ(lp[1], -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isfinite(lp[2]));
  EXPECT_EQ(grad.col(1), Vector::Zero(2));
  EXPECT_TRUE(grad.col(0).allFinite());
  ExpectLocated(target->last_error(), source, 3, 7,
                "normal: 'sigma' must be positive, found -0.5 (batch column 1)");
  // The next call without bad samples clears the error.
  z(0, 1) = 0.5;
  target->LogDensity(z, &lp, &grad);
  EXPECT_TRUE(target->last_error().ok());
  EXPECT_TRUE(lp.allFinite());
}

TEST(LangRuntimeErrorTest, TransformedParameterOutsideItsBounds) {
  const std::string source =
      "parameters { vector[2] x; }\ntransformed parameters {\n  vector<lower=0>[2] s = x;\n}\n"
      "model { x ~ normal(0, 1); }";
  absl::StatusOr<std::unique_ptr<lang::CompiledModel>> model = lang::CompileModel(source, "");
  ASSERT_TRUE(model.ok()) << model.status();
  auto target = (*model)->NewTarget();
  Matrix z(2, 2);
  z << 1.0, 0.5,  //
      0.5, -2.0;
  RowVector lp(2);
  target->LogDensity(z, &lp, nullptr);
  EXPECT_TRUE(std::isfinite(lp[0]));
  EXPECT_EQ(lp[1], -std::numeric_limits<double>::infinity());
  ExpectLocated(target->last_error(), source, 3, 22,
                "transformed parameter 's[2]' must be within its bounds (lower 0, upper none), "
                "found -2 (batch column 1)");
}

TEST(LangRuntimeErrorTest, VariateOutsideSupportAndUniform) {
  const std::string source =
      "parameters { real y; real b; }\nmodel {\n  y ~ exponential(1);\n  b ~ uniform(0, 1);\n}";
  absl::StatusOr<std::unique_ptr<lang::CompiledModel>> model = lang::CompileModel(source, "");
  ASSERT_TRUE(model.ok()) << model.status();
  auto target = (*model)->NewTarget();
  Matrix z(2, 2);
  z << 0.5, -1.0,  //
      1.5, 0.5;
  RowVector lp(2);
  target->LogDensity(z, &lp, nullptr);
  // Column 0: b outside [0, 1] is zero density (as Stan), not an error.
  EXPECT_EQ(lp[0], -std::numeric_limits<double>::infinity());
  EXPECT_EQ(lp[1], -std::numeric_limits<double>::infinity());
  ExpectLocated(target->last_error(), source, 3, 7,
                "exponential: the variate must be non-negative, found -1 (batch column 1)");
}

// ---- Limits ---------------------------------------------------------------------------------

void ExpectLimit(const absl::Status& status, absl::string_view field) {
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(absl::StrCat("ModelLimits::", field)));
}

TEST(LangLimitsTest, EachLimitIsResourceExhaustedNamingIt) {
  lang::ModelLimits limits;
  limits.max_program_bytes = 20;
  ExpectLimit(lang::CompileModel("parameters { real x; } model { }", "", limits).status(),
              "max_program_bytes");
  ExpectLimit(lang::CompileExpression2D("z1 + z2 + z1 + z2 + z1 + z2", limits).status(),
              "max_program_bytes");

  limits = {};
  limits.max_data_bytes = 10;
  ExpectLimit(lang::CompileModel("data { int N; }", R"({"N": 12345678})", limits).status(),
              "max_data_bytes");

  limits = {};
  limits.max_parameters = 5;
  ExpectLimit(lang::CompileModel("parameters { vector[3] a; vector[3] b; }", "", limits).status(),
              "max_parameters");

  limits = {};
  limits.max_tape_rows = 10;
  ExpectLimit(
      lang::CompileModel("parameters { vector[6] a; } model { a ~ normal(exp(a), 1); }", "", limits)
          .status(),
      "max_tape_rows");

  limits = {};
  limits.max_tape_nodes = 3;
  ExpectLimit(lang::CompileModel(
                  "parameters { real a; } model { target += exp(exp(exp(exp(a)))); }", "", limits)
                  .status(),
              "max_tape_nodes");

  limits = {};
  limits.max_compile_work = 100000;
  ExpectLimit(lang::CompileModel("model { for (i in 1:1000000) { } }", "", limits).status(),
              "max_compile_work");

  limits = {};
  limits.max_value_elements = 1000;
  ExpectLimit(lang::CompileModel("model { vector[5000] v; }", "", limits).status(),
              "max_value_elements");
  ExpectLimit(
      lang::CompileModel("model { target += sum(rep_vector(1, 100000)); }", "", limits).status(),
      "max_value_elements");

  limits = {};
  limits.max_tape_constants = 10;
  ExpectLimit(
      lang::CompileModel("data { vector[20] y; } parameters { real m; } "
                         "model { y ~ normal(m, 1); }",
                         R"({"y": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]})", limits)
          .status(),
      "max_tape_constants");

  limits = {};
  limits.max_nesting = 50;
  const std::string deep =
      absl::StrCat("model { target += ", std::string(60, '('), "1", std::string(60, ')'), "; }");
  ExpectLimit(lang::CompileModel(deep, "", limits).status(), "max_nesting");
  const std::string deep_data =
      absl::StrCat("{\"x\": ", std::string(60, '['), std::string(60, ']'), "}");
  ExpectLimit(lang::CompileModel("model { }", deep_data, limits).status(), "max_nesting");

  limits = {};
  limits.max_tape_rows = -1;
  EXPECT_EQ(lang::CompileModel("model { }", "", limits).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(LangLimitsTest, DefaultLimitsStopRunawayPrograms) {
  // Each of these must end quickly with an error, not run for long or exhaust memory.
  const char* programs[] = {
      "model { for (i in 1:2000000000) { } }",
      "model { for (i in 1:100000) for (j in 1:100000) { } }",
      "model { vector[2000000000] v; }",
      "model { target += sum(rep_vector(1.0, 2147483647)); }",
      "parameters { vector[1000000] v; }",
      "parameters { real x; } model { for (i in 1:300000) target += exp(x); }",
      "parameters { real x; } model { for (i in 1:3000000) target += x; }",
      "model { array[100000, 100000] real a; }",
  };
  for (const char* p : programs) {
    absl::StatusOr<std::unique_ptr<lang::CompiledModel>> model = lang::CompileModel(p, "");
    EXPECT_EQ(model.status().code(), absl::StatusCode::kResourceExhausted) << p << "\n"
                                                                           << model.status();
  }
}

TEST(LangLimitsTest, LongChainsCompileWithoutDeepRecursion) {
  // a + a + ... is a left-deep tree as deep as it is long: every pass must walk it iteratively
  // (this one is far deeper than any stack could recurse on).
  std::string sum = "1";
  for (int i = 0; i < 200000; ++i) sum += " + 1";
  absl::StatusOr<std::unique_ptr<lang::CompiledModel>> model =
      lang::CompileModel(absl::StrCat("model { target += ", sum, "; }"), "");
  ASSERT_TRUE(model.ok()) << model.status();
  RowVector lp(1);
  (*model)->NewTarget()->LogDensity(Matrix(0, 1), &lp, nullptr);
  EXPECT_EQ(lp[0], 200001);
  std::string logic = "1";
  for (int i = 0; i < 100000; ++i) logic += " && 1 || 0";
  EXPECT_TRUE(lang::CompileModel(absl::StrCat("model { if (", logic, ") target += 1; }"), "").ok());
  std::string xs = "x";
  for (int i = 0; i < 50000; ++i) xs += " * 1.5 + x";
  model =
      lang::CompileModel(absl::StrCat("parameters { real x; } model { target += ", xs, "; }"), "");
  ASSERT_TRUE(model.ok()) << model.status();
  // Postfix chains are bounded like nesting.
  ExpectLimit(lang::CompileModel(absl::StrCat("parameters { vector[2] v; } model { target += v",
                                              std::string(100000, '\''), " * v; }"),
                                 "")
                  .status(),
              "max_nesting");
  ExpectLimit(lang::CompileModel(absl::StrCat("data { vector[2] v; } model { target += v",
                                              std::string(30000, '['), "1]; }"),
                                 R"({"v": [1, 2]})")
                  .status(),
              "max_nesting");
}

TEST(LangLimitsTest, LargeUnrolledModelsCompile) {
  // 20000 unrolled `~` statements, in a source made long by a comment: compiling must stay
  // linear in both (each statement's error site is shared, lines are indexed once). About
  // 0.1 s in a release build; the bound only guards against a hang (sanitizers, loaded CI).
  std::string data = R"({"N": 20000, "x": [)";
  std::string y = "], \"y\": [";
  for (int i = 0; i < 20000; ++i) {
    absl::StrAppend(&data, i > 0 ? "," : "", (i % 17) * 0.1);
    absl::StrAppend(&y, i > 0 ? "," : "", (i % 13) * 0.2);
  }
  absl::StrAppend(&data, y, "]}");
  const std::string source = absl::StrCat("/*", std::string(500000, '-'), "*/\n", R"(
    data { int N; vector[N] x; vector[N] y; }
    parameters { real a; real b; real<lower=0> s; }
    model {
      for (n in 1:N) y[n] ~ normal(a + b * x[n], s);
    })");
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<lang::CompiledModel>> model = lang::CompileModel(source, data);
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_LT(seconds, 60.0);
  // The vectorized form computes the same density.
  absl::StatusOr<std::unique_ptr<lang::CompiledModel>> vectorized = lang::CompileModel(R"(
    data { int N; vector[N] x; vector[N] y; }
    parameters { real a; real b; real<lower=0> s; }
    model { y ~ normal(a + b * x, s); })",
                                                                                       data);
  ASSERT_TRUE(vectorized.ok()) << vectorized.status();
  Matrix z(3, 2);
  z << 0.1, -0.3, 0.5, 0.2, 0.3, -0.1;
  RowVector lp1(2), lp2(2);
  Matrix g1(3, 2), g2(3, 2);
  (*model)->NewTarget()->LogDensity(z, &lp1, &g1);
  (*vectorized)->NewTarget()->LogDensity(z, &lp2, &g2);
  for (int j = 0; j < 2; ++j) EXPECT_NEAR(lp1[j], lp2[j], 1e-9 * std::abs(lp2[j]));
  EXPECT_LT((g1 - g2).cwiseAbs().maxCoeff(), 1e-8 * g2.cwiseAbs().maxCoeff());
}

TEST(LangErrorTest, OddButValidPrograms) {
  for (const char* p : {"", "// nothing\n", "model { }", "parameters { } model { ; ; { } }",
                        "data { int N; } model { }"}) {
    absl::StatusOr<std::unique_ptr<lang::CompiledModel>> model =
        lang::CompileModel(p, R"({"N": 1})");
    EXPECT_TRUE(model.ok()) << p << ": " << model.status();
  }
}

}  // namespace
}  // namespace flowvi
