// Neal's funnel (Neal 2003, "Slice sampling"): a scale hierarchy whose neck defeats
// fixed-step samplers and mean-field approximations alike.
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/targets/builtin.h"
#include "engine/targets/target.h"

namespace flowvi::targets_internal {
namespace {

// v ~ N(0, 3), x_i | v ~ N(0, exp(v / 2)) for i = 1..D-1 (standard deviations).
class FunnelTarget final : public Target {
 public:
  explicit FunnelTarget(int dim) : dim_(dim) {}

  int dim() const override { return dim_; }
  std::optional<double> log_normalizer() const override { return 0.0; }

  std::vector<std::string> coordinate_names() const override {
    std::vector<std::string> names = {"v"};
    for (int i = 1; i < dim_; ++i) names.push_back(absl::StrCat("x", i));
    return names;
  }

  void LogDensity(const Matrix& z, RowVector* log_p, Matrix* grad) override {
    const Eigen::Index n = z.cols();
    const double m = dim_ - 1;  // number of x coordinates
    inv_var_.resize(n);
    sum_sq_.resize(n);
    const auto v = z.row(0).array();
    const auto x = z.bottomRows(dim_ - 1);
    inv_var_.array() = (-v).exp();
    sum_sq_.array() = inv_var_.array() * x.colwise().squaredNorm().array();
    log_p->array() =
        kLogConst - m * kHalfLog2Pi - v.square() / 18.0 - 0.5 * m * v - 0.5 * sum_sq_.array();
    if (grad == nullptr) return;
    grad->row(0).array() = -v / 9.0 - 0.5 * m + 0.5 * sum_sq_.array();
    grad->bottomRows(dim_ - 1).array() = -(x.array().rowwise() * inv_var_.array());
  }

 private:
  static constexpr double kLogConst = -kHalfLog2Pi - 1.0986122886681098;  // N(v | 0, 3)
  int dim_;
  RowVector inv_var_, sum_sq_;  // scratch, resized only when the batch size changes
};

}  // namespace

void AppendFunnelTarget(std::vector<TargetInfo>* catalog) {
  catalog->push_back(TargetInfo{
      .name = "funnel",
      .description =
          "Neal's funnel (Neal 2003, 'Slice sampling'): v ~ N(0, 3), x_i ~ N(0, exp(v / 2)) "
          "for i = 1..D-1 (standard deviations); coordinates (v, x1, ..., x{D-1}). D = dim "
          "(10 by default), normalized (log Z = 0). Its narrow neck at negative v is hard for "
          "mean-field and shallow flows.",
      .params = {ParamSpec{.name = "dim",
                           .type = ParamType::kInt,
                           .default_value = int64_t{10},
                           .description = "Dimension D, 2 <= D <= 1000 (one v and D - 1 x's)."}},
      .factory = [](const ParamMap& params) -> absl::StatusOr<std::unique_ptr<Target>> {
        absl::StatusOr<int> dim = IntParamInRange(params, "funnel", "dim", 2, 1000);
        if (!dim.ok()) return dim.status();
        return std::make_unique<FunnelTarget>(*dim);
      }});
}

}  // namespace flowvi::targets_internal
