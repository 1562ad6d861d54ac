import os

import pytest


def _torch_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    """GPU tests skip cleanly without a device; slow tests run only with RESET_NATIVE_SLOW=1."""
    import reset_native

    have_gpu = reset_native.has_cuda() and _torch_cuda()
    run_slow = os.environ.get("RESET_NATIVE_SLOW") == "1"
    for item in items:
        if "gpu" in item.keywords and not have_gpu:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device and a CUDA build"))
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow: set RESET_NATIVE_SLOW=1"))


@pytest.fixture
def fp32_cublas_reductions():
    """cuBLAS may reduce split-K partial sums in 16 bits when torch allows it (its default). Tests whose bounds are for
    fp32 sums (the prefill route's) use this fixture: it disallows that and restores the flags after."""
    import torch

    m = torch.backends.cuda.matmul
    old = (m.allow_fp16_reduced_precision_reduction, m.allow_bf16_reduced_precision_reduction)
    m.allow_fp16_reduced_precision_reduction = m.allow_bf16_reduced_precision_reduction = False
    yield
    m.allow_fp16_reduced_precision_reduction, m.allow_bf16_reduced_precision_reduction = old
