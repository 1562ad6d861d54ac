// Thin binding of the integration ops (reset_native/ops_cuda.hpp) into _core.ops. Device pointers and the
// CUDA stream cross as integers; reset_native/integrations/fused_norm.py validates the tensors first.
#include <array>
#include <cstdint>

#include <pybind11/stl.h>

#include "bindings.hpp"
#include "reset_native/error.hpp"
#if RESET_NATIVE_WITH_CUDA
#include "reset_native/ops_cuda.hpp"
#endif

namespace py = pybind11;

namespace reset_native::bindings {

#if RESET_NATIVE_WITH_CUDA
void bind_ops(py::module_& m) {
  namespace oc = reset_native::ops_cuda;
  m.attr("cuda_kernels") = true;
  m.def(
      "cuda_rms_norm",
      [](std::uintptr_t x, std::uintptr_t w, std::uintptr_t y, std::int64_t rows, std::int64_t h, float eps,
         int dtype, std::uintptr_t stream) {
        if (dtype < 0 || dtype > 2) throw InvalidType("rms_norm: dtype code must be 0 (f32), 1 (f16) or 2 (bf16)");
        oc::launch_rms_norm(reinterpret_cast<const void*>(x), reinterpret_cast<const void*>(w),
                            reinterpret_cast<void*>(y), rows, h, eps, static_cast<oc::DType>(dtype),
                            reinterpret_cast<void*>(stream));
      },
      py::arg("x"), py::arg("w"), py::arg("y"), py::arg("rows"), py::arg("h"), py::arg("eps"), py::arg("dtype"),
      py::arg("stream"), "y[rows, h] <- RMSNorm(x) * w on the given stream (transformers' Llama/Qwen semantics).");
  m.def(
      "cuda_qk_norm_rope",
      [](std::uintptr_t q, std::uintptr_t k, std::uintptr_t q_out, std::uintptr_t k_out, std::uintptr_t q_weight,
         std::uintptr_t k_weight, std::uintptr_t cos, std::uintptr_t sin, std::int64_t batch, std::int64_t seq,
         int hq, int hk, int d, std::array<std::int64_t, 3> q_strides, std::array<std::int64_t, 3> k_strides,
         std::array<std::int64_t, 2> cs_strides, float eps, int dtype, std::uintptr_t stream, std::uintptr_t v,
         std::array<std::int64_t, 3> v_strides, std::uintptr_t k_cache, std::uintptr_t v_cache,
         std::uintptr_t cache_pos, std::int64_t cache_len) {
        if (dtype < 0 || dtype > 2) throw InvalidType("qk_norm_rope: dtype code must be 0 (f32), 1 (f16) or 2 (bf16)");
        oc::QkNormRopeArgs a;
        a.q = reinterpret_cast<const void*>(q);
        a.k = reinterpret_cast<const void*>(k);
        a.q_out = reinterpret_cast<void*>(q_out);
        a.k_out = reinterpret_cast<void*>(k_out);
        a.q_weight = reinterpret_cast<const void*>(q_weight);
        a.k_weight = reinterpret_cast<const void*>(k_weight);
        a.cos = reinterpret_cast<const void*>(cos);
        a.sin = reinterpret_cast<const void*>(sin);
        a.batch = batch;
        a.seq = seq;
        a.hq = hq;
        a.hk = hk;
        a.d = d;
        a.q_sb = q_strides[0];
        a.q_ss = q_strides[1];
        a.q_sh = q_strides[2];
        a.k_sb = k_strides[0];
        a.k_ss = k_strides[1];
        a.k_sh = k_strides[2];
        a.cs_sb = cs_strides[0];
        a.cs_ss = cs_strides[1];
        a.eps = eps;
        a.v = reinterpret_cast<const void*>(v);
        a.v_sb = v_strides[0];
        a.v_ss = v_strides[1];
        a.v_sh = v_strides[2];
        a.k_cache = reinterpret_cast<void*>(k_cache);
        a.v_cache = reinterpret_cast<void*>(v_cache);
        a.cache_pos = reinterpret_cast<const std::int64_t*>(cache_pos);
        a.cache_len = cache_len;
        oc::launch_qk_norm_rope(a, static_cast<oc::DType>(dtype), reinterpret_cast<void*>(stream));
      },
      py::arg("q"), py::arg("k"), py::arg("q_out"), py::arg("k_out"), py::arg("q_weight"), py::arg("k_weight"),
      py::arg("cos"), py::arg("sin"), py::arg("batch"), py::arg("seq"), py::arg("hq"), py::arg("hk"), py::arg("d"),
      py::arg("q_strides"), py::arg("k_strides"), py::arg("cs_strides"), py::arg("eps"), py::arg("dtype"),
      py::arg("stream"), py::arg("v") = 0, py::arg("v_strides") = std::array<std::int64_t, 3>{0, 0, 0},
      py::arg("k_cache") = 0, py::arg("v_cache") = 0, py::arg("cache_pos") = 0, py::arg("cache_len") = 0,
      "q/k head RMSNorm (weights 0 = none) + rotary embedding; outputs [batch, seq, heads, d]; with k_cache/v_cache "
      "(+ v, cache_pos) k and v go into the static cache at *cache_pos instead.");
  m.def(
      "cuda_decode_attention",
      [](std::uintptr_t q, std::uintptr_t k_cache, std::uintptr_t v_cache, std::uintptr_t mask, std::uintptr_t out,
         std::int64_t batch, std::int64_t len, int hq, int hk, int d, std::array<std::int64_t, 2> q_strides,
         std::array<std::int64_t, 2> mask_strides, bool mask_additive, float scale, int dtype, std::uintptr_t stream,
         std::uintptr_t advance) {
        if (dtype < 0 || dtype > 2) throw InvalidType("decode_attention: dtype code must be 0 (f32), 1 (f16) or 2 (bf16)");
        oc::DecodeAttentionArgs a;
        a.q = reinterpret_cast<const void*>(q);
        a.k_cache = reinterpret_cast<const void*>(k_cache);
        a.v_cache = reinterpret_cast<const void*>(v_cache);
        a.mask = reinterpret_cast<const void*>(mask);
        a.mask_additive = mask_additive;
        a.out = reinterpret_cast<void*>(out);
        a.batch = batch;
        a.len = len;
        a.hq = hq;
        a.hk = hk;
        a.d = d;
        a.q_sb = q_strides[0];
        a.q_sh = q_strides[1];
        a.m_sb = mask_strides[0];
        a.m_sl = mask_strides[1];
        a.scale = scale;
        a.advance = reinterpret_cast<std::int64_t*>(advance);
        oc::launch_decode_attention(a, static_cast<oc::DType>(dtype), reinterpret_cast<void*>(stream));
      },
      py::arg("q"), py::arg("k_cache"), py::arg("v_cache"), py::arg("mask"), py::arg("out"), py::arg("batch"),
      py::arg("len"), py::arg("hq"), py::arg("hk"), py::arg("d"), py::arg("q_strides"), py::arg("mask_strides"),
      py::arg("mask_additive"), py::arg("scale"), py::arg("dtype"), py::arg("stream"), py::arg("advance") = 0,
      "out[batch, hq, d] <- attention of one query token per sequence over k_cache/v_cache [batch, hk, len, d] "
      "(mask [batch, len]: bool, or additive in q's dtype with mask_additive; 0 for none) on the given stream; "
      "advance (int64 device counter, 0 for none) is incremented by one.");
  m.def("decode_attention_supported", &oc::decode_attention_supported, py::arg("hq"), py::arg("hk"), py::arg("d"),
        "Whether cuda_decode_attention has a kernel for these head counts and head dim.");
  m.def(
      "cuda_silu_mul",
      [](std::uintptr_t gate, std::uintptr_t up, std::uintptr_t y, std::int64_t rows, std::int64_t n,
         std::int64_t gate_rs, std::int64_t up_rs, int dtype, std::uintptr_t stream) {
        if (dtype < 0 || dtype > 2) throw InvalidType("silu_mul: dtype code must be 0 (f32), 1 (f16) or 2 (bf16)");
        oc::launch_silu_mul(reinterpret_cast<const void*>(gate), reinterpret_cast<const void*>(up),
                            reinterpret_cast<void*>(y), rows, n, gate_rs, up_rs, static_cast<oc::DType>(dtype),
                            reinterpret_cast<void*>(stream));
      },
      py::arg("gate"), py::arg("up"), py::arg("y"), py::arg("rows"), py::arg("n"), py::arg("gate_rs"),
      py::arg("up_rs"), py::arg("dtype"), py::arg("stream"), "y[rows, n] <- silu(gate) * up on the given stream.");
}
#else
void bind_ops(py::module_& m) { m.attr("cuda_kernels") = false; }
#endif

}  // namespace reset_native::bindings
