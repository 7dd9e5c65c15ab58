// AllocationCount(): heap allocations made so far by the whole program, for tests and
// benchmarks that check a hot path allocates nothing. Only meaningful in a binary that links
// tests/engine/testing/alloc_counter.cc (the flowvi_alloc_counter library), which replaces the
// allocator entry points with counting ones.
#ifndef FLOWVI_TESTS_ENGINE_TESTING_ALLOC_COUNTER_H_
#define FLOWVI_TESTS_ENGINE_TESTING_ALLOC_COUNTER_H_

#include <cstdint>

int64_t AllocationCount();

#endif  // FLOWVI_TESTS_ENGINE_TESTING_ALLOC_COUNTER_H_
