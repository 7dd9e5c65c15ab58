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

MessageSize MeasureMessage(const google::protobuf::Message& message) {
  MessageSize size;
  Measure(message, &size);
  return size;
}

absl::Status CheckTargetSize(const v1::Target& target, const Limits& limits) {
  const MessageSize size = MeasureMessage(target);
  if (size.text_bytes > limits.max_program_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("the target holds ", size.text_bytes,
                                                   " bytes of text (program and text parameters), "
                                                   "over this server's limit of ",
                                                   limits.max_program_bytes,
                                                   " (--max_program_kb)"));
  }
  if (size.numeric_values > limits.max_data_values) {
    return absl::InvalidArgumentError(absl::StrCat("the target holds ", size.numeric_values,
                                                   " numbers (data and vector parameters), over "
                                                   "this server's limit of ",
                                                   limits.max_data_values, " (--max_data_values)"));
  }
  return absl::OkStatus();
}

}  // namespace flowvi::server
