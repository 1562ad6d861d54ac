"""The shared body of the per-session switch tests of the CUDA decode step (test_sampler_gpu_session10.py,
test_sampler_gpu_session11.py): a suite is the environment variables it sets, its combinations (combo -> {variable:
value}, variables not named unset) and the reference combination; each case builds its logits, runs a few steps
under every combination and compares them with the reference's bit for bit (tokens, temperatures, entropies, errors,
state)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reset_native import _core  # noqa: E402
from reset_native.sampler import ReSETConfig  # noqa: E402
from test_sampler_gpu_batches import DTYPES, kernel_draw, make_logits  # noqa: E402
from test_sampler_gpu_combine import CASES, boundary_case_rows  # noqa: E402
from test_sampler_gpu_grouped import _run  # noqa: E402  (outputs, state and error text of a few steps)
from test_sampler_gpu_paths import _crowded_rows  # noqa: E402
from test_sampler_gpu_switches import CONFIGS as SWITCH_CONFIGS  # noqa: E402
from test_sampler_gpu_switches import _assert_same as assert_same_runs  # noqa: E402
from test_sampler_gpu_switches import graph_replays_like_eager, three_steps  # noqa: E402

S = _core.sampler
CONFIGS = {**SWITCH_CONFIGS, "greedy": ReSETConfig.fixed(0.0)}
BOUNDARY_CASES = list(CASES)
# (rows, vocab, dtype) of the switch files' steps cases since session 15: the ungrouped (B <= 8) and grouped (B >= 9)
# passes, rows ending in a partial chunk, 16-bit dtypes aligned and not, a row shorter than a chunk, 191 chunks.
STEP_SHAPES = [(1, 151936, "float32"), (3, 151936, "float32"), (8, 151936, "float32"), (9, 151936, "float32"),
               (64, 151936, "float32"), (3, 2048 * 13 + 5, "float32"), (3, 6151, "bfloat16"), (8, 151936, "bfloat16"),
               (5, 2048 * 9 + 1, "float16"), (2, 300, "float32"), (2, 2048 * 191 + 7, "float32")]
# The chunks-per-block variables of the stats, bins and sample passes (a switch file's groupings).
GROUPINGS = tuple(f"RESET_NATIVE_SAMPLER_{v}_CHUNKS" for v in ("STATS", "BIN", "SAMPLE"))


def grouping(stats, bins, sample):
    """A combo's entries for chunks per block of the stats, bins and sample passes."""
    return dict(zip(GROUPINGS, (str(stats), str(bins), str(sample))))


class SwitchSuite:
    def __init__(self, names, combos, reference):
        self.names, self.combos, self.reference = tuple(names), combos, reference

    def switch(self, monkeypatch, combo):
        monkeypatch.setenv("RESET_NATIVE_SAMPLER_FUSED", "0")
        monkeypatch.setenv("RESET_NATIVE_SAMPLER_RESIDENT", "0")
        for name in self.names:
            if name in self.combos[combo]:
                monkeypatch.setenv(name, self.combos[combo][name])
            else:
                monkeypatch.delenv(name, raising=False)

    def runs(self, monkeypatch, config, rows, vocab, logits, slots, seed, combos=None):
        runs = {}
        for combo in combos or self.combos:
            self.switch(monkeypatch, combo)
            runs[combo] = _run(config, rows, vocab, logits, slots, seed)
        return runs

    def assert_same(self, runs):
        assert_same_runs(runs, reference=self.reference)

    def steps_case(self, monkeypatch, rows, vocab, dtype, mode, rng_seed):
        """Three steps of random rows (one rejected by a NaN at step 1 when rows > 2), rows mapped to other slots."""
        logits, slots = three_steps(np.random.default_rng(rng_seed), rows, vocab, dtype)
        runs = self.runs(monkeypatch, CONFIGS[mode], rows, vocab, logits, slots, seed=6)
        assert (rows > 2) == (runs[self.reference][2] is not None)
        self.assert_same(runs)

    def strided_views_case(self, monkeypatch, pad, dtype, chunks, rng_seed):
        """Three steps of 4 rows of chunks x 2048 + 8 logits as views of a buffer pad columns wider: a row stride of
        16-byte multiples (pad 8: the 16-byte loads apply) or an odd one (pad 1: they do not)."""
        rows, vocab = 4, chunks * 2048 + 8
        rng = np.random.default_rng(rng_seed)
        logits = []
        for step in range(3):
            wide = np.zeros((rows, vocab + pad), np.float32)
            wide[:, :vocab] = make_logits(rng, rows, vocab, step)
            logits.append(torch.from_numpy(wide).to(DTYPES[dtype]).cuda()[:, :vocab])
        runs = self.runs(monkeypatch, CONFIGS["reset_top_p"], rows, vocab, logits, torch.arange(rows, device="cuda"),
                         seed=4)
        self.assert_same(runs)

    def boundary_bins_case(self, monkeypatch, case, rng_offset, seed, token_combo):
        """Boundary bins of 1-256 logits (the counted threshold) and of 257-2048 (the sorted one): the same bits with
        every combination, and under token_combo the numpy model's tokens."""
        vocab, rows, top_p = CASES[case][0], 4, 0.5
        config = ReSETConfig.fixed(1.0, top_p=top_p)
        values = boundary_case_rows(case, rng_offset, rows, top_p)
        logits = [torch.from_numpy(z).cuda() for z in values]
        runs = self.runs(monkeypatch, config, rows, vocab, logits, torch.arange(rows, device="cuda"), seed)
        self.assert_same(runs)
        tokens = runs[token_combo][0][:, 0].numpy().astype(np.int64)  # [step, row]
        checked = 0
        for step, z in enumerate(values):
            for r in range(rows):
                want, sure = kernel_draw(z[r], 1.0, 0, top_p, S.uniform(S.default_slot_seed(seed, r), step))
                if sure:
                    assert tokens[step, r] == want, (r, step, tokens[step, r], want)
                    checked += 1
        assert checked >= rows * 3 // 2, checked

    def overfull_case(self, monkeypatch, vocab, top_p):
        """Boundary bins far over the 2048-logit buffer (near-equal logits, whole-row ties): the exact fallback."""
        z = torch.from_numpy(_crowded_rows(vocab)).cuda()
        rows = z.shape[0]
        runs = self.runs(monkeypatch, ReSETConfig.fixed(1.0, top_p=top_p), rows, vocab, [z, z, z],
                         torch.arange(rows, device="cuda"), seed=8)
        self.assert_same(runs)

    def extreme_weights_case(self, monkeypatch, temperature, top_p, rng_offset, far_below=False):
        """Weights of 2^24 and in [2^23, 2^24), exp arguments below -126, -inf entries, tied maxima, many ties, one
        dominant logit; far_below: also logits 88-110 nats below the maximum (where the stats pass may not take bare
        exps) and one right at the bare exps' edge."""
        rng = np.random.default_rng(int(temperature * 100) + int(top_p * 1000) + rng_offset)
        rows, vocab = 6, 3 * 2048 + 5
        z = (rng.standard_normal((rows, vocab)) * 2).astype(np.float32)
        z[0, :50] = z[0].max() - rng.random(50).astype(np.float32) * 0.7 * temperature
        z[1, ::3] = z[1].max() - 100.0 * temperature
        z[2, 5:4000:7] = -np.inf
        z[3, 100:120] = z[3].max()
        z[4] = np.round(z[4] * 4) / 4
        z[5, 1000] = 40.0
        if far_below:
            z[0, 3000::97] = z[0].max() - rng.uniform(88.0, 110.0, z[0, 3000::97].size).astype(np.float32)
            z[4, 2048 + 7] = z[4].max() - 87.0  # one thread's smallest logit right at the bare exps' edge
        logits = [torch.from_numpy(z).cuda(), torch.from_numpy(z[::-1].copy()).cuda()]
        runs = self.runs(monkeypatch, ReSETConfig.fixed(temperature, top_p=top_p), rows, vocab, logits,
                         torch.arange(rows, device="cuda"), seed=5)
        self.assert_same(runs)

    def equal_logits_case(self, monkeypatch, vocab, top_p):
        """Every logit of a row equal (one bin holding the whole mass), two equal halves, alternate logits equal."""
        rows = 3
        z = np.zeros((rows, vocab), np.float32)
        z[1, vocab // 2:] = -0.5
        z[2, ::2] = 1.0
        logits = [torch.from_numpy(z).cuda(), torch.from_numpy(z[:, ::-1].copy()).cuda()]
        runs = self.runs(monkeypatch, ReSETConfig.fixed(1.0, top_p=top_p), rows, vocab, logits,
                         torch.arange(rows, device="cuda"), seed=9)
        self.assert_same(runs)

    def partial_last_chunk_case(self, monkeypatch, vocab, top_p, dtype, rng_seed, token_combo, landed):
        """The row's mass in its last, partial chunk (not in the 16-byte layout), a few dominant logits there in row
        1, the last logit dominant in row 2: the same bits, and more than a share `landed` of token_combo's tokens
        in that chunk."""
        rows = 6
        rng = np.random.default_rng(rng_seed)
        z = (rng.standard_normal((rows, vocab)) * 1.5).astype(np.float32)
        last = (vocab - 1) // 2048 * 2048
        z[:, last:] += 16.0
        z[1, last:last + 3] += 3.0  # a few dominant logits
        z[2, -1] += 20.0  # the last logit dominant
        logits = [torch.from_numpy(z).to(getattr(torch, dtype)).cuda(), torch.from_numpy(z[::-1].copy()).to(
            getattr(torch, dtype)).cuda()]
        runs = self.runs(monkeypatch, ReSETConfig.fixed(1.0, top_p=top_p), rows, vocab, logits,
                         torch.arange(rows, device="cuda"), seed=12)
        self.assert_same(runs)
        tokens = runs[token_combo][0][:, 0].numpy()
        assert (tokens >= last).mean() > landed, tokens

    def long_rows_case(self, monkeypatch, vocab, rng_seed, combos):
        """Rows of more than 256 chunks (V > 524288): the kept candidates' masses go through global memory."""
        rows = 2
        rng = np.random.default_rng(rng_seed)
        z = (rng.standard_normal((rows, vocab)) * 3).astype(np.float32)
        z[1, ::5] = -np.inf
        logits = [torch.from_numpy(z).cuda(), torch.from_numpy(z[:, ::-1].copy()).cuda()]
        runs = self.runs(monkeypatch, ReSETConfig.fixed(0.9, top_p=0.9), rows, vocab, logits,
                         torch.arange(rows, device="cuda"), seed=2, combos={k: self.combos[k] for k in combos})
        self.assert_same(runs)

    def graph_case(self, monkeypatch, rows, seed, captured, eager):
        """A graph captured under combo `captured` gives, replay after replay, the tokens, temperatures and final
        state of eager steps under combo `eager`."""
        graph_replays_like_eager(rows, seed, lambda: self.switch(monkeypatch, captured),
                                 lambda: self.switch(monkeypatch, eager))
