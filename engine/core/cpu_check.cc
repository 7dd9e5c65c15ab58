// Refuses, with a message, to run a binary built for x86-64-v3 (CMakeLists.txt: FLOWVI_ISA) on a
// CPU without AVX2 and FMA, which would otherwise die of SIGILL somewhere in the first fit.
//
// This file alone is compiled for the x86-64 baseline (engine/CMakeLists.txt) and linked into
// every program that links the engine (an INTERFACE source). The check runs as a constructor
// with a high priority, before the other static initializers, which are compiled for v3 and may
// use its instructions. FLOWVI_PRETEND_OLD_CPU=1 takes the refusal path on any CPU, so that
// tests can check the message.
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

#if defined(FLOWVI_REQUIRES_X86_64_V3)
bool CpuHasV3() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("bmi2");
}

__attribute__((constructor(101))) void RequireX8664V3() {
  const char* pretend = std::getenv("FLOWVI_PRETEND_OLD_CPU");
  const bool pretending = pretend != nullptr && std::strcmp(pretend, "1") == 0;
  if (CpuHasV3() && !pretending) return;
  std::fputs(
      "flowvi: this build needs an x86-64-v3 CPU (AVX2, FMA, BMI2: Intel Haswell or AMD Zen and "
      "later), and this CPU lacks them. Rebuild with cmake -DFLOWVI_ISA=baseline to run on any "
      "x86-64 CPU (about half the training speed).\n",
      stderr);
  std::_Exit(70);  // EX_SOFTWARE
}
#endif

}  // namespace
