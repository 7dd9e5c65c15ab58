// Test utility: the distance of a double from a long-double reference in units in the last place.
#ifndef FLOWVI_TESTS_ENGINE_TESTING_ULP_H_
#define FLOWVI_TESTS_ENGINE_TESTING_ULP_H_

#include <cmath>
#include <limits>

namespace flowvi::testing {

// |got − want| in units of the spacing of doubles at want.
inline double UlpError(double got, long double want) {
  const double w = static_cast<double>(want);
  const double ulp =
      std::nextafter(std::abs(w), std::numeric_limits<double>::infinity()) - std::abs(w);
  return static_cast<double>(std::abs(static_cast<long double>(got) - want) / ulp);
}

}  // namespace flowvi::testing

#endif  // FLOWVI_TESTS_ENGINE_TESTING_ULP_H_
