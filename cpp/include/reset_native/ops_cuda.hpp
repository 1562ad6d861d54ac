// CUDA kernels for the model ops that the integrations fuse around reset_native's engines: RMSNorm, the
// q/k head norm + rotary embedding of attention, decode attention over a static KV cache, and the SiLU-gated
// product of the MLP.
// Host launchers on raw device pointers; everything runs on the given stream, asynchronously.
#pragma once
#include <cstdint>

namespace reset_native::ops_cuda {

enum class DType : int { F32 = 0, F16 = 1, BF16 = 2 };

// y[r, :] = w * to_dtype(x[r, :] * rsqrt(mean(x[r, :]^2) + eps)) with fp32 statistics and the product
// rounded to the dtype before the weight multiply: the RMSNorm of Llama/Qwen models in transformers, as one
// kernel instead of seven. x, y: [rows, h] contiguous, w: [h], all of one dtype. rows == 0 is a no-op.
void launch_rms_norm(const void* x, const void* w, void* y, std::int64_t rows, std::int64_t h, float eps,
                     DType dtype, void* stream);

// Arguments of launch_qk_norm_rope. Element strides; each head row of d elements is contiguous.
struct QkNormRopeArgs {
  const void* q = nullptr;  // [batch, seq, hq, d] at strides (q_sb, q_ss, q_sh, 1)
  const void* k = nullptr;  // [batch, seq, hk, d] at strides (k_sb, k_ss, k_sh, 1)
  void* q_out = nullptr;    // [batch, seq, hq, d] contiguous
  void* k_out = nullptr;    // [batch, seq, hk, d] contiguous
  const void* q_weight = nullptr;  // [d], or null together with k_weight: no head norm (Llama)
  const void* k_weight = nullptr;  // [d]
  const void* cos = nullptr;       // [batch, seq, d] at strides (cs_sb, cs_ss, 1); sin has the same strides
  const void* sin = nullptr;
  std::int64_t batch = 0, seq = 0;
  int hq = 0, hk = 0, d = 0;  // d even
  std::int64_t q_sb = 0, q_ss = 0, q_sh = 0, k_sb = 0, k_ss = 0, k_sh = 0, cs_sb = 0, cs_ss = 0;
  float eps = 0.0f;
  // Optional static KV cache write (all null/0 for none): k's result goes to k_cache[b, h, pos + s, :] instead of
  // k_out, and v [batch, seq, hk, d] at strides (v_sb, v_ss, v_sh, 1) is copied to v_cache[b, h, pos + s, :].
  // Caches: [batch, hk, cache_len, d] contiguous; pos = *cache_pos (int64 on the device, read, not advanced).
  // A call whose positions pos .. pos + seq - 1 do not all fit in [0, cache_len) writes nothing to the caches and
  // NaN to all of q_out (visible downstream as NaN logits).
  const void* v = nullptr;
  std::int64_t v_sb = 0, v_ss = 0, v_sh = 0;
  void* k_cache = nullptr;
  void* v_cache = nullptr;
  const std::int64_t* cache_pos = nullptr;
  std::int64_t cache_len = 0;
};

// Per head row r of q and k: n = w * to_dtype(r * rsqrt(mean(r^2) + eps)) (the head RMSNorm of Qwen3 attention;
// skipped without weights), then out = n * cos + rotate_half(n) * sin with rotate_half(n) = cat(-n[d/2:], n[:d/2]),
// every product and the sum rounded to the dtype as transformers' apply_rotary_pos_emb does: two norms and ten
// elementwise kernels as one. All tensors of one dtype. batch * seq == 0 is a no-op.
void launch_qk_norm_rope(const QkNormRopeArgs& args, DType dtype, void* stream);

// y[r, c] = to_dtype(silu(gate[r, c])) * up[r, c] rounded to the dtype (transformers' act_fn(gate) * up for SiLU
// MLPs, two kernels as one). gate and up: [rows, n] with row strides gate_rs / up_rs (elements, inner stride 1),
// y: [rows, n] contiguous. rows * n == 0 is a no-op.
void launch_silu_mul(const void* gate, const void* up, void* y, std::int64_t rows, std::int64_t n,
                     std::int64_t gate_rs, std::int64_t up_rs, DType dtype, void* stream);

// Arguments of launch_decode_attention (one query token per sequence). Element strides.
struct DecodeAttentionArgs {
  const void* q = nullptr;        // [batch, hq, d] at strides (q_sb, q_sh, 1)
  const void* k_cache = nullptr;  // [batch, hk, len, d] contiguous
  const void* v_cache = nullptr;  // [batch, hk, len, d] contiguous
  // Mask [batch, len] at element strides (m_sb, m_sl), null for none: bool (true = attend), or with
  // mask_additive values of the dtype added to the scaled scores (-inf = masked), as torch SDPA's attn_mask.
  const void* mask = nullptr;
  bool mask_additive = false;
  void* out = nullptr;            // [batch, hq, d] contiguous
  std::int64_t batch = 0, len = 0;
  int hq = 0, hk = 0, d = 0;
  std::int64_t q_sb = 0, q_sh = 0, m_sb = 0, m_sl = 0;
  float scale = 0.0f;
  // Optional: a device int64 counter advanced by one after the cache has been read (the static cache layer's
  // write position, which the step's cache write used: one kernel less per layer than a separate add).
  std::int64_t* advance = nullptr;
};

// out[b, h] = softmax(scale * q[b, h] . k_cache[b, h / G, j] over the allowed j) @ v_cache[b, h / G] with
// G = hq / hk (grouped-query attention): torch SDPA's result for one query token (is_causal false, the
// mask as given), softmax and products in fp32, the output rounded to the dtype once. A row whose positions
// are all masked gives zeros. Needs decode_attention_supported(hq, hk, d). batch == 0 is a no-op.
bool decode_attention_supported(int hq, int hk, int d);
void launch_decode_attention(const DecodeAttentionArgs& args, DType dtype, void* stream);

}  // namespace reset_native::ops_cuda
