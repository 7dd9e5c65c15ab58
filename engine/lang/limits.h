// Resource limits of the model language. Every bound is checked while compiling, before any
// fitting work is queued; exceeding one is ResourceExhausted (the canonical code for "a request
// over a limit", ARCHITECTURE.md) with a message naming the field, e.g.
// "... exceeds ModelLimits::max_tape_rows (250000)". Malformed input is InvalidArgument instead.
#ifndef FLOWVI_ENGINE_LANG_LIMITS_H_
#define FLOWVI_ENGINE_LANG_LIMITS_H_

#include <cstdint>

#include "absl/status/status.h"

namespace flowvi::lang {

struct ModelLimits {
  // Size of the model source (or of the 2-D shorthand expression), in bytes.
  int64_t max_program_bytes = int64_t{1} << 20;  // 1 MiB
  // Size of the data JSON, in bytes.
  int64_t max_data_bytes = int64_t{64} << 20;  // 64 MiB
  // Nesting depth of expressions, statements and JSON arrays, and the length of a chain of
  // postfix indexes or transpositions (bounds every recursive pass over the program).
  int max_nesting = 200;
  // Unconstrained dimension D of the model (the flow's dimension).
  int64_t max_parameters = 100000;
  // Elements of any one value made while compiling (a data array, a declared vector,
  // rep_vector, ...): 4M by default, 32 MB of doubles.
  int64_t max_value_elements = int64_t{1} << 22;
  // Elementary operations executed while compiling: loops and ifs are resolved at compile
  // time (they depend on data only), so this bounds the unrolling work (the default is about a
  // second of compiling at worst).
  int64_t max_compile_work = 20'000'000;
  // Nodes of the compiled tape (and separate terms added to the target).
  int64_t max_tape_nodes = 1'000'000;
  // Rows of the compiled tape: each row holds one value per sample of a batch, so a batch of N
  // samples needs about 3 * 8 * N bytes per row (values, adjoints, partial derivatives); see
  // CompiledModel::bytes_per_sample().
  int64_t max_tape_rows = 250'000;
  // Constants (folded data) held by the tape, in doubles.
  int64_t max_tape_constants = int64_t{1} << 24;

  // OK, or InvalidArgument naming the first field that is not positive (or, for the fields
  // addressed with 32-bit integers, above 2^30).
  absl::Status Validate() const;
};

}  // namespace flowvi::lang

#endif  // FLOWVI_ENGINE_LANG_LIMITS_H_
