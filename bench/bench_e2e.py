"""End-to-end decode throughput: a Qwen3-8B-shaped transformers model with random weights, BF16 vs NVFP4.

BF16: the model as built (cuBLAS BF16 linears), sampled with reset_native's decode_step at a fixed temperature.
NVFP4: the same model after quantize_model (W4A16 GEMV from reset_native.nvfp4, lm_head kept in BF16), sampled
with ReSET. Both decode with reset_native.integrations.generate: static KV cache, one CUDA graph per decode step.
Latency does not depend on weight values, so random weights stand in for the real checkpoint (no download).
On CUDA both configurations run with reset_native's decoder-op fusions (reset_native.integrations.fused_ops:
one-kernel RMSNorm, q/k head norm + RoPE + KV cache write, SiLU * up, residual adds inside the projections)
unless --no-fuse-ops (--no-fuse-norms: only the RMSNorm
fusion); the table header says which. The NVFP4 model runs q/k/v and gate/up as one GEMV per group
(quantize_model's default fuse_projections; --no-fuse-projections quantizes them one by one); the BF16
baseline keeps transformers' separate projections.
Decode tokens/s excludes the prefill; the prefill column is the time to the first token (generate's prefill_s: the
prompt's forward pass, the decoder's setup and the first sample). --prompt-len sets its size: prompts of >= 80
tokens take the NVFP4 linears' dequantize + cuBLAS prefill route (RESET_NATIVE_GEMV_PREFILL=slices: the 16-token
GEMV slices, for an A/B). Prints a table; writes JSON to bench/out/bench_e2e.json.

    python bench/bench_e2e.py                 # full 36 layers, batch 1 and 8
    python bench/bench_e2e.py --layers 4      # quicker, fewer layers (say so when quoting numbers)
    python bench/bench_e2e.py --batch 1 --prompt-len 2048 --new-tokens 16 --prefill-ab  # time to first token, A/B
    python bench/bench_e2e.py --cpu-smollm --batch 1 16 --threads 1   # CPU: embedded SmolLM2-135M, float32 vs NVFP4
    python bench/bench_e2e.py --profile --batch 1  # per-kernel GPU time of one decode step (torch.profiler)
    python bench/bench_e2e.py --no-cuda-graph      # eager decode steps (host-bound: every launch from Python)
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path

QWEN3_8B = dict(hidden_size=4096, intermediate_size=12288, num_attention_heads=32, num_key_value_heads=8,
                head_dim=128, vocab_size=151936, rms_norm_eps=1e-6, rope_theta=1000000.0,
                tie_word_embeddings=False, max_position_embeddings=8192)
HBM_READ_TBS_H100 = 3.06  # measured on the lent H100 (SPEC-nvfp4.md section 4)


def build_model(layers: int, shape=None, device="cuda"):
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    cfg = Qwen3Config(num_hidden_layers=layers, **(shape or QWEN3_8B))
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # build in BF16 directly: an fp32 8B model would need 33 GB
    try:
        with torch.device(device):
            model = Qwen3ForCausalLM(cfg).to(torch.bfloat16).eval()
    finally:
        torch.set_default_dtype(previous)
    return model


def linear_weight_bytes(model) -> int:
    """Bytes the decode step reads for weights (every linear incl. lm_head; embeddings are only gathered)."""
    from torch import nn

    from reset_native.integrations.nvfp4_linear import NVFP4Linear

    total = 0
    for m in model.modules():
        if isinstance(m, nn.Linear):
            total += m.weight.numel() * m.weight.element_size()
        elif isinstance(m, NVFP4Linear):
            total += m.weight.numel() + m.weight_scale.numel()
    return total


def measure(model, batch, args, sampler):
    """Median decode tokens/s over args.repeats runs (after one warm-up run); errors are reported, not raised."""
    try:
        return _measure(model, batch, args, sampler)
    except Exception as exc:  # noqa: BLE001 - one failing configuration must not hide the others
        import traceback

        traceback.print_exc()
        return {"tokens_per_s": float("nan"), "tokens_per_s_all": [], "ms_per_step": float("nan"),
                "prefill_ms": float("nan"),
                "cuda_graph": False, "notes": [f"failed: {type(exc).__name__}: {exc}"]}


def _measure(model, batch, args, sampler):
    import torch

    from reset_native.integrations.generate import generate

    vocab = model.config.vocab_size
    prompt = torch.randint(0, vocab, (batch, args.prompt_len), device=next(model.parameters()).device)
    runs = []
    for rep in range(args.repeats + 1):  # the first run warms up allocator, cuBLAS, kernels
        res = generate(model, None, prompt, sampler=sampler, temperature=0.6, top_p=args.top_p,
                       max_new_tokens=args.new_tokens, seed=rep, stop_at_eos=False,
                       cuda_graph=False if args.no_cuda_graph else "auto")
        if rep:
            runs.append(res)
    tps = [r.tokens_per_s for r in runs]
    return {"tokens_per_s": statistics.median(tps), "tokens_per_s_all": tps,
            "ms_per_step": 1e3 * batch / statistics.median(tps), "cuda_graph": all(r.cuda_graph for r in runs),
            "prefill_ms": 1e3 * statistics.median(r.prefill_s for r in runs),
            "notes": sorted({n for r in runs for n in r.notes})}


def profile_step(model, batch, sampler, label, steps=4, top=24):
    """Per-kernel GPU time of an eager decode step (the kernels a CUDA graph replays), from torch.profiler."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from reset_native import sampler as sampler_api
    from reset_native.integrations.generate import _Decoder, fixed_config

    cfg = fixed_config(0.6, top_p=0.95) if sampler == "fixed" else sampler
    vocab = model.config.vocab_size
    with torch.inference_mode():
        ids = torch.randint(0, vocab, (batch, 64), device="cuda")
        state = sampler_api.ReSETState(cfg, batch, vocab, device="cuda", seed=0)
        dec = _Decoder(model, ids, torch.ones_like(ids, dtype=torch.bool), steps + 4, state)
        dec.prefill()
        dec.step()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(steps):
                dec.step()
            torch.cuda.synchronize()
    rows, ops = [], []
    for e in prof.key_averages():
        t = getattr(e, "self_device_time_total", None)
        if t is None:
            t = getattr(e, "self_cuda_time_total", 0)
        if e.device_type.name == "CPU":  # torch ops: the device time of the kernels each one launched
            total_t = getattr(e, "device_time_total", 0)
            if total_t > 0 and e.key.startswith(("aten::", "reset_native")):
                ops.append((total_t / steps, e.count / steps, e.key))
        elif t > 0:
            rows.append((t / steps, e.count / steps, e.key))
    rows.sort(reverse=True)
    total = sum(r[0] for r in rows)
    print(f"\n[{label}, batch {batch}] GPU kernel time per decode step: {total / 1e3:.2f} ms "
          f"({sum(r[1] for r in rows):.0f} kernels)")
    for t, n, key in rows[:top]:
        print(f"  {t / 1e3:8.3f} ms {n:6.0f}x  {key[:100]}")
    ops.sort(reverse=True)
    print(f"[{label}, batch {batch}] by torch op (device time of the kernels each op launched; nested ops overlap):")
    for t, n, key in ops[:top]:
        print(f"  {t / 1e3:8.3f} ms {n:6.0f}x  {key[:80]}")
    return total


def main(argv=None) -> int:
    import torch

    import reset_native
    from reset_native.integrations.nvfp4_linear import quantize_model
    from reset_native.sampler import ReSETConfig

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=36, help="decoder layers (Qwen3-8B has 36)")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    p.add_argument("--prompt-len", type=int, default=64)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--json", default="bench/out/bench_e2e.json")
    p.add_argument("--dry-run-cpu", action="store_true", help="tiny shapes on the CPU: checks the script, no timing")
    p.add_argument("--cpu-smollm", action="store_true",
                   help="CPU instead: the embedded SmolLM2-135M-Instruct, float32 baseline vs NVFP4 + ReSET")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--no-fuse-ops", action="store_true",
                   help="keep transformers' own decoder ops (norms, RoPE, SiLU * up) in both configurations")
    p.add_argument("--no-fuse-norms", action="store_true",
                   help="fuse only the RMSNorms' neighbours: keep transformers' RMSNorm (7 kernels per norm)")
    p.add_argument("--no-fuse-projections", action="store_true",
                   help="quantize q/k/v and gate/up one by one (default: one GEMV per group, NVFP4 only)")
    p.add_argument("--no-cuda-graph", action="store_true",
                   help="decode eagerly (no CUDA graph): what a caller pays in host time per kernel launch")
    p.add_argument("--prefill-ab", action="store_true",
                   help="also time NVFP4 with RESET_NATIVE_GEMV_PREFILL=slices (16-token GEMV slices in the prefill)")
    p.add_argument("--profile", action="store_true",
                   help="GPU: print the per-kernel time of one decode step (BF16 and NVFP4+ReSET), no timing runs")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    shape, device = None, "cuda"
    if args.cpu_smollm:
        from reset_native.integrations.models import load_model

        device = "cpu"
        model = load_model(None, device="cpu")[0]
    elif args.dry_run_cpu:
        shape = dict(QWEN3_8B, hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
                     head_dim=16, vocab_size=256)
        device = "cpu"
    elif not torch.cuda.is_available() or not reset_native.has_cuda():
        print("bench_e2e needs a CUDA device and a CUDA build of reset_native", file=sys.stderr)
        return 1

    t0 = time.perf_counter()
    if not args.cpu_smollm:
        model = build_model(args.layers, shape, device)
    fused = {}
    if device == "cuda" and not args.no_fuse_ops:
        from reset_native.integrations.fused_attention import fuse_attention
        from reset_native.integrations.fused_mlp import fuse_mlp
        from reset_native.integrations.fused_norm import fuse_rms_norms
        from reset_native.integrations.fused_residual import fuse_residuals

        # both configurations: the baseline gets the same model code (its residual adds go into cuBLAS addmm)
        fused = {"attention": fuse_attention(model), "mlp": fuse_mlp(model), "residual": fuse_residuals(model)}
        if not args.no_fuse_norms:
            fused["rms_norm"] = fuse_rms_norms(model)
    fused_text = ", ".join(f"{k} {v}" for k, v in fused.items() if v) or "none"
    bf16_bytes = linear_weight_bytes(model)
    what = "SmolLM2-135M (float32)" if args.cpu_smollm else f"Qwen3-8B-shaped model ({args.layers} layers)"
    print(f"built {what} in {time.perf_counter() - t0:.1f} s; linear weights {bf16_bytes / 1e9:.2f} GB",
          flush=True)
    if args.profile:
        for b in args.batch:
            profile_step(model, b, "fixed", "BF16")
        quantize_model(model, fuse_projections=not args.no_fuse_projections)
        reset_cfg = ReSETConfig(t_low=0.1, tau0=0.5505, t_high=1.0, top_p=args.top_p)
        for b in args.batch:
            profile_step(model, b, reset_cfg, "NVFP4+ReSET")
        return 0
    results = {"bf16": {}, "nvfp4_reset": {}}  # "bf16" = the unquantized baseline (float32 with --cpu-smollm)
    base = "float32" if args.cpu_smollm else "BF16"
    for b in args.batch:
        results["bf16"][b] = measure(model, b, args, "fixed")
        print(f"{base} batch {b}: {results['bf16'][b]['tokens_per_s']:.1f} tokens/s", flush=True)
    t0 = time.perf_counter()
    report = quantize_model(model, fuse_projections=not args.no_fuse_projections)
    if device == "cuda":
        torch.cuda.synchronize()
    nv_bytes = linear_weight_bytes(model)
    print(f"quantized {len(report['quantized'])} linears in {time.perf_counter() - t0:.1f} s; weights read per "
          f"step {nv_bytes / 1e9:.2f} GB (lm_head not quantized)", flush=True)
    reset_cfg = ReSETConfig(t_low=0.1, tau0=0.5505, t_high=1.0, top_p=args.top_p)  # paper's Qwen3-8B values
    for b in args.batch:
        results["nvfp4_reset"][b] = measure(model, b, args, reset_cfg)
        print(f"NVFP4+ReSET batch {b}: {results['nvfp4_reset'][b]['tokens_per_s']:.1f} tokens/s", flush=True)
        if args.prefill_ab:
            os.environ["RESET_NATIVE_GEMV_PREFILL"] = "slices"
            try:
                results.setdefault("nvfp4_slices_prefill", {})[b] = measure(model, b, args, reset_cfg)
            finally:
                os.environ.pop("RESET_NATIVE_GEMV_PREFILL", None)
            print(f"NVFP4+ReSET batch {b}, prefill as 16-token GEMV slices: "
                  f"{results['nvfp4_slices_prefill'][b]['prefill_ms']:.1f} ms to the first token (route: "
                  f"{results['nvfp4_reset'][b]['prefill_ms']:.1f} ms)", flush=True)

    dev = torch.cuda.get_device_name() if device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"\n{dev}, {what}, prompt {args.prompt_len}, {args.new_tokens} new tokens, "
          f"median of {args.repeats}, decoder ops fused: {fused_text}, "
          f"NVFP4 q/k/v and gate/up fused: {'yes (%d groups)' % len(report['fused']) if report['fused'] else 'no'}")
    print(f"{'batch':>5} {base + ' tok/s':>13} {'NVFP4+ReSET tok/s':>18} {'speedup':>8} {base + ' ms':>10} "
          f"{'NVFP4 ms':>9} {'NVFP4 weight GB/s':>18} {'graph':>6} {base + ' prefill ms':>16} {'NVFP4 prefill ms':>17}")
    rows = []
    for b in args.batch:
        bf, nv = results["bf16"][b], results["nvfp4_reset"][b]
        speed = nv["tokens_per_s"] / bf["tokens_per_s"]
        gbs = nv_bytes / (nv["ms_per_step"] * 1e-3) / 1e9
        rows.append({"batch": b, "bf16_tokens_per_s": bf["tokens_per_s"], "nvfp4_tokens_per_s": nv["tokens_per_s"],
                     "speedup": speed, "bf16_ms_per_step": bf["ms_per_step"], "nvfp4_ms_per_step": nv["ms_per_step"],
                     "nvfp4_weight_gbs": gbs, "bf16_weight_gbs": bf16_bytes / (bf["ms_per_step"] * 1e-3) / 1e9,
                     "cuda_graph": bf["cuda_graph"] and nv["cuda_graph"], "bf16_prefill_ms": bf["prefill_ms"],
                     "nvfp4_prefill_ms": nv["prefill_ms"]})
        print(f"{b:>5} {bf['tokens_per_s']:>13.1f} {nv['tokens_per_s']:>18.1f} {speed:>7.2f}x "
              f"{bf['ms_per_step']:>10.2f} {nv['ms_per_step']:>9.2f} {gbs:>18.0f} {str(rows[-1]['cuda_graph']):>6} "
              f"{bf['prefill_ms']:>16.1f} {nv['prefill_ms']:>17.1f}")
    for kind in results:
        for b in args.batch:
            for n in results[kind][b]["notes"]:
                print(f"note ({kind}, batch {b}): {n}")
    floor_ms = nv_bytes / (HBM_READ_TBS_H100 * 1e12) * 1e3
    if device == "cuda":
        print(f"NVFP4 weight-read floor per step at {HBM_READ_TBS_H100} TB/s: {floor_ms:.2f} ms; BF16: "
              f"{bf16_bytes / (HBM_READ_TBS_H100 * 1e12) * 1e3:.2f} ms")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": dev, "model": what, "baseline": base, "decoder_ops_fused": fused,
                               "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                               "torch": torch.__version__, "args": vars(args), "bf16_weight_bytes": bf16_bytes,
                               "nvfp4_weight_bytes": nv_bytes, "rows": rows, "raw": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
