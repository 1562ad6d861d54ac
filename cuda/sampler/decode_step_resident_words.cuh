// Tagged words of the resident GPU decode step (decode_step_resident.cuh): value << 32 | tag, written
// with one 64-bit store and polled until the tag is the step's; the waits' stall guard; where a
// row's words live; the entropy parts and the prepared slot as words.
// Part of decode_step.cu's translation unit: included only there, in order.
#pragma once

namespace reset_native::sampler::cuda_detail {

using detail::kChunkCandidates;
using detail::kKeptWords;
using detail::kPartWords;
using detail::kPlanWords;
using detail::kPreWords;

// Largest row (in chunks) the resident step takes: thread t reads chunk t's words and the last
// threads the prepared slot.
constexpr unsigned kResidentMaxChunks = 192;
// Most chunks per block the launcher gives the resident step (more rows: the kernels run).
constexpr unsigned kResidentChunksPerBlock = 16;

__device__ __forceinline__ void put_word(unsigned long long* p, unsigned value, unsigned tag) {
  const unsigned long long w = (static_cast<unsigned long long>(value) << 32) | tag;
  asm volatile("st.relaxed.gpu.global.u64 [%0], %1;" ::"l"(p), "l"(w) : "memory");
}

__device__ __forceinline__ unsigned long long peek_word(const unsigned long long* p) {
  unsigned long long w;
  asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(w) : "l"(p) : "memory");
  return w;
}

__device__ __forceinline__ bool has_tag(unsigned long long w, unsigned tag) { return static_cast<unsigned>(w) == tag; }

__device__ __forceinline__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// The waits of one block: the step's tag, and a deadline far beyond any step (a stall means the
// blocks were not all resident after all, e.g. another kernel held SMs until this one finished):
// past it a wait gives up, flags kErrorStalled and takes what it has, so nothing hangs.
struct Waiter {
  unsigned tag;
  unsigned long long deadline;
  int* error_flag;
  __device__ bool expired() const {
    if (global_ns() < deadline) return false;
    atomicOr(error_flag, kErrorStalled);
    return true;
  }
};
constexpr unsigned long long kStallNs = 200000000ull;  // 0.2 s

// N consecutive words, all loads in flight together, until every one carries the tag.
template <int N>
__device__ __forceinline__ void take_words(const unsigned long long* p, const Waiter& wait, unsigned (&out)[N]) {
  unsigned long long w[N];
  bool ready;
  do {
#pragma unroll
    for (int j = 0; j < N; ++j) w[j] = peek_word(p + j);
    ready = true;
#pragma unroll
    for (int j = 0; j < N; ++j) ready &= has_tag(w[j], wait.tag);
  } while (!ready && !wait.expired());
#pragma unroll
  for (int j = 0; j < N; ++j) out[j] = static_cast<unsigned>(w[j] >> 32);
}

// Where a row's tagged words live (device_workspace.hpp, kPartWords ...).
struct RowWords {
  unsigned long long* base;
  unsigned chunks;
  __device__ unsigned long long* part(unsigned c) const { return base + c * kPartWords; }
  __device__ unsigned long long* pre() const { return base + chunks * kPartWords; }
  __device__ unsigned long long* kept(unsigned c) const { return pre() + kPreWords + c * kKeptWords; }
  __device__ unsigned long long* candidates(unsigned c) const {
    return base + chunks * (kPartWords + kKeptWords) + kPreWords + c * 2 * kChunkCandidates;
  }
  __device__ unsigned long long* plan() const { return candidates(chunks); }  // kPlanWords
};

// A chunk's entropy part as stats_kernel stores it (the floats widen exactly to the EntropyPart's
// doubles); the argmax (-1 or < 2^31 - 1) travels as argmax + 1 beside the NaN bit.
__device__ void put_part(const RowWords& w, unsigned c, const ChunkPart& p, unsigned tag) {
  unsigned long long* at = w.part(c);
  put_word(at + 0, __float_as_uint(p.max), tag);
  put_word(at + 1, __float_as_uint(p.sum_exp), tag);
  put_word(at + 2, __float_as_uint(p.sum_zexp), tag);
  put_word(at + 3, static_cast<unsigned>(p.argmax + 1) | (p.nan ? 0x80000000u : 0u), tag);
}

static_assert(kPartWords == 4, "a chunk's part is one uint4 of values");
__device__ uint4 take_part_values(const RowWords& w, unsigned c, const Waiter& wait) {
  unsigned v[kPartWords];
  take_words(w.part(c), wait, v);
  return make_uint4(v[0], v[1], v[2], v[3]);
}

// The part those values stand for (put_part's encoding).
__device__ __forceinline__ EntropyPart part_of_values(const uint4& v) {
  return EntropyPart{__uint_as_float(v.x), static_cast<double>(__uint_as_float(v.y)),
                     static_cast<double>(__uint_as_float(v.z)), static_cast<std::int64_t>(v.w & 0x7FFFFFFFu) - 1,
                     static_cast<std::int32_t>(v.w >> 31)};
}

// What every block needs of the prepared slot: the step means, the uniform and the claim's errors.
struct PreView {
  detail::StepMeans means;
  double uniform;
  int bad;
};

__device__ void put_pre(const RowWords& w, const RowPre& pre, unsigned tag) {
  unsigned long long* at = w.pre();
  const auto put_double = [&](int k, double v) {
    const unsigned long long bits = static_cast<unsigned long long>(__double_as_longlong(v));
    put_word(at + k, static_cast<unsigned>(bits), tag);
    put_word(at + k + 1, static_cast<unsigned>(bits >> 32), tag);
  };
  put_double(0, pre.means.hs);
  put_double(2, pre.means.hbar);
  put_double(4, pre.uniform);
  put_word(at + 6, static_cast<unsigned>(pre.bad) | (pre.means.hs_is_entropy ? 1u << 16 : 0u) |
                       (pre.means.hbar_is_hs ? 1u << 17 : 0u), tag);
}

__device__ PreView take_pre(const RowWords& w, const Waiter& wait) {
  unsigned v[kPreWords];
  take_words(w.pre(), wait, v);
  const auto as_double = [&](int k) {
    return __longlong_as_double(static_cast<long long>((static_cast<unsigned long long>(v[k + 1]) << 32) | v[k]));
  };
  PreView p;
  p.means.hs = as_double(0);
  p.means.hbar = as_double(2);
  p.means.hs_is_entropy = (v[6] >> 16) & 1u;
  p.means.hbar_is_hs = (v[6] >> 17) & 1u;
  p.uniform = as_double(4);
  p.bad = static_cast<int>(v[6] & 0xFFFFu);
  return p;
}


}  // namespace reset_native::sampler::cuda_detail
