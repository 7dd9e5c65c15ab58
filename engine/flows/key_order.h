// Fixed random structure encoded as keys (see layer.h): a permutation of D items is stored as D
// real keys and is their argsort, so that every key vector (any values, ties, even NaN) names a
// valid permutation, and the structure is saved and restored with the parameters.
//
// Thread-safety: plain functions on caller-owned buffers.
#ifndef FLOWVI_ENGINE_FLOWS_KEY_ORDER_H_
#define FLOWVI_ENGINE_FLOWS_KEY_ORDER_H_

namespace flowvi {

// order[r] = the index of the key of rank r (0-based): keys ascending, ties broken by index,
// NaN keys after every other key. Allocates nothing. REQUIRES: order has room for d entries.
void ArgsortKeys(const double* keys, int d, int* order);

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FLOWS_KEY_ORDER_H_
