"""Per-call plumbing of the torch-facing CUDA entry points, at the lowest host cost.

Every CUDA entry point (NVFP4 GEMV, dequantize, the sampler step, the fused ops) is a torch custom op so that
torch.compile can trace it, but calling through the custom-op dispatcher costs ~10 us of host time per call, and
``with torch.cuda.device(...)`` plus ``torch.cuda.current_stream(device)`` a few more (bench/RESULTS.md, session
22: an eager NVFP4 GEMV took 44-76 us of host time against 14-18 us for torch.matmul). Outside a torch.compile
trace the entry points call their implementation directly (:func:`eager`): the implementation is the same Python
function the op wraps, so both routes launch the same kernels with the same checks, and CUDA-graph capture is
unaffected (it records kernel launches, not Python calls).

Importing this module does not import torch; the helpers import it on first use (torch is optional).
"""
import contextlib


def _torch():
    import torch

    return torch


def eager() -> bool:
    """True unless torch.compile (dynamo) is tracing this call: then the custom op must appear in the graph."""
    return not _torch().compiler.is_compiling()


def raw_stream(index: int) -> int:
    """The cudaStream_t (as an int) of torch's current stream on CUDA device `index`."""
    torch = _torch()
    get = getattr(torch._C, "_cuda_getCurrentRawStream", None)  # what torch's own generated code calls
    if get is not None:
        return int(get(index))
    return int(torch.cuda.current_stream(index).cuda_stream)


def current_device() -> int:
    torch = _torch()
    get = getattr(torch._C, "_cuda_getDevice", None)
    return int(get()) if get is not None else int(torch.cuda.current_device())


def on_device(index: int):
    """A context that makes CUDA device `index` current for the native call (torch.cuda.device), or a no-op when it
    already is: the native launchers use the current device for their occupancy and SM-count queries."""
    if index == current_device():
        return contextlib.nullcontext()
    return _torch().cuda.device(index)


def eager_without_grad(*tensors) -> bool:
    """eager(), and nothing for autograd to record: grad mode off, or no argument requiring grad. The ops have no
    autograd formula, so through the dispatcher such a call records a node whose backward raises; the body alone
    would return outputs silently cut from the graph. Those calls keep the op (inference never makes them)."""
    if not eager():
        return False
    return not _torch().is_grad_enabled() or not any(getattr(t, "requires_grad", False) for t in tensors)
