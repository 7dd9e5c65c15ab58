#include "server/request_limits.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>

#include <vector>

#include "absl/strings/str_cat.h"

namespace flowvi::server {
namespace {

using google::protobuf::FieldDescriptor;

void Measure(const google::protobuf::Message& m, MessageSize* size) {
  const google::protobuf::Reflection* r = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);  // only the fields that are set
  for (const FieldDescriptor* f : fields) {
    const int n = f->is_repeated() ? r->FieldSize(m, f) : 1;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_MESSAGE:  // maps are repeated entry messages
        for (int i = 0; i < n; ++i) {
          Measure(f->is_repeated() ? r->GetRepeatedMessage(m, f, i) : r->GetMessage(m, f), size);
        }
        break;
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string scratch;
        for (int i = 0; i < n; ++i) {
          size->text_bytes += static_cast<int64_t>(
              f->is_repeated() ? r->GetRepeatedStringReference(m, f, i, &scratch).size()
                               : r->GetStringReference(m, f, &scratch).size());
        }
        break;
      }
      default:
        if (f->is_repeated()) size->numeric_values += n;
        break;
    }
  }
}

}  // namespace

absl::Status OverLimit(absl::string_view field, int64_t value, int64_t limit,
                       absl::string_view flag) {
  return absl::ResourceExhaustedError(
      absl::StrCat(field, " is ", value, ", over this server's limit of ", limit, " (", flag, ")"));
}

absl::Status CheckFitSize(const Limits& limits, absl::string_view dim_field, int dim,
                          int num_layers, int64_t batch_size, int64_t iterations) {
  if (dim > limits.max_dim) return OverLimit(dim_field, dim, limits.max_dim, "--max_dim");
  if (num_layers > limits.max_layers) {
    return OverLimit("the flow's layer count", num_layers, limits.max_layers, "--max_layers");
  }
  if (batch_size > limits.max_batch) {
    return OverLimit("options.batch_size", batch_size, limits.max_batch, "--max_batch");
  }
  if (iterations > limits.max_iterations) {
    return OverLimit("options.iterations", iterations, limits.max_iterations, "--max_iterations");
  }
  return absl::OkStatus();
}

absl::Status DataOverLimit(int64_t values, int64_t limit) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "target.data holds ", values, " values (points x dim), over this server's limit of ", limit,
      " (--max_data_values); subsample the data or ask the operator to raise the limit"));
}

MessageSize MeasureMessage(const google::protobuf::Message& message) {
  MessageSize size;
  Measure(message, &size);
  return size;
}

absl::Status CheckTargetSize(const v1::Target& target, const Limits& limits) {
  auto over = [](absl::string_view what, int64_t size, int64_t limit, absl::string_view flag) {
    return absl::ResourceExhaustedError(absl::StrCat(
        what, " is ", size, " bytes, over this server's limit of ", limit, " (", flag, ")"));
  };
  const int64_t max_text = limits.model.max_program_bytes;
  switch (target.kind_case()) {
    case v1::Target::kProgram: {
      const int64_t source = static_cast<int64_t>(target.program().source().size());
      const int64_t data = static_cast<int64_t>(target.program().data_json().size());
      if (source > max_text)
        return over("target.program.source", source, max_text, "--max_program_kb");
      if (data > limits.model.max_data_bytes) {
        return over("target.program.data_json", data, limits.model.max_data_bytes, "--max_data_mb");
      }
      return absl::OkStatus();
    }
    case v1::Target::kData: {
      const int64_t n = target.data().values_size();
      if (n > limits.max_data_values) return DataOverLimit(n, limits.max_data_values);
      const int64_t names = MeasureMessage(target.data()).text_bytes;
      if (names > max_text) {
        return over("target.data.column_names", names, max_text, "--max_program_kb");
      }
      return absl::OkStatus();
    }
    case v1::Target::kExpression: {
      const int64_t size = static_cast<int64_t>(target.expression().size());
      if (size > max_text) return over("target.expression", size, max_text, "--max_program_kb");
      return absl::OkStatus();
    }
    default:
      break;
  }
  const MessageSize size = MeasureMessage(target);
  if (size.text_bytes > max_text) {
    return absl::ResourceExhaustedError(absl::StrCat("the target holds ", size.text_bytes,
                                                     " bytes of text (names and text parameters), "
                                                     "over this server's limit of ",
                                                     max_text, " (--max_program_kb)"));
  }
  if (size.numeric_values > limits.max_data_values) {
    return absl::ResourceExhaustedError(absl::StrCat("the target holds ", size.numeric_values,
                                                     " numbers (vector parameters), over "
                                                     "this server's limit of ",
                                                     limits.max_data_values,
                                                     " (--max_data_values)"));
  }
  return absl::OkStatus();
}

}  // namespace flowvi::server
