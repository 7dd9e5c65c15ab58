// Target's default behaviour shared by the built-in and user-written targets.
#include "engine/targets/target.h"

#include "absl/strings/str_cat.h"

namespace flowvi {

std::vector<std::string> Target::coordinate_names() const {
  std::vector<std::string> names;
  names.reserve(dim());
  for (int i = 1; i <= dim(); ++i) names.push_back(absl::StrCat("z", i));
  return names;
}

}  // namespace flowvi
