#include "bindings.hpp"

namespace py = pybind11;

namespace reset_native::bindings {

void bind_nvfp4_cuda(py::module_& m) { (void)m; }

}  // namespace reset_native::bindings
