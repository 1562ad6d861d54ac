// wgmma (Hopper warpgroup MMA, sm_90a) with the A operand in registers and B from shared memory through a matrix
// descriptor: D[64 x N] += A[64 x 16] * B[16 x N], fp32 accumulators, 16-bit inputs. Per warp w of the warpgroup, A
// holds rows 16w..16w+15 in mma.m16n8k16's A-fragment layout, and D[4j + e] is mma's C fragment of token tile j.
// The operand lists are written out (inline asm takes no arrays). Asynchronous: A and D must not be touched until a
// wgmma_wait<> covers the group (ptxas serialises, and says so, where the code breaks that).
#pragma once
#include <cstdint>

namespace reset_native::nvfp4_cuda::detail {

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int PENDING>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(PENDING) : "memory");
}
// Generic-proxy shared-memory writes (st.shared) made visible to the async proxy that wgmma reads B through.
__device__ __forceinline__ void fence_proxy_async_smem() {
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}

// Shared-memory matrix descriptor, no swizzle: start address, LBO (bytes between core matrices along K) and SBO (along
// N), each >> 4. A core matrix is 8 rows x 16 bytes, contiguous. (The 128-byte swizzle measured no faster: session 28
// call 5, bench/RESULTS.md.)
__device__ __forceinline__ uint64_t wgmma_desc(uint32_t smem_addr, uint32_t lbo, uint32_t sbo) {
  return uint64_t((smem_addr & 0x3FFFF) >> 4) | (uint64_t(lbo >> 4) << 16) | (uint64_t(sbo >> 4) << 32);
}

// m64n16k16, T = the 16-bit type's PTX name; d[8], a[4], b and scale_d (0: D = A * B, the accumulators' first
// definition; else D += A * B) in scope.
#define RESET_NATIVE_WGMMA_RS_N16(T) \
asm volatile("{.reg .pred p; setp.ne.b32 p, %13, 0;\n"                                                                \
  "wgmma.mma_async.sync.aligned.m64n16k16.f32." T "." T " {"                                                          \
  "%0, %1, %2, %3, %4, %5, %6, %7}, "                                                                                 \
  "{%8, %9, %10, %11}, %12, p, 1, 1, 0;}"                                                                             \
    : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])                  \
    : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(scale_d))

// m64n32k16: as above, d[16].
#define RESET_NATIVE_WGMMA_RS_N32(T) \
asm volatile("{.reg .pred p; setp.ne.b32 p, %21, 0;\n"                                                                \
  "wgmma.mma_async.sync.aligned.m64n32k16.f32." T "." T " {"                                                          \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, "                                           \
  "{%16, %17, %18, %19}, %20, p, 1, 1, 0;}"                                                                           \
    : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),     \
    "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])                          \
    : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(scale_d))

// m64n64k16: as above, d[32].
#define RESET_NATIVE_WGMMA_RS_N64(T) \
asm volatile("{.reg .pred p; setp.ne.b32 p, %37, 0;\n"                                                                \
  "wgmma.mma_async.sync.aligned.m64n64k16.f32." T "." T " {"                                                          \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24,"\
  "%25, %26, %27, %28, %29, %30, %31}, "                                                                              \
  "{%32, %33, %34, %35}, %36, p, 1, 1, 0;}"                                                                           \
    : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),     \
    "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),            \
    "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),           \
    "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])                         \
    : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(scale_d))

// m64n128k16: as above, d[64].
#define RESET_NATIVE_WGMMA_RS_N128(T) \
asm volatile("{.reg .pred p; setp.ne.b32 p, %69, 0;\n"                                                                \
  "wgmma.mma_async.sync.aligned.m64n128k16.f32." T "." T " {"                                                         \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24,"\
  "%25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47,"\
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "                                 \
  "{%64, %65, %66, %67}, %68, p, 1, 1, 0;}"                                                                           \
    : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),     \
    "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),            \
    "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),           \
    "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]),           \
    "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]),           \
    "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]),           \
    "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]),           \
    "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])                         \
    : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(scale_d))

// One wgmma m64nNk16 (N = 16, 32, 64 or 128 tokens), A in registers, B by descriptor: the macro above for N, with the
// 16-bit type's PTX name.
template <int N, bool BF16>
struct Wgmma {
  static_assert(N == 16 || N == 32 || N == 64 || N == 128, "wgmma N: 16, 32, 64 or 128");
  static __device__ __forceinline__ void run(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t b, int scale_d) {
#define RESET_NATIVE_WGMMA_RS(M) \
  if constexpr (BF16) {          \
    M("bf16");                   \
  } else {                       \
    M("f16");                    \
  }
    if constexpr (N == 16) {
      RESET_NATIVE_WGMMA_RS(RESET_NATIVE_WGMMA_RS_N16)
    } else if constexpr (N == 32) {
      RESET_NATIVE_WGMMA_RS(RESET_NATIVE_WGMMA_RS_N32)
    } else if constexpr (N == 64) {
      RESET_NATIVE_WGMMA_RS(RESET_NATIVE_WGMMA_RS_N64)
    } else {
      RESET_NATIVE_WGMMA_RS(RESET_NATIVE_WGMMA_RS_N128)
    }
#undef RESET_NATIVE_WGMMA_RS
  }
};
#undef RESET_NATIVE_WGMMA_RS_N16
#undef RESET_NATIVE_WGMMA_RS_N32
#undef RESET_NATIVE_WGMMA_RS_N64
#undef RESET_NATIVE_WGMMA_RS_N128

}  // namespace reset_native::nvfp4_cuda::detail
