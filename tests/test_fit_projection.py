"""bench/probes/fit_projection.py: the size-sweep fits projected onto another card's bandwidth (CPU only, hand-computed
cases)."""
import importlib.util
from pathlib import Path

import pytest

_BENCH = Path(__file__).resolve().parents[1] / "bench"
_spec = importlib.util.spec_from_file_location("fit_projection", _BENCH / "probes" / "fit_projection.py")
proj = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(proj)

GATE_UP_8B_M1_BYTES = 56680448  # 24576 * 4096 * 9 / 16 + 4096 * 2 + 24576 * 2


def test_call_bytes_is_weights_scales_x_and_y():
    assert proj.call_bytes(24576, 4096, 1) == GATE_UP_8B_M1_BYTES
    assert proj.call_bytes(16, 32, 2) == 16 * 32 // 2 + 16 * 32 // 16 + 2 * 32 * 2 + 2 * 16 * 2


def test_the_slower_of_the_fitted_rate_and_the_card_sets_the_streaming_time():
    t, floor = proj.project(24576, 4096, 1, 2.97, 4.537e12, 3.06e12)  # the card is slower than the fit
    assert floor == pytest.approx(GATE_UP_8B_M1_BYTES / 3.06e6)
    assert t == pytest.approx(2.97 + GATE_UP_8B_M1_BYTES / 3.06e6)
    t, floor = proj.project(24576, 4096, 1, 2.97, 4.537e12, 5.0e12)  # the fit is slower than the card
    assert t == pytest.approx(2.97 + GATE_UP_8B_M1_BYTES / 4.537e6)
    assert floor == pytest.approx(GATE_UP_8B_M1_BYTES / 5.0e6)


def test_rows_only_for_the_ks_fitted_and_m16_only_where_fitted():
    fits = dict(proj.parse_fit(f) for f in ("4096:1:3:4", "5120:1:3:4", "5120:16:7:2.5"))
    rows = {(r[0], r[1]): r for r in proj.projection_rows(fits, 3.0e12)}
    assert set(rows) == {("8b", "qkv"), ("8b", "o"), ("8b", "gate_up"), ("32b", "qkv"), ("32b", "gate_up")}
    assert rows[("8b", "o")][4] is None and rows[("8b", "o")][5] is None
    _, _, t1, frac, t16, ratio = rows[("32b", "qkv")]
    b1, b16 = proj.call_bytes(10240, 5120, 1), proj.call_bytes(10240, 5120, 16)
    assert t1 == pytest.approx(3 + b1 / 3.0e6) and frac == pytest.approx(b1 / 3.0e6 / t1)
    assert t16 == pytest.approx(7 + b16 / 2.5e6) and ratio == pytest.approx(t16 / t1)


@pytest.mark.parametrize("text", ["4096:1:3", "4096:1:3:4:5", "0:1:3:4", "4096:0:3:4", "4096:1:-1:4", "4096:1:3:0",
                                  "a:1:3:4"])
def test_a_bad_fit_is_refused_naming_it(text):
    with pytest.raises(ValueError, match="fit"):
        proj.parse_fit(text)


@pytest.mark.parametrize("argv", [["--bw", "3.06", "--fit", "4096:1:3"], ["--bw", "0", "--fit", "4096:1:3:4"],
                                  ["--fit", "4096:1:3:4"]])
def test_the_command_line_rejects_bad_input(argv, capsys):
    with pytest.raises(SystemExit) as e:
        proj.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--bw" in err or "fit" in err


def test_the_command_prints_a_row_per_fitted_layer(capsys):
    proj.main(["--bw", "3.06", "--fit", "4096:1:2.97:4.537", "--fit", "4096:16:4.99:3.146"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("# projection at 3.06 TB/s")
    gate_up = next(line for line in out if line.startswith("8b gate_up"))
    assert gate_up.split()[2:5] == ["21.5", "86%", "23.8"]
    assert len(out) == 2 + 3  # header lines, then 8B q/k/v, o, gate_up
