// Bayesian logistic regression on a real data set (the breast-cancer table shipped by Debian's
// python3-sklearn, standardized), written in the model language and fitted by a flow, against a
// long NUTS run of the same program in Stan (rstan 2.21, kept as a fixture; the script that made
// it is testdata/make_logistic_fixture.R).
#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "engine/diagnostics/diagnostics.h"
#include "engine/fit/fit_options.h"
#include "engine/fit/fitter.h"
#include "engine/flows/flow.h"
#include "engine/flows/flow_spec.h"
#include "engine/lang/model.h"
#include "gtest/gtest.h"

namespace flowvi {
namespace {

std::string ReadTestdata(const std::string& name) {
  std::ifstream in(std::string(FLOWVI_TESTDATA_DIR) + "/" + name);
  EXPECT_TRUE(in.good()) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct NutsSummary {
  std::string name;
  double mean, sd, mcse;
};

std::vector<NutsSummary> ReadNuts() {
  std::istringstream in(ReadTestdata("breast_cancer_logistic.nuts.txt"));
  std::vector<NutsSummary> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    NutsSummary s;
    fields >> s.name >> s.mean >> s.sd >> s.mcse;
    EXPECT_FALSE(fields.fail()) << line;
    out.push_back(s);
  }
  return out;
}

TEST(LangLogisticTest, PosteriorMeansAgreeWithNuts) {
  const std::vector<NutsSummary> nuts = ReadNuts();
  ASSERT_EQ(nuts.size(), 15u);
  absl::StatusOr<std::unique_ptr<lang::CompiledModel>> model =
      lang::CompileModel(ReadTestdata("breast_cancer_logistic.stan"),
                         ReadTestdata("breast_cancer_logistic.data.json"));
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_EQ((*model)->dim(), 15);
  for (int i = 0; i < 15; ++i) EXPECT_EQ((*model)->names()[i], nuts[i].name);

  std::unique_ptr<lang::ModelTarget> target = (*model)->NewTarget();
  absl::StatusOr<FlowSpec> spec = ParseFlowSpec("planar*4");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<std::unique_ptr<Flow>> flow = Flow::Create(*spec, target->dim());
  ASSERT_TRUE(flow.ok()) << flow.status();
  FitOptions options;
  options.iterations = 6000;
  options.batch_size = 64;
  options.learning_rate = 1e-2;
  options.seed = 3;
  absl::StatusOr<std::unique_ptr<Fitter>> fitter =
      Fitter::Create(flow->get(), target.get(), options);
  ASSERT_TRUE(fitter.ok()) << fitter.status();
  absl::StatusOr<FitSummary> summary = (*fitter)->Run();
  ASSERT_TRUE(summary.ok()) << summary.status();

  // planar*4 corrects enough of the mean-field's shape for PSIS (meanfield alone: k-hat ≈ 1.0,
  // ESS ≈ 20 of 20000 on this posterior).
  DiagnosticsOptions dopt;
  dopt.num_draws = 20000;
  absl::StatusOr<Diagnostics> d = ComputeDiagnostics(**flow, *target, dopt);
  ASSERT_TRUE(d.ok()) << d.status();
  std::printf("ELBO %.3f  k-hat %.3f  ESS %.0f\n", d->elbo, d->k_hat, d->ess);
  // PSIS-weighted means estimate the posterior's; their Monte Carlo error is about sd/sqrt(ESS).
  EXPECT_LT(d->k_hat, 0.7);
  for (int i = 0; i < 15; ++i) {
    const double se = std::sqrt(nuts[i].mcse * nuts[i].mcse + nuts[i].sd * nuts[i].sd / d->ess);
    std::printf("%-9s NUTS %8.4f  flow %8.4f (raw %8.4f)  %5.2f SE\n", nuts[i].name.c_str(),
                nuts[i].mean, d->psis_mean[i], d->mean[i], (d->psis_mean[i] - nuts[i].mean) / se);
    EXPECT_NEAR(d->psis_mean[i], nuts[i].mean, 4 * se) << nuts[i].name;
    EXPECT_NEAR(d->psis_sd[i], nuts[i].sd, 0.1 * nuts[i].sd) << nuts[i].name;
  }
}

}  // namespace
}  // namespace flowvi
