"""Stream-K of the warp-specialised medium-M kernel (cuda/nvfp4/gemm_ws_kernel.cuh, RESET_NATIVE_GEMM_MID_SK=1): the
call's (token block, row block, K stage) line cut into one range per CTA, each block stored by the CTA that ends it
after adding the pieces lower CTAs published. fp64 math on the same bytes where blocks span one, two and many CTAs and
CTAs span many blocks, poisoned outputs and workspace (the flags live there: the permutation kernel zeroes them every
call), the same bits on every call and in CUDA-graph replays, and agreement with the grid of blocks. GPU only."""
import pytest

torch = pytest.importorskip("torch")
from reset_native import _nvfp4_cuda as nc  # noqa: E402
from reset_native import nvfp4  # noqa: E402

import nvfp4_gpu_reference as ref  # noqa: E402

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not getattr(nc._native, "cuda_gemm_mid_wgmma", False),
                                 reason="build without sm_90a (no wgmma kernels)")]

WS_SHAPES = ["ws16c2", "ws32c2", "ws64c2", "ws128c2", "ws32c3", "ws64c3", "ws128c3", "ws32c4", "ws64c4", "ws32c2m2",
             "ws64c2m2"]

# (n, k, m): one block of one stage (a single CTA); 3 stages per block (blocks over 2 CTAs of >= 4 stages); 32 stages
# per block over few blocks (each block over many CTAs: several pieces per owner); ragged rows and several token
# blocks; many 2-stage blocks (CTAs over several whole blocks, ranges ending mid-block); long K (rings wrap inside a
# segment and across segments)
SHAPES = [(5, 128, 40), (1000, 384, 100), (640, 4096, 48), (4097, 2048, 33), (36000, 256, 24), (12000, 2560, 33)]


_case = ref.mid_case


@pytest.fixture
def stream_k(monkeypatch):
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "mid")
    monkeypatch.setenv("RESET_NATIVE_GEMM_MID_SK", "1")
    return monkeypatch


def _ctas(n, k, m):
    return ref.mid_launch_plan(n, k, m)[2]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("n,k,m", SHAPES)
@pytest.mark.parametrize("shape", WS_SHAPES)
def test_stream_k_matches_fp64(shape, n, k, m, dtype, stream_k):
    stream_k.setenv("RESET_NATIVE_GEMM_MID", shape)
    assert _ctas(n, k, m) >= 1
    t, x, b = _case(n, k, m, dtype, int(torch.randint(0, 2**31, ())), bias=m % 2 == 0)
    y = nvfp4.gemv(t, x, bias=b)
    assert y.dtype == dtype and y.shape == (m, n)
    ref.check_vs_fp64_weights(y, x, ref.dequantized64(t), "bf16", b)


def test_the_switch_and_the_cta_count(stream_k):
    """SK=1: one CTA per resident slot at most, each >= 4 K stages (fewer CTAs on small calls); SK=0: the grid."""
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    stream_k.setenv("RESET_NATIVE_GEMM_MID", "ws128c2")
    assert _ctas(36000, 256, 24) == sms  # 282 row blocks x 2 stages
    assert _ctas(1000, 384, 100) == 8 * 3 // 4  # 8 row blocks x 3 stages
    assert _ctas(5, 128, 40) == 1
    stream_k.setenv("RESET_NATIVE_GEMM_MID", "ws64c2m2")
    assert _ctas(36000, 4096, 24) == 2 * sms  # two CTAs per SM
    stream_k.setenv("RESET_NATIVE_GEMM_MID_SK", "0")
    assert _ctas(36000, 256, 24) == 0


@pytest.mark.parametrize("shape", ["ws32c4", "ws64c2", "ws128c2", "ws64c2m2"])
def test_every_output_over_poison_and_the_same_bits_every_call(shape, stream_k):
    """NaN output and workspace (its flags read non-zero until the call zeroes them): every output written, owners
    waited for the pieces of this call (a stale flag would let them add NaN), twice the same bits."""
    stream_k.setenv("RESET_NATIVE_GEMM_MID", shape)
    for n, k, m in [(1000, 384, 100), (640, 4096, 48), (36000, 256, 24)]:
        assert _ctas(n, k, m) >= 1
        t, x, b = _case(n, k, m, torch.bfloat16, 13, bias=True)
        outs = [ref.mid_gemm_over_poison(t, x, b) for _ in range(2)]
        ref.check_vs_fp64_weights(outs[0], x, ref.dequantized64(t), "bf16", b)
        assert torch.equal(outs[0], outs[1])


def test_stream_k_and_the_grid_agree_within_the_sum_order(stream_k):
    """Same products, fp32 sums cut at other stages: within the fp64 bound each, mostly the same bits."""
    n, k, m = 4097, 2048, 64
    assert _ctas(n, k, m) > 0
    t, x, b = _case(n, k, m, torch.bfloat16, 21, bias=True)
    y_sk = nvfp4.gemv(t, x, bias=b)
    stream_k.setenv("RESET_NATIVE_GEMM_MID_SK", "0")
    y_grid = nvfp4.gemv(t, x, bias=b)
    for y in (y_sk, y_grid):
        ref.check_vs_fp64_weights(y, x, ref.dequantized64(t), "bf16", b)
    assert (y_sk != y_grid).double().mean() < 0.2


@pytest.mark.parametrize("m", [24, 48, 100])
def test_stream_k_replays_in_a_cuda_graph(m, stream_k):
    """The flags are zeroed inside the call (the permutation kernel), so replays need no reset: each replay reads
    its new x and gives the eager bits for it."""
    stream_k.delenv("RESET_NATIVE_GEMM_MID", raising=False)
    t, x, b = _case(6144, 1024, m, torch.bfloat16, 5, bias=True)
    assert _ctas(6144, 1024, m) >= 1
    y_eager, y_graph = ref.eager_then_graph_replay(lambda: nvfp4.gemv(t, x, bias=b), x)
    ref.check_vs_fp64_weights(y_graph, x, ref.dequantized64(t), "bf16", b)
    assert not torch.equal(y_graph, y_eager)
    assert torch.equal(y_graph, nvfp4.gemv(t, x, bias=b))  # the replay's bits are the eager call's on the same x


def test_the_workspace_holds_x_the_pieces_and_the_flags(stream_k):
    """Permuted x (32 tokens x K x 2 bytes, a multiple of 256), one piece per CTA (its consumer threads' fp32
    accumulators: 256 threads x 16 for ws32c2), one flag per CTA and consumer warp; the launcher rejects less."""
    stream_k.setenv("RESET_NATIVE_GEMM_MID", "ws32c2")
    x = torch.empty(20, 1024, dtype=torch.bfloat16, device="cuda")
    assert _ctas(64, 1024, 20) == 2  # 8 stages: 2 CTAs of 4
    ok, ws = nc.gemm_mid_plan(64, 1024, x)
    assert ok and ws == 32 * 1024 * 2 + 2 * 256 * 16 * 4 + 2 * 8 * 4
    t, x, b = _case(64, 1024, 20, torch.bfloat16, 1, bias=True)
    out = torch.empty(20, 64, dtype=torch.bfloat16, device="cuda")
    buf = torch.empty(ws // 4, dtype=torch.float32, device="cuda")
    with pytest.raises(ValueError, match=rf"workspace needs {ws} bytes"):
        nc._native.cuda_gemm_mid(t.packed.data_ptr(), t.block_scales.data_ptr(), t.global_scale, 64, 1024,
                                 x.data_ptr(), 2, 20, b.data_ptr(), out.data_ptr(), buf.data_ptr(), ws - 4,
                                 torch.cuda.current_stream().cuda_stream)


@pytest.mark.parametrize("pdl", ["1", "0", "gemm"])
def test_the_rules_stream_k_in_a_chain_of_calls(pdl, monkeypatch):
    """The rule's own stream-K (no switch set) where its grid misses a wave: 1.25 waves of 128-row blocks of 64 tokens
    on this GPU. Three calls back to back on one stream, no synchronisation (the caching allocator hands each call the
    workspace the previous one used, its flags and pieces included), with programmatic dependent launch, without, and
    on the GEMM only: every output against fp64."""
    if torch.cuda.get_device_capability() != (9, 0):
        pytest.skip("stream-K runs on compute capability 9.0 only")
    ref.clear_gemv_env(monkeypatch, "RESET_NATIVE_GEMM_MID", "RESET_NATIVE_GEMM_MID_SK", "RESET_NATIVE_GEMM_MID_SPLITS")
    monkeypatch.setenv("RESET_NATIVE_GEMV_PREFILL", "mid")
    monkeypatch.setenv("RESET_NATIVE_GEMM_MID_PDL", pdl)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    n, k, m = 128 * (5 * sms // 4), 1024, 48  # 192-row blocks fill only ~83% of a wave: 2 warpgroups, 128 rows
    assert _ctas(n, k, m) == sms
    t, x, b = _case(n, k, m, torch.bfloat16, 31, bias=True)
    xs = [x, x * -0.5, x * 2.0]
    ys = [nvfp4.gemv(t, xi, bias=b) for xi in xs]
    w64 = ref.dequantized64(t)
    for xi, y in zip(xs, ys):
        ref.check_vs_fp64_weights(y, xi, w64, "bf16", b)
