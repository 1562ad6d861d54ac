// Thin conversion layer for the sampler: the Python side (reset_native.sampler) has already checked
// shapes, dtypes, devices and contiguity, and passes raw data pointers (numpy .ctypes.data or
// torch .data_ptr()) plus, for CUDA, the current stream as integers.
#include <pybind11/stl.h>

#include <cstdint>
#include <string>

#include "bindings.hpp"
#include "reset_native/error.hpp"
#include "reset_native/sampler.hpp"

namespace py = pybind11;

namespace reset_native::bindings {

namespace {

namespace rs = reset_native::sampler;

template <typename T>
T* ptr(std::uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

rs::StateView state_view(std::int64_t slots, std::int32_t window, std::uintptr_t win, std::uintptr_t sums,
                         std::uintptr_t ints) {
  return rs::StateView{slots, window, ptr<float>(win), ptr<double>(sums), ptr<std::int64_t>(ints)};
}

rs::DType dtype_from(int code) {
  if (code < 0 || code > 2) throw InvalidType("logits dtype code must be 0 (float32), 1 (bfloat16) or 2 (float16)");
  return static_cast<rs::DType>(code);
}

rs::Batch batch_from(std::int64_t rows, std::uintptr_t last_tokens, std::uintptr_t slots) {
  return rs::Batch{rows, ptr<const std::int64_t>(last_tokens), slots ? ptr<const std::int64_t>(slots) : nullptr};
}

}  // namespace

void bind_sampler(py::module_& m) {
  py::class_<rs::Config>(m, "Config")
      .def(py::init([](double t_low, double tau0, double t_high, std::int32_t window, double top_p,
                       std::int64_t top_k) {
             rs::Config c{t_low, tau0, t_high, window, top_p, top_k};
             rs::validate(c);
             return c;
           }),
           py::arg("t_low"), py::arg("tau0"), py::arg("t_high"), py::arg("window"), py::arg("top_p"), py::arg("top_k"))
      .def_readonly("t_low", &rs::Config::t_low)
      .def_readonly("tau0", &rs::Config::tau0)
      .def_readonly("t_high", &rs::Config::t_high)
      .def_readonly("window", &rs::Config::window)
      .def_readonly("top_p", &rs::Config::top_p)
      .def_readonly("top_k", &rs::Config::top_k);

  m.attr("GREEDY_TEMPERATURE") = rs::kGreedyTemperature;
  m.attr("MAX_WINDOW") = rs::kMaxWindow;
  m.attr("SLOT_INTS") = static_cast<int>(rs::kSlotInts);
  m.attr("SLOT_SUMS") = static_cast<int>(rs::kSlotSums);
  m.attr("ERROR_FLAGS") = py::dict(py::arg("nan") = static_cast<int>(rs::kErrorNaN),
                                   py::arg("all_neg_inf") = static_cast<int>(rs::kErrorAllNegInf),
                                   py::arg("token_range") = static_cast<int>(rs::kErrorTokenRange),
                                   py::arg("slot_range") = static_cast<int>(rs::kErrorSlotRange),
                                   py::arg("slot_twice") = static_cast<int>(rs::kErrorSlotTwice),
                                   py::arg("entropy") = static_cast<int>(rs::kErrorEntropy),
                                   py::arg("stalled") = static_cast<int>(rs::kErrorStalled));

  m.def("default_slot_seed", [](std::uint64_t seed, std::int64_t slot) { return rs::default_slot_seed(seed, slot); });
  m.def("uniform", [](std::uint64_t seed, std::uint64_t position) { return rs::uniform(seed, position); });
  m.def("reset_slot",
        [](std::int64_t slots, std::int32_t window, std::uintptr_t win, std::uintptr_t sums, std::uintptr_t ints,
           std::int64_t slot, std::uint64_t slot_seed) {
          rs::reset_slot(state_view(slots, window, win, sums, ints), slot, slot_seed);
        });
  m.def("row_entropy", [](std::uintptr_t row, std::int64_t vocab, int dtype) {
    std::int64_t argmax = -1;
    const float h = rs::row_entropy(ptr<const void>(row), vocab, dtype_from(dtype), &argmax);
    return py::make_tuple(h, argmax);
  });
  m.def("sample_row", [](std::uintptr_t row, std::int64_t vocab, double temperature, std::int64_t top_k, double top_p,
                         double u) { return rs::sample_row(ptr<const float>(row), vocab, temperature, top_k, top_p, u); });

  m.def(
      "update",
      [](const rs::Config& config, std::uintptr_t classes, std::int64_t vocab, std::int64_t slots, std::int32_t window,
         std::uintptr_t win, std::uintptr_t sums, std::uintptr_t ints, std::int64_t rows, std::uintptr_t last_tokens,
         std::uintptr_t slot_ids, std::uintptr_t entropies, std::uintptr_t temperatures) {
        rs::update(config, ptr<const std::uint8_t>(classes), vocab, state_view(slots, window, win, sums, ints),
                   batch_from(rows, last_tokens, slot_ids), ptr<const float>(entropies), ptr<float>(temperatures));
      },
      py::call_guard<py::gil_scoped_release>());
  m.def(
      "decode_step",
      [](const rs::Config& config, std::uintptr_t classes, std::int64_t vocab, std::int64_t slots, std::int32_t window,
         std::uintptr_t win, std::uintptr_t sums, std::uintptr_t ints, std::int64_t rows, std::uintptr_t last_tokens,
         std::uintptr_t slot_ids, std::uintptr_t logits, int dtype, std::int64_t row_stride, std::uintptr_t tokens,
         std::uintptr_t temperatures, std::uintptr_t entropies) {
        rs::decode_step(config, ptr<const std::uint8_t>(classes), vocab, state_view(slots, window, win, sums, ints),
                        batch_from(rows, last_tokens, slot_ids), ptr<const void>(logits), dtype_from(dtype), row_stride,
                        ptr<std::int64_t>(tokens), ptr<float>(temperatures), ptr<float>(entropies));
      },
      py::call_guard<py::gil_scoped_release>());

  m.def("device_workspace_bytes", &rs::device_workspace_bytes, py::arg("slots"), py::arg("vocab"),
        "Bytes of device workspace decode_step_cuda needs for a state of `slots` slots and `vocab` ids.");

#if RESET_NATIVE_WITH_CUDA
  m.def(
      "decode_step_cuda",
      [](const rs::Config& config, std::uintptr_t classes, std::int64_t vocab, std::int64_t slots, std::int32_t window,
         std::uintptr_t win, std::uintptr_t sums, std::uintptr_t ints, std::int64_t rows, std::uintptr_t last_tokens,
         std::uintptr_t slot_ids, std::uintptr_t logits, int dtype, std::int64_t row_stride, std::uintptr_t tokens,
         std::uintptr_t temperatures, std::uintptr_t entropies, std::uintptr_t error_flag, std::uintptr_t slot_busy,
         std::uintptr_t workspace, std::int64_t workspace_bytes, std::uintptr_t stream) {
        rs::decode_step_cuda(config, ptr<const std::uint8_t>(classes), vocab, state_view(slots, window, win, sums, ints),
                             batch_from(rows, last_tokens, slot_ids), ptr<const void>(logits), dtype_from(dtype),
                             row_stride, ptr<std::int64_t>(tokens), ptr<float>(temperatures), ptr<float>(entropies),
                             rs::DeviceScratch{ptr<std::int32_t>(error_flag), ptr<std::int32_t>(slot_busy),
                                               ptr<void>(workspace), workspace_bytes},
                             ptr<void>(stream));
      },
      py::call_guard<py::gil_scoped_release>());
  m.def(
      "update_cuda",
      [](const rs::Config& config, std::uintptr_t classes, std::int64_t vocab, std::int64_t slots, std::int32_t window,
         std::uintptr_t win, std::uintptr_t sums, std::uintptr_t ints, std::int64_t rows, std::uintptr_t last_tokens,
         std::uintptr_t slot_ids, std::uintptr_t entropies, std::uintptr_t temperatures, std::uintptr_t error_flag,
         std::uintptr_t slot_busy, std::uintptr_t stream) {
        rs::update_cuda(config, ptr<const std::uint8_t>(classes), vocab, state_view(slots, window, win, sums, ints),
                        batch_from(rows, last_tokens, slot_ids), ptr<const float>(entropies), ptr<float>(temperatures),
                        rs::DeviceScratch{ptr<std::int32_t>(error_flag), ptr<std::int32_t>(slot_busy), nullptr, 0},
                        ptr<void>(stream));
      },
      py::call_guard<py::gil_scoped_release>());
  m.def(
      "decode_step_cuda_path",
      [](const rs::Config& config, std::int64_t rows, std::int64_t vocab, int dtype) {
        return std::string(rs::decode_step_cuda_path(config, rows, vocab, dtype_from(dtype)));
      },
      py::arg("config"), py::arg("rows"), py::arg("vocab"), py::arg("dtype"),
      "The CUDA path decode_step_cuda takes for this shape on the current device: resident, one-kernel or kernels.");
#endif
}

}  // namespace reset_native::bindings
