"""GradPIM functional model: the unit's arithmetic (fp32 datapath, one rounding per product and sum,
operands stored in their dtype) against an independent numpy re-implementation of each update rule."""
import numpy as np
import pytest

from reset_native.pim import GradPIMConfig, apply_update, round_to

F = np.float32


def _ref_bf16(x):
    """bf16 round-to-nearest-even by exact fp64 arithmetic on the representable neighbours."""
    x = np.asarray(x, np.float32)
    out = np.empty_like(x)
    for i, v in enumerate(x):
        if not np.isfinite(v) or v == 0:
            out[i] = v
            continue
        e = np.floor(np.log2(abs(float(v))))
        q = 2.0 ** (e - 7)
        out[i] = np.float32(np.round(float(v) / q) * q)  # np.round: half to even
    return out


def _axpby(a, x, b, y):
    return F(a) * x + F(b) * y


def _reference(opt, w, g, s1, s2, cfg):
    lr, mu, wd = F(cfg.lr), F(cfg.momentum), F(cfg.weight_decay)
    if opt == "sgd":
        return _axpby(1, w, -lr, g), None, None
    if opt == "sgd_wd":
        return _axpby(F(1) - lr * wd, w, -lr, g), None, None
    if opt == "momentum":
        v = _axpby(mu, s1, 1, g)
        return _axpby(1, w, -lr, v), v, None
    if opt == "nesterov":
        v = _axpby(mu, s1, 1, g)
        return _axpby(1, w, -lr, _axpby(1, g, mu, v)), v, None
    if opt == "momentum_wd":
        d = _axpby(1, g, wd, w)
        v = _axpby(mu, s1, 1, d)
        return _axpby(1, w, -lr, v), v, None
    if opt == "adam":
        b1, b2, eps = F(cfg.beta1), F(cfg.beta2), F(cfg.eps)
        # bias corrections from the fp32 hyper-parameters, evaluated once in fp64 (unit constants)
        c1 = F(1.0 / (1.0 - float(b1) ** cfg.step))
        c2 = F(1.0 / (1.0 - float(b2) ** cfg.step))
        m = _axpby(b1, s1, F(1) - b1, g)
        v = _axpby(b2, s2, F(1) - b2, g * g)
        u = (c1 * m) / (np.sqrt(c2 * v) + eps)
        return _axpby(1, w, -lr, u), m, v
    raise AssertionError(opt)


@pytest.mark.parametrize("opt", ["sgd", "sgd_wd", "momentum", "nesterov", "momentum_wd", "adam"])
def test_every_update_rule_matches_numpy_bit_for_bit(opt):
    rng = np.random.default_rng(1)
    n = 4099
    cfg = GradPIMConfig(optimizer=opt, lr=0.05, momentum=0.9, weight_decay=0.01, step=3)
    w = rng.standard_normal(n).astype(F)
    g = (rng.standard_normal(n) * 0.1).astype(np.float16).astype(F)
    s1 = (rng.standard_normal(n) * 0.1).astype(F)
    s2 = (rng.random(n) * 0.01).astype(F)
    keep = (w.copy(), s1.copy(), s2.copy())
    w2, a, b, copy = apply_update(cfg, w, g, state=s1, state2=s2)
    for x, y in zip(keep, (w, s1, s2)):
        np.testing.assert_array_equal(x, y)  # inputs untouched: results come back as new arrays
    rw, ra, rb = _reference(opt, w, g, s1, s2, cfg)
    np.testing.assert_array_equal(w2, rw)
    np.testing.assert_array_equal(copy, rw.astype(np.float16).astype(F))
    if ra is not None:
        np.testing.assert_array_equal(a, ra)
    else:
        assert a is None
    if rb is not None:
        np.testing.assert_array_equal(b, rb)
    else:
        assert b is None
    # and the rule is the intended one: close to an fp64 evaluation
    w64 = w.astype(np.float64)
    if opt == "momentum":
        v64 = 0.9 * s1.astype(np.float64) + g
        np.testing.assert_allclose(w2, w64 - 0.05 * v64, rtol=1e-6, atol=1e-6)


def test_inputs_are_rounded_to_their_dtypes_and_stores_round_to_the_state_dtype():
    rng = np.random.default_rng(2)
    n = 1000
    cfg = GradPIMConfig(optimizer="momentum", grad_dtype="bf16", state_dtype="bf16", lr=0.1)
    w = rng.standard_normal(n).astype(F)
    g = rng.standard_normal(n).astype(F)    # not bf16 values: rounded on the way in
    s = rng.standard_normal(n).astype(F)
    w2, v2, _, copy = apply_update(cfg, w, g, state=s)
    gb, sb = _ref_bf16(g), _ref_bf16(s)
    v = _axpby(0.9, sb, 1, gb)               # computed in fp32 ...
    np.testing.assert_array_equal(w2, _axpby(1, w, -F(0.1), v))   # ... weight update uses the fp32 value
    np.testing.assert_array_equal(v2, _ref_bf16(v))               # stored state rounded to bf16
    assert copy is not None


def test_fp16_and_bf16_rounding_edges():
    x = np.array([65504, 65519.99, 65520, 1e-8, 2.0 ** -24, 3 * 2.0 ** -25, 1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11,
                  -0.0, np.inf, -np.inf], F)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(round_to(x, "fp16"), x.astype(np.float16).astype(F))
    y = np.array([1 + 2.0 ** -8, 1 + 3 * 2.0 ** -8, 3.14159, -2.5e-3, 1e30], F)
    np.testing.assert_array_equal(round_to(y, "bf16"), _ref_bf16(y))
    assert np.isnan(round_to(np.array([np.nan], F), "bf16")[0])


def test_unit_stores_round_like_numpy_float16():
    # lr = 0: the copy store is the unit's fp32 -> fp16 conversion of the weights themselves
    x = np.array([65504, 65519.99, 65520, 1e5, 1e-8, 2.0 ** -24, 3 * 2.0 ** -25, 2.0 ** -25, 6.1e-5,
                  1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11, -0.0, -7.25, np.inf, -np.inf], F)
    rng = np.random.default_rng(5)
    x = np.concatenate([x, (rng.standard_normal(5000) * 10.0 ** rng.integers(-9, 6, 5000)).astype(F)])
    cfg = GradPIMConfig(optimizer="sgd", lr=0.0, grad_dtype="fp32")
    _, _, _, copy = apply_update(cfg, x, np.zeros_like(x))
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(copy, x.astype(np.float16).astype(F))
    cfg = cfg.replace(copy_dtype="bf16")
    _, _, _, copy = apply_update(cfg, x[:3000], np.zeros(3000, F))
    np.testing.assert_array_equal(copy, _ref_bf16(x[:3000]))


def test_functional_model_handles_special_values_like_numpy():
    cfg = GradPIMConfig(optimizer="sgd", grad_dtype="fp32", weight_copy=True)
    w = np.array([1.0, 70000.0, np.inf, 0.0], F)
    g = np.array([np.nan, 0.0, 1.0, -0.0], F)
    w2, _, _, copy = apply_update(cfg, w, g)
    ref = _axpby(1, w, -F(cfg.lr), g)
    np.testing.assert_array_equal(w2, ref)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(copy, ref.astype(np.float16).astype(F))  # 70000 -> inf in fp16


def test_bad_functional_inputs():
    cfg = GradPIMConfig()
    with pytest.raises(ValueError, match="grads must have 3 elements"):
        apply_update(cfg, np.zeros(3, F), np.zeros(4, F))
    with pytest.raises(TypeError, match="floating-point"):
        apply_update(cfg, np.zeros(3, np.int32), np.zeros(3, F))
    with pytest.raises(ValueError, match="one-dimensional"):
        apply_update(cfg, np.zeros((2, 2), F), np.zeros(4, F))


@pytest.mark.parametrize("kw", [
    dict(optimizer="momentum"),
    dict(optimizer="adam", step=2),
    dict(optimizer="nesterov", spec="DDR4_2400R_8Gb_x16", ranks=2),
    dict(optimizer="momentum_wd", spec="DDR4_2400R_8Gb_x4", channels=2, state_dtype="bf16"),
    dict(optimizer="sgd_wd", layout="rows", grad_dtype="fp32", registers_per_unit=4),
    dict(optimizer="sgd", weight_dtype="fp16", copy_dtype="bf16"),
])
def test_commands_executed_on_a_dram_image_compute_the_same_update(kw):
    # the unit commands of every chunk's sequence, executed on the byte-level DRAM image the layout
    # describes, give exactly the program's (and so numpy's) results: layout, byte lanes, batching and
    # stores are consistent, no element is lost or written twice
    cfg = GradPIMConfig(**kw)
    rng = np.random.default_rng(7)
    n = 3 * 2048 * 4 + 1234  # several rounds of chunks plus a partial chunk
    w = rng.standard_normal(n).astype(F)
    g = (rng.standard_normal(n) * 0.1).astype(F)
    s1 = (rng.standard_normal(n) * 0.1).astype(F)
    s2 = (rng.random(n) * 0.01).astype(F)
    a = apply_update(cfg, w, g, state=s1, state2=s2)
    b = apply_update(cfg, w, g, state=s1, state2=s2, engine="commands")
    for x, y in zip(a, b):
        if x is None:
            assert y is None
        else:
            np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], round_to(w, cfg.weight_dtype))  # something was updated
