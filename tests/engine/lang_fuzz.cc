// libFuzzer target for the model language: lexer, parser, type checker, data reader, compiler and
// tape. An input is a model source, optionally followed by a line "@@DATA@@" and CmdStan JSON
// data. Whatever the input, compiling must return a status (never crash or hang), and a model
// that compiles must evaluate to finite-or-infinite values without crashing.
//
// Built only with clang and -DFLOWVI_FUZZ=ON; run it with tests/engine/run_fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/strings/string_view.h"
#include "engine/core/types.h"
#include "engine/lang/model.h"

namespace {

constexpr std::string_view kSeparator = "\n@@DATA@@\n";

// Small limits: each input must run in milliseconds.
flowvi::lang::ModelLimits FuzzLimits() {
  flowvi::lang::ModelLimits limits;
  limits.max_program_bytes = 1 << 16;
  limits.max_data_bytes = 1 << 16;
  limits.max_nesting = 100;
  limits.max_parameters = 1000;
  limits.max_value_elements = 1 << 16;
  limits.max_compile_work = 200000;
  limits.max_tape_nodes = 20000;
  limits.max_tape_rows = 20000;
  limits.max_tape_constants = 1 << 16;
  return limits;
}

void Exercise(const flowvi::lang::CompiledModel& model) {
  auto target = model.NewTarget();
  const int d = target->dim();
  flowvi::Matrix z(d, 3);
  for (int i = 0; i < d; ++i) {
    z(i, 0) = 0.0;
    z(i, 1) = 0.5 * (i % 5) - 1.0;
    z(i, 2) = 3.0 - i;
  }
  flowvi::RowVector log_p(3);
  flowvi::Matrix grad(d, 3);
  target->LogDensity(z, &log_p, &grad);
  target->LogDensity(z, &log_p, nullptr);
  (void)target->last_error();
  flowvi::Matrix x, u;
  model.ConstrainBatch(z, &x);
  (void)model.UnconstrainBatch(x, &u);
  flowvi::RowVector jac;
  model.LogJacobianBatch(z, &jac);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t sep = input.find(kSeparator);
  const std::string_view source = input.substr(0, sep);
  const std::string_view json =
      sep == std::string_view::npos ? std::string_view() : input.substr(sep + kSeparator.size());
  const flowvi::lang::ModelLimits limits = FuzzLimits();
  auto model = flowvi::lang::CompileModel(absl::string_view(source.data(), source.size()),
                                          absl::string_view(json.data(), json.size()), limits);
  if (model.ok()) Exercise(**model);
  if (sep == std::string_view::npos && size < 4096) {
    auto expr =
        flowvi::lang::CompileExpression2D(absl::string_view(source.data(), source.size()), limits);
    if (expr.ok()) Exercise(**expr);
  }
  return 0;
}
