"""GradPIM API: configuration validation, bad inputs, training iterations, CLI and report."""
import json
import os

import numpy as np
import pytest

from reset_native import cli
from reset_native.dram import DDR4Spec
from reset_native.pim import (NETWORKS, GradPIMConfig, Network, NPUModel, apply_update, compare_update, layout,
                              simulate_update, training_iteration)


@pytest.mark.parametrize("kw,exc,match", [
    (dict(optimizer="rmsprop"), ValueError, "unknown optimizer 'rmsprop'.*adam"),
    (dict(optimizer=3), TypeError, "optimizer must be a str"),
    (dict(grad_dtype="fp8"), ValueError, "unknown grad_dtype 'fp8'"),
    (dict(layout="diagonal"), ValueError, "unknown layout"),
    (dict(channels=3), ValueError, "channels must be a power of two"),
    (dict(ranks=0), ValueError, "ranks must be >= 1"),
    (dict(registers_per_unit=2.5), TypeError, "registers_per_unit must be an int"),
    (dict(registers_per_unit=4), ValueError, "registers_per_unit=4 is too small: momentum needs 6 registers"),
    (dict(optimizer="adam", registers_per_unit=8), ValueError, "adam needs 10 registers"),
    (dict(lr=float("nan")), ValueError, "lr must be finite"),
    (dict(spec="DDR9"), ValueError, "unknown DDR4 preset"),
    (dict(spec=42), TypeError, "spec must be a DDR4Spec or a preset name"),
    (dict(weight_copy="yes"), TypeError, "weight_copy must be a bool"),
])
def test_bad_configurations_are_refused_clearly(kw, exc, match):
    with pytest.raises(exc, match=match):
        GradPIMConfig(**kw)


def test_bad_update_requests():
    cfg = GradPIMConfig()
    for n in (0, -5):
        with pytest.raises(ValueError, match="n_params must be >= 1"):
            simulate_update(cfg, n)
    with pytest.raises(TypeError, match="n_params must be an int"):
        simulate_update(cfg, 1e6)
    with pytest.raises(ValueError, match="unknown mode 'gpu'"):
        simulate_update(cfg, 1000, mode="gpu")
    with pytest.raises(TypeError, match="config must be a GradPIMConfig"):
        simulate_update({"optimizer": "sgd"}, 1000)
    with pytest.raises(ValueError, match="command_log needs n_params <= max_simulated_params"):
        simulate_update(cfg, 5_000_000, command_log=True)


def test_layout_that_does_not_fit_the_memory_is_refused():
    small = DDR4Spec(dict(DDR4Spec.preset("DDR4_2400R_8Gb_x8").to_dict(),
                          organisation=dict(DDR4Spec.preset("DDR4_2400R_8Gb_x8").to_dict()["organisation"], rows=64)))
    cfg = GradPIMConfig(small)
    lay = layout(cfg)
    fits = lay["chunk_elements"] * lay["units"] * 64
    simulate_update(cfg.replace(max_simulated_params=1 << 22), fits, "host")  # exactly full: fine
    for mode in ("pim", "host"):
        with pytest.raises(ValueError, match="layout does not fit the memory: .* need 65 rows per bank .* has 64"):
            simulate_update(cfg, fits + 1, mode)
    # 138M parameters of Adam need more rows than one 8 GB rank offers
    with pytest.raises(ValueError, match="does not fit"):
        simulate_update(GradPIMConfig(optimizer="adam", layout="rows"), 1_500_000_000)


def test_layout_reports_streams_and_decisions():
    lay = layout(GradPIMConfig(), 1_000_000)
    assert lay["column_bytes"] == 8 and lay["step_elements"] == 4 and lay["steps_per_chunk"] == 64
    assert lay["chunk_elements"] == 64 * 4 * 8 and lay["units"] == 4
    banks = {s: v[0] for s, v in lay["streams"].items()}
    assert sorted(banks.values()) == [0, 1, 2, 3]  # weight, state, grad, copy: one bank each
    assert lay["read_streams"] == ["weight", "grad", "state1"]
    assert lay["write_streams"] == ["weight", "state1", "copy"]
    x16 = layout(GradPIMConfig("DDR4_2400R_8Gb_x16"))
    assert x16["column_bytes"] == 16 and x16["units"] == 2


def test_weight_copy_off_removes_its_bytes_on_both_sides():
    on = compare_update(GradPIMConfig(optimizer="sgd"), 32768)
    off = compare_update(GradPIMConfig(optimizer="sgd", weight_copy=False), 32768)
    assert on.host.bytes_per_param == 12 and off.host.bytes_per_param == 10
    assert off.pim.internal_column_ops < on.pim.internal_column_ops
    w, s, s2, copy = apply_update(GradPIMConfig(optimizer="sgd", weight_copy=False), np.ones(4, np.float32),
                                  np.ones(4, np.float32))
    assert copy is None and s is None and s2 is None


def test_training_iteration_built_in_and_custom_networks():
    assert {"resnet18", "resnet50", "vgg16", "bert_base", "gpt2_small"} <= set(NETWORKS)
    assert NETWORKS["resnet18"].params == 11_689_512 and NETWORKS["vgg16"].params == 138_357_544
    cfg = GradPIMConfig(max_simulated_params=1 << 18)
    it = training_iteration("resnet18", cfg)
    npu_time = 3 * NETWORKS["resnet18"].flops_per_sample * 32 / (8e12 * 0.6) * 1e9
    assert it.forward_backward_ns >= npu_time * 0.999
    assert it.iteration_host_ns == pytest.approx(it.forward_backward_ns + it.update_host_ns)
    assert it.iteration_pim_ns == pytest.approx(it.forward_backward_ns + it.update_pim_ns)
    assert 1 < it.speedup < it.update_speedup
    assert it.update_host_bytes == pytest.approx(20 * NETWORKS["resnet18"].params, rel=1e-3)
    assert it.update_pim_bytes == 0
    assert it.traffic_reduction == pytest.approx(it.update_host_bytes / it.traffic_host_bytes)
    # a custom network; a faster NPU makes the update a larger share, so PIM helps more
    mine = Network("mine", 5_000_000, 1e9, 1e6, batch_size=16)
    slow = training_iteration(mine, cfg, npu=NPUModel(peak_flops=1e12))
    fast = training_iteration(mine, cfg, npu=NPUModel(peak_flops=1e15))
    assert fast.speedup > slow.speedup and fast.update_share_of_time > slow.update_share_of_time
    assert not fast.compute_bound and slow.compute_bound
    assert "mine" in fast.summary()
    with pytest.raises(ValueError, match="unknown network 'alexnet'.*resnet18"):
        training_iteration("alexnet", cfg)
    with pytest.raises(ValueError, match="params must be an int >= 1"):
        Network("bad", 0, 1e9, 1e6)
    with pytest.raises(ValueError, match="peak_flops"):
        NPUModel(peak_flops=-1)
    with pytest.raises(TypeError, match="npu must be an NPUModel"):
        training_iteration("resnet18", cfg, npu="tpu")


def test_cli_simulate_check_and_report(tmp_path, capsys):
    rc = cli.main(["pim", "simulate", "--optimizer", "sgd", "--n-params", "40000", "--check"])
    out = capsys.readouterr().out
    assert rc == 0 and "speedup" in out and "timing check    0 violations" in out
    rc = cli.main(["pim", "simulate", "--n-params", "30000", "--json"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["pim"]["external_bytes"] == 0 and d["speedup"] > 1
    rc = cli.main(["pim", "simulate", "--network", "resnet18"])
    assert rc == 0 and "iteration" in capsys.readouterr().out
    rc = cli.main(["pim", "report", "--out", str(tmp_path), "--quick"])
    assert rc == 0
    names = set(os.listdir(tmp_path))
    assert {"gradpim_report.md", "gradpim_report.json", "gradpim_speedup.png", "gradpim_traffic.png",
            "gradpim_sensitivity.png"} <= names
    text = (tmp_path / "gradpim_report.md").read_text()
    assert "| DDR4_2400R_8Gb_x8 | momentum |" in text and "resnet18" in text
    for png in ("gradpim_speedup.png", "gradpim_traffic.png", "gradpim_sensitivity.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
