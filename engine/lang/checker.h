// The type checker: resolves names to storage slots, checks every expression's type and every
// statement against the rules of its block, and resolves calls to builtins. It knows no sizes
// or values (those come with the data, when compiling); what it reports is independent of them.
#ifndef FLOWVI_ENGINE_LANG_CHECKER_H_
#define FLOWVI_ENGINE_LANG_CHECKER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/lang/ast.h"

namespace flowvi::lang {

enum class VarKind : uint8_t {
  kData,
  kTransformedData,
  kParameter,
  kTransformedParameter,
  kLocal,
  kLoop,
};

struct SlotInfo {
  std::string name;
  Type type;
  VarKind kind = VarKind::kLocal;
  SourceLoc loc;
};

// Checks and annotates `program` (types, slots, builtins). InvalidArgument with line:column, the
// line and a caret for the first error. On success `*slots` describes every slot.
absl::Status CheckProgram(absl::string_view source, Program* program, std::vector<SlotInfo>* slots);

}  // namespace flowvi::lang

#endif  // FLOWVI_ENGINE_LANG_CHECKER_H_
