#include <pybind11/stl.h>

#include "bindings.hpp"
#include "reset_native/build_info.hpp"
#include "reset_native/error.hpp"

namespace py = pybind11;

namespace reset_native::bindings {

void bind_core(py::module_& m) {
  // One translator with ordered catches (most derived first) decides each C++ -> Python mapping.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const InvalidArgument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const InvalidType& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const Unsupported& e) {
      PyErr_SetString(PyExc_NotImplementedError, e.what());
    } catch (const Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });

  m.def("build_info", [] {
    BuildInfo i = build_info();
    py::dict d;
    d["version"] = i.version;
    d["compiler"] = i.compiler;
    d["cuda_compiled"] = i.cuda_compiled;
    d["cuda_arch"] = i.cuda_arch;
    d["openmp"] = i.openmp;
    d["threads"] = i.threads;
    d["simd"] = i.simd;
    return d;
  });
  m.def("cuda_device_available", &cuda_device_available);

  // Raises the C++ error named by `kind` so tests can prove the translation end to end.
  m.def("_raise_for_test", [](const std::string& kind, const std::string& message) {
    if (kind == "argument") throw InvalidArgument(message);
    if (kind == "type") throw InvalidType(message);
    if (kind == "unsupported") throw Unsupported(message);
    if (kind == "error") throw Error(message);
    throw InvalidArgument("kind must be one of argument/type/unsupported/error, got '" + kind + "'");
  });
}

}  // namespace reset_native::bindings
