// Cheaper forms of the W4A4 two-team kernel in clusters (kForm16Cluster, gemv_kernel.cuh stage_cluster; session 21
// helper w4a4cluster39; both by default with clusters of 4 since helper w4a4rule40: gemv_launch.cuh
// w4a4_cluster_size; RESET_NATIVE_GEMV_W4A4_CLUSTER_FORM). The same bits:
//   kForm16ClusterAmax: the in-kernel amax(|x|) split over the cluster (cluster_amax): each CTA the max of 1/C of x,
//     stored into every peer's shared memory (st.async on the peer's transaction barrier; a max does not depend on
//     the order). Every CTA used to read all of x for it (cta_amax_wide).
//   kForm16ClusterCompact: the peers' quantized shares copied as E2M1 codes (8 bytes per 16-element unit) and the
//     decoded E4M3 block scale (fp16, 2 bytes) instead of the staged fp16 values (32 bytes): encode_unit_codes here,
//     decode_codes_word on the receiving CTA gives back the staged values bit for bit.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/cluster.cuh"
#include "core/mbarrier.cuh"
#include "nvfp4/gemv_params.cuh"
#include "nvfp4/gemv_w4a4_quant.cuh"

namespace reset_native::nvfp4_cuda::detail {

constexpr int kForm16ClusterAmax = 32768, kForm16ClusterCompact = 65536;

constexpr int kW4a4ClusterFormRule = -1;  // w4a4_cluster_form_override: no form forced

// RESET_NATIVE_GEMV_W4A4_CLUSTER_FORM (read per call by launch_w4a4_cluster, for A/B): "none" = no form, "amax",
// "compact" or "both" = those FORM bits on the cluster kernel (only where clusters launch); unset or anything else =
// kW4a4ClusterFormRule: the form of the cluster rule (gemv_launch.cuh w4a4_cluster_size; none where
// RESET_NATIVE_GEMV_W4A4_CLUSTER forces a size).
inline int w4a4_cluster_form_override() {
  const char* v = std::getenv("RESET_NATIVE_GEMV_W4A4_CLUSTER_FORM");
  if (v == nullptr) return kW4a4ClusterFormRule;
  if (std::strcmp(v, "none") == 0) return 0;
  if (std::strcmp(v, "amax") == 0) return kForm16ClusterAmax;
  if (std::strcmp(v, "compact") == 0) return kForm16ClusterCompact;
  if (std::strcmp(v, "both") == 0) return kForm16ClusterAmax | kForm16ClusterCompact;
  return kW4a4ClusterFormRule;
}

// kForm16Cluster on split K (gemv_split_cluster.cuh): the C CTAs of cluster q (blocks q C .. q C + C - 1, rank =
// block % C) share K slice q % ksplit, so they can split its quantization (stage_cluster) and the amax over all of x
// (cluster_amax); they walk row tiles (q / ksplit) C + rank of the slice's gridDim.x / ksplit walkers (a multiple of
// C). The plain split kernel takes slice block % ksplit, walker block / ksplit: the same (slice, walker) pairs.
__device__ __forceinline__ int split_cluster_slice(int ksplit) {
  return int(blockIdx.x / cuda_core::cluster_nctarank()) % ksplit;
}
__device__ __forceinline__ int split_cluster_walker(int ksplit) {
  const int csize = int(cuda_core::cluster_nctarank());
  return int(blockIdx.x) / csize / ksplit * csize + int(cuda_core::cluster_ctarank());
}

// 4 bytes of a peer's shared memory (shared::cluster address, 4-byte aligned).
__device__ __forceinline__ uint32_t ld_cluster_u32(uint32_t addr) {
  uint32_t v;
  asm volatile("ld.shared::cluster.u32 %0, [%1];" : "=r"(v) : "r"(addr) : "memory");
  return v;
}

// kForm16ClusterAmax, at the start of the kernel (before the weight prefetch) where p.amax_inline: the barrier
// cluster_amax's peers signal (one arrival: the local expect_tx) initialised, and the cluster barrier phase that
// publishes it opened (a relaxed arrival: no memory fence, which would wait for the weight loads in flight). Every
// thread of the CTA calls it; bar (8 bytes) and the C floats after it lie in this CTA's shared memory at the same
// offset in every CTA, never used otherwise.
__device__ __forceinline__ void cluster_amax_open(uint64_t* bar) {
  if (threadIdx.x == 0) {
    cuda_core::mbar_init(bar, 1);
    cuda_core::mbar_init_fence();
  }
  asm volatile("barrier.cluster.arrive.relaxed;" ::: "memory");
}

// Stores v into the float at shared::cluster address `addr` (a peer's) and completes 4 bytes on that peer's barrier
// at shared::cluster address `bar`.
__device__ __forceinline__ void st_async_f32(uint32_t addr, float v, uint32_t bar) {
  asm volatile("st.async.shared::cluster.mbarrier::complete_tx::bytes.b32 [%0], %1, [%2];" ::"r"(addr),
               "r"(__float_as_uint(v)), "r"(bar)
               : "memory");
}

// mbar_wait (core/mbarrier.cuh) that traps after ~2 s at 1.98 GHz instead of spinning forever: a peer's st.async
// that never completed would otherwise hang the GPU (and every later kernel) rather than fail the call.
__device__ __forceinline__ void mbar_wait_or_trap(uint64_t* bar, uint32_t parity) {
  const long long start = clock64();
  for (;;) {
    uint32_t done;
    asm volatile(
        "{\n"
        " .reg .pred p;\n"
        " mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        " selp.u32 %0, 1, 0, p;\n"
        "}\n"
        : "=r"(done)
        : "r"(cuda_core::smem_addr(bar)), "r"(parity)
        : "memory");
    if (done != 0) return;
    if (clock64() - start > (1LL << 32)) __trap();
  }
}

// kForm16ClusterAmax: the max of |x| over slice r of C for CTA rank r (thread_amax_slice, then the CTA's max), then
// the max of the C slices' maxima: thread q of each CTA stores its CTA's into slot r of CTA q (st.async, completing on
// q's barrier), each CTA waits for its C - 1 (the same max everywhere: a max does not depend on the order). Every
// thread of every CTA of the cluster calls it, after cluster_amax_open (one __syncthreads, the wait of the phase
// cluster_amax_open opened, the barrier's phase 0).
template <int XDT>
__device__ float cluster_amax(const GemvParams& p, uint64_t* bar) {
  const int64_t rank = cuda_core::cluster_ctarank(), csize = cuda_core::cluster_nctarank();
  float amax = cta_max_to_all(thread_amax_slice<XDT>(p, rank, csize));
  float* const slots = reinterpret_cast<float*>(bar + 1);
  cuda_core::cluster_wait();  // every peer's barrier initialised (cluster_amax_open)
  const int q = int(threadIdx.x);
  if (q < csize && q != rank) {
    st_async_f32(cuda_core::cluster_map_shared(cuda_core::smem_addr(slots + rank), uint32_t(q)), amax,
                 cuda_core::cluster_map_shared(cuda_core::smem_addr(bar), uint32_t(q)));
  }
  if (q == 0) cuda_core::mbar_arrive_expect_tx(bar, uint32_t(4 * (csize - 1)));
  mbar_wait_or_trap(bar, 0);  // the peers' maxima have landed
  for (int r = 0; r < int(csize); ++r)
    if (r != int(rank)) amax = fmaxf(amax, slots[r]);
  return amax;
}

// kForm16ClusterCompact, the producer: the 16 staged values of one quantized unit (v[i] = +-e2m1_i * sdec, as
// store_unit writes them) -> its E2M1 codes in the packed NVFP4 layout (element i in bits 4i..4i+3 of word i / 8:
// sign, then the 3 magnitude bits). v * (2^-14 / sdec) is e2m1 * 2^-14 within a relative ~2^-22 (the reciprocal is
// approximate), and rounded to fp16 it is exactly e2m1 * 2^-14 (its neighbours lie >= 2^-11 away, relatively): the
// fp16 bit pattern s000 ccc0 0000 0000 with c the magnitude code (code 1, 0.5, lands on the subnormal 2^-15; the
// sign of v, a zero's included, is kept). Per 8 elements: 8 FMUL, 4 pack conversions, then the high bytes gathered
// (2 PRMT) and each byte s000ccc0 squeezed to the nibble sccc (3 shifts, 3 LOP3).
__device__ __forceinline__ uint2 encode_unit_codes(const float (&v)[16], float sdec) {
  const float r = rcp_approx_ftz(sdec) * 6.103515625e-05f;  // 2^-14 / sdec (sdec in [2^-9, 448])
  uint32_t w[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    uint32_t pr[4];  // fp16 pairs (element j, element j + 4) of these 8
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const __half2 e = __floats2half2_rn(v[8 * h + j] * r, v[8 * h + j + 4] * r);
      pr[j] = *reinterpret_cast<const uint32_t*>(&e);
    }
    // bytes s000ccc0 of elements 0, 2, 4, 6 (qa) and 1, 3, 5, 7 (qb): the high byte of each half
    const uint32_t qa = __byte_perm(pr[0], pr[2], 0x7351), qb = __byte_perm(pr[1], pr[3], 0x7351);
    // each byte's low nibble: magnitude from q >> 1, sign from q >> 4 (high nibbles: don't care)
    const uint32_t na = ((qa >> 1) & 0x07070707u) | ((qa >> 4) & ~0x07070707u);
    const uint32_t nb = ((qb >> 1) & 0x07070707u) | ((qb >> 4) & ~0x07070707u);
    w[h] = (na & 0x0F0F0F0Fu) | ((nb << 4) & 0xF0F0F0F0u);
  }
  return make_uint2(w[0], w[1]);
}

// kForm16ClusterCompact, the receiver: 8 elements' codes (word w of encode_unit_codes) and the unit's decoded block
// scale (fp16 pair s2 = (sdec, sdec)) -> the staged uint4 (fp16 pairs (j, j + 4), as store_unit packs them): the
// nibbles back to e2m1 * 2^-14 (the inverse of the squeeze above), times 2^14 (exact: e2m1), times sdec (exact:
// <= 6 significant bits, 2^-10 .. 2688, what store_unit rounded to fp16 without a change).
__device__ __forceinline__ uint4 decode_codes_word(uint32_t w, __half2 s2) {
  // bytes s000ccc0 of elements 0, 2, 4, 6 (qa, from the low nibbles) and 1, 3, 5, 7 (qb, the high nibbles)
  const uint32_t qa = ((w << 1) & 0x0E0E0E0Eu) | ((w << 4) & 0x80808080u);
  const uint32_t qb = ((w >> 3) & 0x0E0E0E0Eu) | (w & 0x80808080u);
  const uint32_t pr[4] = {__byte_perm(qa, 0, 0x2404), __byte_perm(qb, 0, 0x2404), __byte_perm(qa, 0, 0x3414),
                          __byte_perm(qb, 0, 0x3414)};
  const __half2 k14 = __floats2half2_rn(16384.0f, 16384.0f);
  uint32_t o[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const __half2 e = __hmul2(__hmul2(*reinterpret_cast<const __half2*>(&pr[j]), k14), s2);
    o[j] = *reinterpret_cast<const uint32_t*>(&e);
  }
  return make_uint4(o[0], o[1], o[2], o[3]);
}

}  // namespace reset_native::nvfp4_cuda::detail
