// The language's syntax and semantics, checked through constant models (no parameters: the log
// density is what the program computes at compile time), and the JSON data reader.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <string>

#include "engine/lang/json.h"
#include "engine/lang/model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flowvi {
namespace {

// The log density of a model without parameters.
double Constant(absl::string_view source, absl::string_view data = "") {
  absl::StatusOr<std::unique_ptr<lang::CompiledModel>> model = lang::CompileModel(source, data);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ((*model)->dim(), 0);
  auto target = (*model)->NewTarget();
  RowVector lp(2);
  target->LogDensity(Matrix(0, 2), &lp, nullptr);
  EXPECT_EQ(lp[0], lp[1]);
  return lp[0];
}

// `target += <expr>;`
double Eval(absl::string_view expr, absl::string_view data_decls = "",
            absl::string_view data = "") {
  return Constant(absl::StrCat("data { ", data_decls, " }\nmodel { target += ", expr, "; }"), data);
}

TEST(LangSyntaxTest, OperatorPrecedenceAndAssociativity) {
  EXPECT_EQ(Eval("-2^2"), -4);
  EXPECT_EQ(Eval("2^3^2"), 512);
  EXPECT_EQ(Eval("2^-1"), 0.5);
  EXPECT_EQ(Eval("1 + 2 * 3"), 7);
  EXPECT_EQ(Eval("(1 + 2) * 3"), 9);
  EXPECT_EQ(Eval("10 - 4 - 3"), 3);
  EXPECT_EQ(Eval("7 / 2"), 3);  // int division truncates (as Stan)
  EXPECT_EQ(Eval("-7 / 2"), -3);
  EXPECT_EQ(Eval("7.0 / 2"), 3.5);
  EXPECT_EQ(Eval("7 % 3"), 1);
  EXPECT_EQ(Eval("7 %/% 2"), 3);
  EXPECT_EQ(Eval("1 < 2 && 2 < 3"), 1);
  EXPECT_EQ(Eval("1 < 2 && 3 < 2 || 1"), 1);
  EXPECT_EQ(Eval("!0 + !5"), 1);
  EXPECT_EQ(Eval("1 == 1.0"), 1);
  EXPECT_EQ(Eval("2 != 2"), 0);
  EXPECT_EQ(Eval("1 ? 2 : 3"), 2);
  EXPECT_EQ(Eval("0 ? 2 : 1 ? 4 : 5"), 4);
  EXPECT_EQ(Eval("1e2 + .5 + 2. + 1.5e-1"), 102.65);
  EXPECT_DOUBLE_EQ(Eval("pi() + e()"), M_PI + M_E);
  EXPECT_EQ(Eval("positive_infinity()"), std::numeric_limits<double>::infinity());
}

TEST(LangSyntaxTest, ShortCircuitSkipsTheRightSide) {
  // x[5] would be out of range: && and || do not evaluate it.
  EXPECT_EQ(Eval("(0 && x[5] > 0) + (1 || x[5] > 0)", "vector[2] x;", R"({"x": [1, 2]})"), 1);
}

TEST(LangSyntaxTest, ContainersIndexingAndFunctions) {
  const char* decls =
      "int n; vector[3] v; row_vector[3] r; matrix[2, 3] m; array[2, 3] real a; "
      "array[2] vector[3] av; array[3] int k;";
  const char* data = R"({"n": 3, "v": [1, 2, 3], "r": [4, 5, 6], "m": [[1, 2, 3], [4, 5, 6]],
    "a": [[1, 2, 3], [4, 5, 6]], "av": [[1, 1, 1], [2, 2, 2]], "k": [3, 1, 2]})";
  EXPECT_EQ(Eval("r * v", decls, data), 32);
  EXPECT_EQ(Eval("v' * v", decls, data), 14);
  EXPECT_EQ(Eval("sum(m * v)", decls, data), 14 + 32);
  EXPECT_EQ(Eval("sum(r * m')", decls, data), 32 + 77);
  EXPECT_EQ(Eval("m[2, 3] + m[1][2] + a[2, 1] + av[2, 3]", decls, data), 6 + 2 + 4 + 2);
  EXPECT_EQ(Eval("sum(m[2]) + sum(m[:, 2]) + sum(m[1, 2:3]) + sum(m[2:, 1])", decls, data),
            15 + 7 + 5 + 4);
  EXPECT_EQ(Eval("sum(v[k]) + sum(v[2:]) + sum(v[:1]) + sum(v[3:2])", decls, data), 6 + 5 + 1 + 0);
  EXPECT_EQ(Eval("sum(a[1]) + sum(to_vector(a[:, 2])) + sum(av[1])", decls, data), 6 + 7 + 3);
  EXPECT_EQ(Eval("size(a) + size(v) + num_elements(a) + rows(m) + cols(m) + rows(r) + cols(v)",
                 decls, data),
            2 + 3 + 6 + 2 + 3 + 1 + 1);
  EXPECT_EQ(Eval("sum(k) + min(k) + max(k) + max(2, 7) + min(1.5, -2.0)", decls, data),
            6 + 1 + 3 + 7 - 2);
  EXPECT_EQ(Eval("mean(v) + sum(rep_vector(2, n)) + sum(to_vector(rep_array(1, 4))) + "
                 "sum(rep_array(1, 2, 2)[2])",
                 decls, data),
            2 + 6 + 4 + 2);
  EXPECT_EQ(Eval("to_vector(m)[2]", decls, data), 4);  // column-major, as Stan
  EXPECT_EQ(Eval("sum(v .* v) + sum(v ./ v) + sum(v + 1) + sum(2 * v - v / 2)", decls, data),
            14 + 3 + 9 + 9);
  EXPECT_EQ(Eval("sum({1, 2, 3}) + sum([1, 2, 3]) + [1, 2, 3] * [1, 1, 1]'", decls, data),
            6 + 6 + 6);
  EXPECT_DOUBLE_EQ(Eval("log_sum_exp(v)", decls, data),
                   std::log(std::exp(1) + std::exp(2) + std::exp(3)));
  EXPECT_DOUBLE_EQ(Eval("log_sum_exp(1, 2)", decls, data), std::log(std::exp(1) + std::exp(2)));
  EXPECT_DOUBLE_EQ(Eval("sum(exp(a[2]))", decls, data), std::exp(4) + std::exp(5) + std::exp(6));
  EXPECT_DOUBLE_EQ(Eval("sum(pow(v, 2)) + sum(v .^ 2) + sum(pow(2, v))", decls, data),
                   14 + 14 + 14);
  EXPECT_EQ(Eval("abs(-3) + fabs(-2.5)", decls, data), 5.5);
}

TEST(LangSyntaxTest, StatementsLoopsAndScopes) {
  EXPECT_EQ(Constant(R"(
    transformed data {
      int n = 0;
      real acc = 0;
      vector[4] v;
      for (i in 1:4) v[i] = i;
      for (i in 1:10) {
        if (i > 5) break;
        if (i % 2 == 0) continue;
        n += 1;
        acc += i;
      }
      for (x in v) acc += x;
      for (i in 3:2) acc += 1000;   // empty
      {
        real inner = 100;
        acc += inner;
      }
      acc *= 2;
      acc /= 4;
      acc -= 1;
      v .*= v;
      v ./= rep_vector(2, 4);
    }
    model { target += n + acc + sum(v); })"),
            3 + ((1 + 3 + 5 + 10 + 100) * 2 / 4.0 - 1) + 15);
  // Comments in both styles, the old array syntax, and matrices in loops.
  EXPECT_EQ(Constant(R"(
    data {
      int J;          // count
      real y[J];      /* old syntax */
      matrix[2, 2] m;
    }
    model {
      for (j in 1:J) target += y[j];
      for (x in m) target += x;
    })",
                     R"({"J": 2, "y": [1.5, 2.5], "m": [[1, 2], [3, 4]]})"),
            14);
}

TEST(LangSyntaxTest, BoundKeywordsAreOnlyKeywordsInsideBounds) {
  absl::StatusOr<std::unique_ptr<lang::CompiledModel>> model = lang::CompileModel(
      "data { real lower; real upper; }\n"
      "parameters { real<lower=lower, upper=upper> x; }\n"
      "model { target += lower + upper; }",
      R"({"lower": -1, "upper": 3})");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->transforms()[0].lower, -1);
  EXPECT_EQ((*model)->transforms()[0].upper, 3);
}

TEST(LangSyntaxTest, IfElseChainsResolveAtCompileTime) {
  const char* source = R"(
    data { int k; }
    model {
      if (k == 1) target += 10;
      else if (k == 2) target += 20;
      else target += 30;
    })";
  EXPECT_EQ(Constant(source, R"({"k": 1})"), 10);
  EXPECT_EQ(Constant(source, R"({"k": 2})"), 20);
  EXPECT_EQ(Constant(source, R"({"k": 7})"), 30);
}

TEST(LangSyntaxTest, DistributionsOfConstantsAreFolded) {
  EXPECT_DOUBLE_EQ(Eval("normal_lpdf(1 | 0, 2)"),
                   -0.5 * 0.25 - std::log(2) - 0.5 * std::log(2 * M_PI));
  EXPECT_NEAR(Eval("poisson_lpmf(3 | 2.0)"), 3 * std::log(2) - 2 - std::log(6), 1e-14);
  EXPECT_NEAR(Eval("binomial_lpmf(2 | 5, 0.5)"), std::log(10) + 5 * std::log(0.5), 1e-14);
  EXPECT_EQ(Eval("uniform_lpdf(2 | 0, 1)"), -std::numeric_limits<double>::infinity());
  // `~` with constants adds the same as target += _lpdf (constants included, unlike Stan).
  EXPECT_DOUBLE_EQ(Constant("model { 1 ~ normal(0, 2); }"), Eval("normal_lpdf(1 | 0, 2)"));
  // Empty containers contribute nothing.
  EXPECT_EQ(Constant("data { vector[0] y; } model { y ~ normal(0, 1); }", R"({"y": []})"), 0);
}

TEST(LangJsonTest, CmdStanFormat) {
  const lang::ModelLimits limits;
  absl::StatusOr<lang::DataMap> data = lang::ParseDataJson(R"(
    {
      "N": 3,
      "x": [1.5, -2e-3, 4],
      "m": [[1, 2], [3, 4], [5, 6]],
      "e": [],
      "ee": [[], []],
      "special": ["NaN", "Inf", "-inf", "Infinity", -Infinity, NaN],
      "big": 12345678901234,
      "label": "a \"quoted\" \u0041 string",
      "nested": {"a": [1, {"b": null}], "t": true},
      "esc\u0041ped": 1
    })",
                                                           limits);
  ASSERT_TRUE(data.ok()) << data.status();
  const lang::DataValue& n = data->at("N");
  EXPECT_TRUE(n.shape.empty());
  EXPECT_TRUE(n.all_int);
  EXPECT_EQ(n.ints[0], 3);
  const lang::DataValue& x = data->at("x");
  EXPECT_THAT(x.shape, ::testing::ElementsAre(3));
  EXPECT_FALSE(x.all_int);
  EXPECT_THAT(x.reals, ::testing::ElementsAre(1.5, -2e-3, 4));
  const lang::DataValue& m = data->at("m");
  EXPECT_THAT(m.shape, ::testing::ElementsAre(3, 2));
  EXPECT_THAT(m.ints, ::testing::ElementsAre(1, 2, 3, 4, 5, 6));
  EXPECT_THAT(data->at("e").shape, ::testing::ElementsAre(0));
  EXPECT_THAT(data->at("ee").shape, ::testing::ElementsAre(2, 0));
  const lang::DataValue& sp = data->at("special");
  ASSERT_EQ(sp.reals.size(), 6u);
  EXPECT_TRUE(std::isnan(sp.reals[0]));
  EXPECT_EQ(sp.reals[1], std::numeric_limits<double>::infinity());
  EXPECT_EQ(sp.reals[2], -std::numeric_limits<double>::infinity());
  EXPECT_EQ(sp.reals[4], -std::numeric_limits<double>::infinity());
  EXPECT_EQ(data->at("big").ints[0], 12345678901234);
  EXPECT_EQ(data->at("label").error, "a string");
  EXPECT_EQ(data->at("nested").error, "an object");
  EXPECT_TRUE(data->contains("escAped"));
  // Empty data.
  absl::StatusOr<lang::DataMap> empty = lang::ParseDataJson("  \n ", limits);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(LangJsonTest, UnusedNonNumericMembersAreFineUsedOnesAreNot) {
  EXPECT_EQ(Constant("data { int N; } model { target += N; }",
                     R"({"N": 2, "comment": "ignored", "flags": [true, false]})"),
            2);
  // Integer data may be given to real variables; reals given to int variables are an error.
  EXPECT_EQ(Constant("data { real x; vector[2] v; } model { target += x + sum(v); }",
                     R"({"x": 2, "v": [1, 2]})"),
            5);
  // Zero-size containers may be given as [] whatever their declared shape.
  EXPECT_EQ(Constant("data { int n; matrix[n, 3] m; array[n] vector[2] a; } model { }",
                     R"({"n": 0, "m": [], "a": []})"),
            0);
}

// The fuzzer's seed corpus (tests/engine/run_fuzz.sh) compiles, so that fuzzing starts from
// valid programs; except the deliberate syntax error and the regression inputs (crashes the
// fuzzer once found), which must fail cleanly.
TEST(LangCorpusTest, SeedsCompile) {
  const std::filesystem::path dir = std::filesystem::path(FLOWVI_TESTDATA_DIR) / "lang_corpus";
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string name = entry.path().filename().string();
    const size_t sep = text.find("\n@@DATA@@\n");
    absl::StatusOr<std::unique_ptr<lang::CompiledModel>> model =
        name.ends_with("_shorthand")
            ? lang::CompileExpression2D(text)
            : lang::CompileModel(text.substr(0, sep),
                                 sep == std::string::npos ? "" : text.substr(sep + 10));
    const bool bad = name == "syntax_error" || name.starts_with("regression_");
    EXPECT_EQ(model.ok(), !bad) << name << ": " << model.status();
    ++count;
  }
  EXPECT_GE(count, 8);
}

}  // namespace
}  // namespace flowvi
