// Recursive-descent parser of the model language (grammar in engine/lang/README.md).
#ifndef FLOWVI_ENGINE_LANG_PARSER_H_
#define FLOWVI_ENGINE_LANG_PARSER_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/lang/ast.h"
#include "engine/lang/limits.h"

namespace flowvi::lang {

// Parses a whole program. InvalidArgument ("line:col: expected ..., found ...", the line and a
// caret) for a syntax error; ResourceExhausted when nesting exceeds limits.max_nesting.
absl::StatusOr<Program> ParseProgram(absl::string_view source, const ModelLimits& limits);

// Parses `source` as one expression (the 2-D shorthand), which must use all of it.
absl::StatusOr<ExprPtr> ParseExpression(absl::string_view source, const ModelLimits& limits);

}  // namespace flowvi::lang

#endif  // FLOWVI_ENGINE_LANG_PARSER_H_
