"""`reset-native study`: float32 vs NVFP4 (fixed temperature) vs NVFP4 + ReSET on arithmetic word problems.

Measures, on the embedded model (or --model) and a seeded offline problem set:
- token-entropy distributions of what each configuration generates (histogram with log frequency, CDF,
  80th percentile marked);
- argmax flips: teacher-forced on the float32 model's own answers, how often the NVFP4 model's most likely
  token differs, by the float32 entropy of the position; and, per configuration, how often the sampled token
  is not the argmax at low-entropy positions (what ReSET's T_low is meant to cut);
- answer accuracy over several samples per problem, with a 95% bootstrap interval over problems, and the
  paired difference ReSET minus fixed-temperature NVFP4.
tau0 is calibrated on a held-out split disjoint from the evaluation problems. Heavy imports stay inside
functions so the CLI starts fast.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence, TextIO

LOW_ENTROPY_NATS = 0.5
ENTROPY_BINS = (0.0, 0.05, 0.2, 0.5, 1.0, 2.0, float("inf"))
PROMPT_SUFFIX = " Think step by step, then give the final answer as a number."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="local checkpoint dir or .gguf (default: embedded SmolLM2-135M)")
    p.add_argument("--out", default="study_out", help="folder for results.json, summary.md and figures")
    p.add_argument("--problems", type=int, default=24, help="evaluation problems")
    p.add_argument("--calibration-problems", type=int, default=5, help="held-out problems that calibrate tau0")
    p.add_argument("--samples", type=int, default=4, help="samples per problem and configuration")
    p.add_argument("--max-new-tokens", type=int, default=160)
    p.add_argument("--batch", type=int, default=16, help="rows decoded together")
    p.add_argument("--temperature", type=float, default=0.6, help="the fixed-temperature baseline (paper: 0.6)")
    p.add_argument("--t-low", type=float, default=0.1, help="ReSET T_low (not tuned here: the paper's Qwen3-8B value)")
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")


def mean_ci(per_problem: Sequence[float], *, reps: int = 4000, seed: int = 0):
    """Mean of per-problem values with a 95% bootstrap interval over problems (percentile method).

    Resampling whole problems keeps the samples of one problem together (they are not independent)."""
    import numpy as np

    x = np.asarray(per_problem, dtype=np.float64)
    if x.size == 0:
        raise ValueError("mean_ci needs at least one value")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(reps, x.size))].mean(axis=1)
    return float(x.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _run_condition(model, tok, prompts, samples, sampler, args, log: TextIO, label: str):
    from .generate import generate

    rows = [(pi, s) for pi in range(len(prompts)) for s in range(samples)]
    records = [None] * len(rows)
    t0 = time.perf_counter()
    for start in range(0, len(rows), args.batch):
        chunk = rows[start:start + args.batch]
        res = generate(model, tok, [prompts[pi] for pi, _ in chunk], sampler=sampler, temperature=args.temperature,
                       top_p=args.top_p, max_new_tokens=args.max_new_tokens, seed=args.seed + start)
        for j, (pi, s) in enumerate(chunk):
            records[start + j] = {"problem": pi, "sample": s, "text": res.texts[j], "tokens": res.token_ids[j],
                                  "entropies": res.entropies[j], "temperatures": res.temperatures[j],
                                  "argmax": res.argmax_ids[j]}
        print(f"  {label}: {min(start + args.batch, len(rows))}/{len(rows)} rows, "
              f"{time.perf_counter() - t0:.0f} s", file=log, flush=True)
    return records


def _teacher_forced_flips(model_ref, model_q, tok, prompts, records):
    """Per generated position of the reference answers: (reference entropy, argmax flipped?)."""
    import torch

    out = []
    with torch.inference_mode():
        for rec in records:
            prompt_ids = tok(prompts[rec["problem"]], add_special_tokens=False)["input_ids"]
            gen = rec["tokens"]
            if not gen:
                continue
            ids = torch.tensor([prompt_ids + gen])
            lr = model_ref(ids).logits[0, len(prompt_ids) - 1:-1].float()
            lq = model_q(ids).logits[0, len(prompt_ids) - 1:-1].float()
            logp = torch.log_softmax(lr, -1)
            ent = -(logp.exp() * logp).nan_to_num().sum(-1)
            flip = lr.argmax(-1) != lq.argmax(-1)
            out.extend(zip(ent.tolist(), flip.tolist()))
    return out


def _binned(pairs, bins=ENTROPY_BINS):
    table = []
    for lo, hi in zip(bins[:-1], bins[1:]):
        sel = [f for e, f in pairs if lo <= e < hi]
        table.append({"lo": lo, "hi": hi, "n": len(sel), "flip_rate": (sum(sel) / len(sel)) if sel else None})
    return table


def _percentile(values: List[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


def _save(fig, out: Path, name: str) -> str:
    """Writes a finished figure to out/name (120 dpi) and closes it; returns the name."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(out / name, dpi=120)
    plt.close(fig)
    return name


def _figures(out: Path, conditions: Dict[str, dict], flips_table, accuracy) -> List[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = []
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    all_e = [e for c in conditions.values() for e in c["all_entropies"]]
    top = max(all_e) if all_e else 1.0
    bins = np.linspace(0, top, 50)
    fig, ax = plt.subplots(figsize=(7, 4))
    for (label, c), col in zip(conditions.items(), colors):
        ax.hist(c["all_entropies"], bins=bins, histtype="step", lw=1.6, color=col, label=label)
        ax.axvline(c["p80"], color=col, ls="--", lw=1)
    ax.set_yscale("log")
    ax.set(xlabel="token entropy (nats)", ylabel="tokens (log scale)",
           title="Entropy of generated tokens (dashed: 80th percentile)")
    ax.legend(fontsize=8)
    names.append(_save(fig, out, "study_entropy_hist.png"))

    fig, ax = plt.subplots(figsize=(7, 4))
    for (label, c), col in zip(conditions.items(), colors):
        e = np.sort(np.asarray(c["all_entropies"]))
        ax.plot(e, np.arange(1, len(e) + 1) / max(len(e), 1), color=col, label=label)
        ax.axvline(c["p80"], color=col, ls="--", lw=1)
    ax.axhline(0.8, color="grey", lw=0.8, ls=":")
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlim(0, top * 1.05)
    ax.set(xlabel="token entropy (nats, symlog)", ylabel="fraction of tokens",
           title="Entropy CDF (dashed: 80th percentile)")
    ax.legend(fontsize=8)
    names.append(_save(fig, out, "study_entropy_cdf.png"))

    fig, ax = plt.subplots(figsize=(7, 4))
    labels = [f"[{b['lo']:g}, {b['hi']:g})" for b in flips_table]
    rates = [b["flip_rate"] or 0.0 for b in flips_table]
    ax.bar(labels, rates, color="#d62728")
    for i, b in enumerate(flips_table):
        ax.text(i, rates[i], f"n={b['n']}", ha="center", va="bottom", fontsize=7)
    ax.set(xlabel="float32 token entropy (nats)", ylabel="argmax flip rate, NVFP4 vs float32",
           title="Teacher-forced argmax flips on the float32 model's answers")
    names.append(_save(fig, out, "study_flips.png"))

    fig, ax = plt.subplots(figsize=(7, 3.5))
    labs = list(accuracy)
    means = [accuracy[k]["mean"] for k in labs]
    err = [[accuracy[k]["mean"] - max(0.0, accuracy[k]["ci_low"]) for k in labs],
           [min(1.0, accuracy[k]["ci_high"]) - accuracy[k]["mean"] for k in labs]]
    ax.bar(labs, means, yerr=err, capsize=6, color=colors[:len(labs)])
    ax.set_ylabel("accuracy (95% bootstrap CI)")
    ax.set_ylim(0, max(0.05, min(1.0, 1.3 * max(accuracy[k]["ci_high"] for k in labs))))
    ax.set_title("Answer accuracy")
    names.append(_save(fig, out, "study_accuracy.png"))
    return names


def run_study(args: argparse.Namespace, log: TextIO = sys.stdout) -> int:
    import torch

    from .. import sampler as sampler_api
    from .models import chat_prompt, device_choice, load_model
    from .nvfp4_linear import quantize_model
    from .study_problems import extract_answer, make_problems

    for name in ("problems", "samples", "max_new_tokens", "batch", "calibration_problems"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = device_choice(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    print("study: loading the model", file=log, flush=True)
    model_ref, tok, kind = load_model(args.model, device=device)
    if kind == "nvfp4":
        raise ValueError("the study needs an unquantized model to compare against: pass a float checkpoint")
    model_q = copy.deepcopy(model_ref)
    report = quantize_model(model_q)
    newline_ids, double_newline_ids = sampler_api.newline_token_ids(tok)

    problems = make_problems(args.calibration_problems + args.problems, args.seed)
    calib, evalp = problems[:args.calibration_problems], problems[args.calibration_problems:]
    calib_prompts = [chat_prompt(tok, p.question + PROMPT_SUFFIX) for p in calib]
    prompts = [chat_prompt(tok, p.question + PROMPT_SUFFIX) for p in evalp]

    print("study: calibrating tau0 on the held-out split (NVFP4, fixed temperature)", file=log, flush=True)
    calib_records = _run_condition(model_q, tok, calib_prompts, 1, "fixed", args, log, "calibration")
    calib_entropies = [e for r in calib_records for e in r["entropies"]]
    tau0 = float(sampler_api.calibrate_tau0(calib_entropies, 80))
    reset_cfg = sampler_api.ReSETConfig(t_low=args.t_low, tau0=tau0, t_high=1.0, top_p=args.top_p,
                                        newline_ids=tuple(newline_ids), double_newline_ids=tuple(double_newline_ids))
    print(f"study: tau0 = {tau0:.4f} nats from {len(calib_entropies)} tokens", file=log, flush=True)

    fixed = f"T={args.temperature:g}"
    runs = {f"float32 {fixed}": (model_ref, "fixed"), f"NVFP4 {fixed}": (model_q, "fixed"),
            f"NVFP4 ReSET (T_low={args.t_low:g})": (model_q, reset_cfg)}
    conditions, accuracy, per_problem = {}, {}, {}
    for label, (model, sampler) in runs.items():
        print(f"study: {label}", file=log, flush=True)
        recs = _run_condition(model, tok, prompts, args.samples, sampler, args, log, label)
        correct = [[] for _ in evalp]
        for r in recs:
            r["predicted"] = extract_answer(r["text"])
            r["correct"] = r["predicted"] == evalp[r["problem"]].answer
            correct[r["problem"]].append(r["correct"])
        pp = [sum(c) / len(c) for c in correct]
        per_problem[label] = pp
        m, lo, hi = mean_ci(pp)
        accuracy[label] = {"mean": m, "ci_low": lo, "ci_high": hi, "n_problems": len(pp), "samples": args.samples}
        ents = [e for r in recs for e in r["entropies"]]
        low = [(tk != am) for r in recs for tk, am, e in zip(r["tokens"], r["argmax"], r["entropies"])
               if e < LOW_ENTROPY_NATS]
        below_tau0 = [(tk != am) for r in recs for tk, am, e in zip(r["tokens"], r["argmax"], r["entropies"])
                      if e < tau0]
        conditions[label] = {"records": recs, "all_entropies": ents, "p80": _percentile(ents, 80),
                             "mean_entropy": sum(ents) / max(len(ents), 1), "tokens": len(ents),
                             "non_argmax_rate_low_entropy": sum(low) / max(len(low), 1),
                             "low_entropy_positions": len(low),
                             "non_argmax_rate_below_tau0": sum(below_tau0) / max(len(below_tau0), 1),
                             "below_tau0_positions": len(below_tau0),
                             "mean_length": len(ents) / max(len(recs), 1),
                             "t_low_fraction": (sum(1 for r in recs for t in r["temperatures"]
                                                    if abs(t - args.t_low) < 1e-6)
                                                / max(len(ents), 1))}
        print(f"study: {label}: accuracy {m:.3f} [{lo:.3f}, {hi:.3f}]", file=log, flush=True)

    labels = list(runs)
    diffs = [a - b for a, b in zip(per_problem[labels[2]], per_problem[labels[1]])]
    dm, dlo, dhi = mean_ci(diffs)
    print("study: teacher-forced argmax flips (NVFP4 vs float32 on float32's answers)", file=log, flush=True)
    ref_first = [r for r in conditions[labels[0]]["records"] if r["sample"] == 0]
    flip_pairs = _teacher_forced_flips(model_ref, model_q, tok, prompts, ref_first)
    flips_table = _binned(flip_pairs)
    low_flips = [f for e, f in flip_pairs if e < LOW_ENTROPY_NATS]
    figures = _figures(out, conditions, flips_table, accuracy)

    summary = {
        "model": str(args.model or "embedded SmolLM2-135M-Instruct (GGUF Q4_1 expanded to float32)"),
        "device": device, "threads": torch.get_num_threads(), "seed": args.seed,
        "problems": len(evalp), "calibration_problems": len(calib), "samples": args.samples,
        "max_new_tokens": args.max_new_tokens, "top_p": args.top_p, "temperature": args.temperature,
        "t_low": args.t_low, "tau0": tau0, "calibration_tokens": len(calib_entropies),
        "nvfp4_bytes": report["bytes_after"], "float32_bytes": report["bytes_before"],
        "accuracy": accuracy,
        "reset_minus_fixed_nvfp4": {"mean": dm, "ci_low": dlo, "ci_high": dhi},
        "entropy": {k: {kk: v[kk] for kk in ("p80", "mean_entropy", "tokens", "mean_length",
                                             "non_argmax_rate_low_entropy", "low_entropy_positions",
                                             "non_argmax_rate_below_tau0", "below_tau0_positions",
                                             "t_low_fraction")} for k, v in conditions.items()},
        "flips": {"low_entropy_threshold": LOW_ENTROPY_NATS, "positions": len(flip_pairs),
                  "low_entropy_positions": len(low_flips),
                  "low_entropy_flip_rate": sum(low_flips) / max(len(low_flips), 1),
                  "overall_flip_rate": sum(f for _, f in flip_pairs) / max(len(flip_pairs), 1),
                  "by_entropy": flips_table},
        "figures": figures, "seconds": time.perf_counter() - t_start,
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    (out / "entropies.json").write_text(json.dumps({k: c["all_entropies"] for k, c in conditions.items()}))
    with open(out / "samples.jsonl", "w") as f:
        for label, c in conditions.items():
            for r in c["records"]:
                f.write(json.dumps({"condition": label, "problem": r["problem"], "sample": r["sample"],
                                    "answer": evalp[r["problem"]].answer, "predicted": r["predicted"],
                                    "correct": r["correct"], "text": r["text"]}) + "\n")
    lines = [f"| configuration | accuracy | 95% CI | mean entropy | p80 entropy | mean length | T_low share "
             f"| non-argmax @ H<{LOW_ENTROPY_NATS} | non-argmax @ H<tau0 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for k, a in accuracy.items():
        e = summary["entropy"][k]
        lines.append(f"| {k} | {a['mean']:.3f} | [{a['ci_low']:.3f}, {a['ci_high']:.3f}] | {e['mean_entropy']:.3f} "
                     f"| {e['p80']:.3f} | {e['mean_length']:.1f} | {e['t_low_fraction']:.2f} "
                     f"| {e['non_argmax_rate_low_entropy']:.4f} | {e['non_argmax_rate_below_tau0']:.4f} |")
    lines.append(f"\nReSET - fixed NVFP4 (paired over problems): {dm:+.3f} [{dlo:+.3f}, {dhi:+.3f}]; "
                 f"tau0 {tau0:.4f}; NVFP4 vs float32 argmax flips at H<{LOW_ENTROPY_NATS}: "
                 f"{summary['flips']['low_entropy_flip_rate']:.4f} of {len(low_flips)} positions "
                 f"(all positions {summary['flips']['overall_flip_rate']:.4f}); {summary['seconds']:.0f} s")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), file=log)
    print(f"study: wrote {out}/results.json, summary.md, samples.jsonl and {len(figures)} figures", file=log)
    return 0
