"""bench/nvfp4_gpu_targets.py: the issue's NVFP4 GEMV targets read off benchmark rows (hand-built rows, CPU only)."""
import importlib.util
import json
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "bench" / "nvfp4_gpu_targets.py"
_spec = importlib.util.spec_from_file_location("nvfp4_gpu_targets", _PATH)
targets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(targets)

LAYERS = [("8b", "qkv"), ("8b", "o"), ("8b", "gate_up"), ("8b", "down"),
          ("32b", "qkv"), ("32b", "o"), ("32b", "gate_up"), ("32b", "down")]


def row(model, layer, m, us, floor, cublas=None, int4=None):
    r = {"model": model, "layer": layer, "m": m, "w4a16_us": us, "floor_us": floor}
    if cublas is not None:
        r["cublas_bf16_us"] = cublas
    if int4 is not None:
        r["int4_us"] = int4
    return r


def full_run(m1_frac=0.9, small_frac=0.8, m16_ratio=1.2, x_bf16=(3.5, 3.2), x_int4=1.5):
    """Every layer at M = 1 and 16: floor 10 us, W4A16 at the given fraction of it, M = 16 m16_ratio times M = 1,
    cuBLAS x_bf16 times ours at M = 1 / 16, int4 x_int4 times ours."""
    rows = []
    for model, layer in LAYERS:
        large = (model, layer) in targets.LARGE
        t1 = 10.0 / (m1_frac if large else small_frac)
        for m, t, xb in ((1, t1, x_bf16[0]), (16, t1 * m16_ratio, x_bf16[1])):
            rows.append(row(model, layer, m, t, 10.0, cublas=t * xb, int4=t * x_int4))
    return rows


def states(lines):
    return [ln.split(": ", 1)[1] for ln in lines]


def test_all_targets_met_when_every_row_is_past_its_bound():
    lines = targets.target_lines(full_run())
    assert len(lines) == 7
    assert all(s.startswith("met") for s in states(lines)), lines
    assert "5/5 rows" in lines[0] and "3/3 rows" in lines[1] and "16/16 rows" in lines[5]
    # Qwen3-8B: q/k/v and o are small (10 / 0.8 us), gate_up and down large (10 / 0.9): 47.2 us over 40 of floor
    assert lines[6].endswith("met (1.18x)")


@pytest.mark.parametrize("field, value, index", [
    ("m1_frac", 0.849, 0), ("small_frac", 0.69, 1), ("m16_ratio", 1.31, 2), ("x_bf16", (3.19, 3.5), 3),
    ("x_bf16", (3.5, 2.99), 4), ("x_int4", 1.0, 5)])
def test_one_bound_missed_by_a_hair_is_not_met_and_names_the_worst_row(field, value, index):
    lines = targets.target_lines(full_run(**{field: value}))
    assert states(lines)[index].startswith("NOT met"), lines[index]
    others = [s for i, s in enumerate(states(lines)[:6]) if i != index]
    assert all(s.startswith("met") for s in others), lines


def test_the_large_layers_are_the_issues_five():
    assert targets.LARGE == {("8b", "gate_up"), ("8b", "down"), ("32b", "gate_up"), ("32b", "down"), ("32b", "qkv")}
    assert targets.N_LAYERS == len(LAYERS)


@pytest.mark.parametrize("field, inside, at, outside, index", [
    ("m1_frac", 0.851, 0.85, 0.849, 0), ("small_frac", 0.701, 0.70, 0.699, 1), ("m16_ratio", 1.299, 1.3, 1.301, 2),
    ("x_bf16", (3.201, 3.5), (3.2, 3.5), (3.199, 3.5), 3), ("x_bf16", (3.5, 3.001), (3.5, 3.0), (3.5, 2.999), 4),
    ("x_int4", 1.001, None, 1.0, 5)])
def test_each_bound_is_exact_and_inclusive(field, inside, at, outside, index):
    """Just inside and on a bound meet it ("faster than int4" has no on-bound case: a tie is not faster), just
    outside does not: so a bound moved either way, or > instead of >=, fails here."""
    for value, met in ((inside, True), (at, True), (outside, False)):
        if value is None:
            continue
        state = states(targets.target_lines(full_run(**{field: value})))[index]
        assert state.startswith("met") == met, (field, value, state)


def test_worst_row_is_the_furthest_from_the_bound():
    rows = full_run()
    for r in rows:
        if (r["model"], r["layer"], r["m"]) == ("32b", "down", 1):
            r["w4a16_us"] = 10.0 / 0.60  # 60% of the floor
        if (r["model"], r["layer"], r["m"]) == ("8b", "down", 1):
            r["w4a16_us"] = 10.0 / 0.80
    line = targets.target_lines(rows)[0]
    assert "NOT met, 3/5 rows" in line and "worst 32b down M=1: 60.0%" in line, line


def test_partial_and_missing_rows_are_never_reported_met():
    only_32b = [r for r in full_run() if r["model"] == "32b"]
    lines = targets.target_lines(only_32b)
    assert states(lines)[0].startswith("met on the 3 of 5 rows run, 3/3 rows (worst 32b "), lines[0]
    assert lines[6].endswith("not checked (no rows)")  # no Qwen3-8B rows for its layer sum
    no_baselines = [{k: v for k, v in r.items() if k not in ("cublas_bf16_us", "int4_us")} for r in full_run()]
    lines = targets.target_lines(no_baselines)
    assert [s.startswith("not checked") for s in states(lines)] == [False, False, False, True, True, True, False]
    assert targets.target_lines([])[0].endswith("not checked (no rows)")
    # int4 timed on some rows only (it failed part way, or a one-model run): never "met"
    some_int4 = [r if r["model"] == "8b" else {k: v for k, v in r.items() if k != "int4_us"} for r in full_run()]
    assert states(targets.target_lines(some_int4))[5].startswith("met on the 8 of 16 rows run"), some_int4[:1]
    assert states(targets.target_lines([r for r in full_run() if r["model"] == "8b"]))[5].startswith(
        "met on the 8 of 16 rows run")


def test_layer_sum_uses_the_qwen3_8b_m1_rows(tmp_path, capsys):
    rows = full_run()
    for r in rows:
        if r["model"] == "8b" and r["m"] == 1:
            r["w4a16_us"] = 13.0  # 52 us against 40 us of floor: 1.30x
    assert targets.target_lines(rows)[6].endswith("NOT met (1.30x)")
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"meta": {"device": "X", "date": "d", "calls_per_graph": 20}, "rows": rows}))
    targets.main(["nvfp4_gpu_targets.py", str(path)])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("# X, d, graphs of >= 20 calls") and out[-1].endswith("NOT met (1.30x)")
    with pytest.raises(SystemExit):
        targets.main(["nvfp4_gpu_targets.py"])
