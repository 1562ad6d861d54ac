// _core.nvfp4: numpy-buffer front of reset_native/nvfp4.hpp. python/reset_native/nvfp4.py validates and
// converts (torch CPU tensors arrive as numpy views; fp16/bf16 as 2-byte bit patterns); this layer only
// re-checks what keeps memory safe (element sizes, counts, contiguity, writability) and calls C++.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "bindings.hpp"
#include "reset_native/nvfp4.hpp"

namespace py = pybind11;

namespace reset_native::bindings {

namespace {

namespace nv = reset_native::nvfp4;

nv::DType parse_dtype(const std::string& name) {
  if (name == "float32") return nv::DType::kFloat32;
  if (name == "float16") return nv::DType::kFloat16;
  if (name == "bfloat16") return nv::DType::kBFloat16;
  throw InvalidType("dtype must be float32, float16 or bfloat16, got '" + name + "'");
}

nv::Kernel parse_kernel(const std::string& name) {
  if (name == "auto") return nv::Kernel::kAuto;
  if (name == "scalar") return nv::Kernel::kScalar;
  if (name == "avx2") return nv::Kernel::kAVX2;
  if (name == "avx512") return nv::Kernel::kAVX512;
  throw InvalidArgument("kernel must be auto, scalar, avx2 or avx512, got '" + name + "'");
}

nv::Activation parse_activation(const std::string& name) {
  if (name == "bf16") return nv::Activation::kBF16;
  if (name == "nvfp4") return nv::Activation::kNVFP4;
  throw InvalidArgument("activation must be 'bf16' or 'nvfp4', got '" + name + "'");
}

size_t item_size(nv::DType d) { return d == nv::DType::kFloat32 ? 4 : 2; }

// Raw pointer of a C-contiguous buffer holding exactly `count` items of `itemsize` bytes.
void* buffer(py::array& a, const char* name, size_t itemsize, int64_t count, bool writable) {
  if (static_cast<size_t>(a.itemsize()) != itemsize) {
    throw InvalidType(std::string(name) + ": expected " + std::to_string(itemsize) + "-byte items, got " +
                      std::to_string(a.itemsize()));
  }
  require((a.flags() & py::array::c_style) != 0, std::string(name) + ": must be C-contiguous");
  require(static_cast<int64_t>(a.size()) == count, std::string(name) + ": expected " + std::to_string(count) +
                                                       " items, got " + std::to_string(a.size()));
  if (writable) {
    require(a.writeable(), std::string(name) + ": must be writable");
    return a.mutable_data();
  }
  return const_cast<void*>(a.data());
}

int64_t dim(const py::array& a, int i) { return a.ndim() > i ? static_cast<int64_t>(a.shape(i)) : 0; }

}  // namespace

void bind_nvfp4(py::module_& m) {
  m.def(
      "quantize",
      [](py::array w, const std::string& dtype, py::array packed, py::array block_scales,
         std::optional<float> global_scale, const std::string& kernel, int threads) {
        const nv::DType d = parse_dtype(dtype);
        require(w.ndim() == 2, "quantize: w must be 2-D");
        const int64_t rows = dim(w, 0), cols = dim(w, 1);
        require(cols % nv::kBlockSize == 0, "quantize: K must be a multiple of 16, got " + std::to_string(cols));
        const void* src = buffer(w, "w", item_size(d), rows * cols, false);
        auto* p = static_cast<uint8_t*>(buffer(packed, "packed", 1, rows * cols / 2, true));
        auto* s = static_cast<uint8_t*>(buffer(block_scales, "block_scales", 1, rows * cols / 16, true));
        nv::Options o;
        o.kernel = parse_kernel(kernel);
        o.threads = threads;
        py::gil_scoped_release release;
        if (d == nv::DType::kFloat32) {
          return nv::quantize(static_cast<const float*>(src), rows, cols, p, s, global_scale, o);
        }
        return nv::quantize(static_cast<const uint16_t*>(src), d, rows, cols, p, s, global_scale, o);
      },
      py::arg("w"), py::arg("dtype"), py::arg("packed"), py::arg("block_scales"), py::arg("global_scale"),
      py::arg("kernel") = "auto", py::arg("threads") = 0,
      "Quantizes w [N, K] into packed / block_scales (preallocated); returns the global scale used.");

  m.def(
      "dequantize",
      [](py::array packed, py::array block_scales, float global_scale, py::array out, const std::string& dtype,
         const std::string& kernel, int threads) {
        const nv::DType d = parse_dtype(dtype);
        require(out.ndim() == 2, "dequantize: out must be 2-D");
        const int64_t rows = dim(out, 0), cols = dim(out, 1);
        require(cols % nv::kBlockSize == 0, "dequantize: K must be a multiple of 16");
        const auto* p = static_cast<const uint8_t*>(buffer(packed, "packed", 1, rows * cols / 2, false));
        const auto* s = static_cast<const uint8_t*>(buffer(block_scales, "block_scales", 1, rows * cols / 16, false));
        void* o = buffer(out, "out", item_size(d), rows * cols, true);
        nv::Options opt;
        opt.kernel = parse_kernel(kernel);
        opt.threads = threads;
        py::gil_scoped_release release;
        nv::dequantize(p, s, global_scale, rows, cols, o, d, opt);
      },
      py::arg("packed"), py::arg("block_scales"), py::arg("global_scale"), py::arg("out"), py::arg("dtype"),
      py::arg("kernel") = "auto", py::arg("threads") = 0);

  m.def(
      "gemv",
      [](py::array packed, py::array block_scales, float global_scale, py::array x, const std::string& dtype,
         py::array y, std::optional<py::array> bias, const std::string& activation,
         std::optional<float> act_global_scale, const std::string& kernel, int threads) {
        const nv::DType d = parse_dtype(dtype);
        require(x.ndim() == 2 && y.ndim() == 2, "gemv: x and y must be 2-D");
        const int64_t m_rows = dim(x, 0), k = dim(x, 1), n = dim(y, 1);
        require(dim(y, 0) == m_rows, "gemv: y must have as many rows as x");
        require(k % nv::kBlockSize == 0, "gemv: K must be a multiple of 16");
        const auto* p = static_cast<const uint8_t*>(buffer(packed, "packed", 1, n * k / 2, false));
        const auto* s = static_cast<const uint8_t*>(buffer(block_scales, "block_scales", 1, n * k / 16, false));
        const void* xp = buffer(x, "x", item_size(d), m_rows * k, false);
        void* yp = buffer(y, "y", item_size(d), m_rows * n, true);
        const void* bp = bias ? buffer(*bias, "bias", item_size(d), n, false) : nullptr;
        nv::GemvOptions o;
        o.kernel = parse_kernel(kernel);
        o.threads = threads;
        o.activation = parse_activation(activation);
        o.act_global_scale = act_global_scale;
        py::gil_scoped_release release;
        nv::gemv(p, s, global_scale, n, k, xp, d, m_rows, yp, bp, o);
      },
      py::arg("packed"), py::arg("block_scales"), py::arg("global_scale"), py::arg("x"), py::arg("dtype"),
      py::arg("y"), py::arg("bias") = py::none(), py::arg("activation") = "bf16",
      py::arg("act_global_scale") = py::none(), py::arg("kernel") = "auto", py::arg("threads") = 0);

  m.def(
      "swizzle_block_scales",
      [](py::array linear, py::array out) {
        require(linear.ndim() == 2, "swizzle_block_scales: block_scales must be 2-D");
        const int64_t rows = dim(linear, 0), cols = dim(linear, 1);
        const auto* l = static_cast<const uint8_t*>(buffer(linear, "block_scales", 1, rows * cols, false));
        auto* o = static_cast<uint8_t*>(buffer(out, "out", 1, nv::swizzled_size(rows, cols), true));
        nv::swizzle_block_scales(l, rows, cols, o);
      },
      py::arg("block_scales"), py::arg("out"));
  m.def(
      "unswizzle_block_scales",
      [](py::array swizzled, py::array out) {
        require(out.ndim() == 2, "unswizzle_block_scales: out must be 2-D");
        const int64_t rows = dim(out, 0), cols = dim(out, 1);
        const auto* sw = static_cast<const uint8_t*>(buffer(swizzled, "swizzled", 1, nv::swizzled_size(rows, cols), false));
        auto* o = static_cast<uint8_t*>(buffer(out, "out", 1, rows * cols, true));
        nv::unswizzle_block_scales(sw, rows, cols, o);
      },
      py::arg("swizzled"), py::arg("out"));

  m.def("e2m1_decode", &nv::e2m1_decode, py::arg("code"));
  m.def("e2m1_encode", &nv::e2m1_encode, py::arg("value"));
  m.def("e4m3_decode", &nv::e4m3_decode, py::arg("byte"));
  m.def("e4m3_encode", &nv::e4m3_encode, py::arg("value"));
  m.def("global_scale_from_amax", &nv::global_scale_from_amax, py::arg("amax"));
  m.def("block_scale_byte", &nv::block_scale_byte, py::arg("block_amax"), py::arg("global_scale"));
  m.def("float_to_half", &nv::float_to_half, py::arg("value"));
  m.def("float_to_bf16", &nv::float_to_bf16, py::arg("value"));
  m.def("half_to_float", &nv::half_to_float, py::arg("bits"));
  m.def("bf16_to_float", &nv::bf16_to_float, py::arg("bits"));
  m.def("avx2_available", &nv::avx2_available);
  m.def("avx512_available", &nv::avx512_available);
  m.def(
      "selected_kernel", [](const std::string& kernel) { return std::string(nv::kernel_name(nv::selected_kernel(parse_kernel(kernel)))); },
      py::arg("kernel") = "auto", "Name of the CPU kernel a call with this kernel argument runs (env applied).");
  m.def("default_threads", &nv::default_gemv_threads, "Threads the CPU kernels use by default.");
  m.def("physical_cores", &nv::physical_cores, "Physical cores this process may run on (0: unknown).");
  m.def(
      "read_checksum",
      [](py::array data, int threads) {
        const int64_t bytes = static_cast<int64_t>(data.nbytes());
        require((data.flags() & py::array::c_style) != 0, "read_checksum: data must be C-contiguous");
        const auto* p = static_cast<const uint8_t*>(data.data());
        nv::Options o;
        o.threads = threads;
        py::gil_scoped_release release;
        return nv::read_checksum(p, bytes, o);
      },
      py::arg("data"), py::arg("threads") = 0);
}

}  // namespace reset_native::bindings
