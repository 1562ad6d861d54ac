// Benchmark switches read from the environment at every call (so one process can time both sides of a choice; a
// captured CUDA graph keeps the choice made at capture), and the device's multiprocessor count for launch rules.
#pragma once
#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>

namespace reset_native::cuda_core {

// 1 when `name` is "1", 0 when it is "0", -1 otherwise (unset or any other value: the caller's default rule).
inline int env_forced(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return -1;
  return std::strcmp(v, "1") == 0 ? 1 : (std::strcmp(v, "0") == 0 ? 0 : -1);
}

// `fallback` unless `name` forces the switch on ("1") or off ("0").
inline bool env_switch(const char* name, bool fallback) {
  const int forced = env_forced(name);
  return forced < 0 ? fallback : forced == 1;
}

// Multiprocessors of the current device; 0 when the query fails (the error is cleared: callers fall back to a
// rule that needs no count).
inline int device_sms() {
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return sms;
}

}  // namespace reset_native::cuda_core
