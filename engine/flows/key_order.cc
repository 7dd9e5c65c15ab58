#include "engine/flows/key_order.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace flowvi {

void ArgsortKeys(const double* keys, int d, int* order) {
  std::iota(order, order + d, 0);
  // A strict weak order for every input: NaN compares as larger than any number, and equal keys
  // (NaNs included) fall back to the index, so the result never depends on the sort's stability.
  std::sort(order, order + d, [keys](int a, int b) {
    const bool nan_a = std::isnan(keys[a]), nan_b = std::isnan(keys[b]);
    if (nan_a != nan_b) return nan_b;
    if (!nan_a && keys[a] != keys[b]) return keys[a] < keys[b];
    return a < b;
  });
}

}  // namespace flowvi
