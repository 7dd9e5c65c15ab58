// Size limits on a request's Target (SubmitFit, TargetLogDensity): how much program text and
// how many data values it carries. Measured over the whole message by protobuf reflection, so
// every target form — built-in parameters today, model programs with their data — is bounded
// without this code knowing its fields.
#ifndef FLOWVI_SERVER_REQUEST_LIMITS_H_
#define FLOWVI_SERVER_REQUEST_LIMITS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "flowvi/v1/types.pb.h"
#include "server/limits.h"

namespace flowvi::server {

struct MessageSize {
  // Bytes in every string and bytes field (map keys included).
  int64_t text_bytes = 0;
  // Values in every repeated numeric field.
  int64_t numeric_values = 0;
};

MessageSize MeasureMessage(const google::protobuf::Message& message);

// ResourceExhausted naming the limit and its flag: a program's source or an expression longer than
// limits.model.max_program_bytes, a program's data JSON longer than limits.model.max_data_bytes;
// a built-in whose parameters hold more text than limits.model.max_program_bytes or more numbers
// than limits.max_data_values.
// A data set's values are bounded by limits.max_data_values (and its column names by
// max_program_bytes).
absl::Status CheckTargetSize(const v1::Target& target, const Limits& limits);

// The error for a data set of `values` numbers over `limit` (also used while a stream arrives).
absl::Status DataOverLimit(int64_t values, int64_t limit);

// ResourceExhausted "<field> is <value>, over this server's limit of <limit> (<flag>)": a
// request over one of the server's configured limits (ARCHITECTURE.md's rule, as gRPC's own
// receive limit and the per-job memory budget), unlike a value outside its field's domain.
absl::Status OverLimit(absl::string_view field, int64_t value, int64_t limit,
                       absl::string_view flag);

// The limits every fit shares, variational or maximum-likelihood: the dimension (reported as
// `dim_field`), the flow's layer count, options.batch_size and options.iterations.
absl::Status CheckFitSize(const Limits& limits, absl::string_view dim_field, int dim,
                          int num_layers, int64_t batch_size, int64_t iterations);

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_REQUEST_LIMITS_H_
