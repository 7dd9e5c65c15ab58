// Per-request limits the server enforces, each a flag (see main.cc and the README's table). A
// request over a limit is RESOURCE_EXHAUSTED naming the field, the limit and its flag (the
// receive limit is answered by gRPC itself, before any handler runs). A value outside its
// field's own domain (n < 1, a negative batch) stays INVALID_ARGUMENT.
#ifndef FLOWVI_SERVER_LIMITS_H_
#define FLOWVI_SERVER_LIMITS_H_

#include <cstdint>

#include "engine/lang/limits.h"

namespace flowvi::server {

struct Limits {
  int max_dim = 1000;                 // target dimension
  int max_layers = 1000;              // layers in a flow spec
  int max_batch = 100000;             // FitOptions.batch_size
  int64_t max_iterations = 10000000;  // FitOptions.iterations
  int64_t max_diagnostic_draws = 1000000;
  int64_t max_samples = 100000000;  // SampleRequest.n
  int64_t max_points = 1000000;     // LogDensityRequest points
  int max_receive_message_bytes = 64 << 20;
  // Numbers a built-in target's parameters (vector parameters) or a data set (points x dim,
  // inline or streamed) may hold. Programs are bounded by model.max_program_bytes and
  // model.max_data_bytes instead (see request_limits.h).
  int64_t max_data_values = 4 << 20;
  // Estimated working memory of one fit (batch x dimension x layers); over it a submission is
  // RESOURCE_EXHAUSTED.
  int64_t max_job_memory_bytes = int64_t{1} << 30;
  // Model programs and their data. Program and data sizes are checked with the other request
  // sizes (RESOURCE_EXHAUSTED naming the flag); what the compiled program would need (tape size,
  // compile work) is RESOURCE_EXHAUSTED from the compiler, naming the limit.
  lang::ModelLimits model;
};

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_LIMITS_H_
