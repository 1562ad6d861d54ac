"""A straightforward Python re-implementation of the ReSET state machine (SPEC-reset.md section 2)
and of the sampling rule, used as the independent reference by the sampler tests, plus
hand-computed checks of the reference itself."""
import math
from collections import deque

import numpy as np


class ReferenceSlot:
    """One sequence, written from the spec text with plain Python lists and floats."""

    def __init__(self, t_low, tau0, t_high, window, newline_ids, double_newline_ids):
        self.t_low, self.tau0, self.t_high, self.w = t_low, tau0, t_high, window
        self.newline, self.double = set(newline_ids), set(double_newline_ids)
        self.win = deque(maxlen=window)
        self.step_sum, self.step_n = 0.0, 0
        self.gsum, self.gn = 0.0, 0
        self.generated = []

    def step(self, last_token, h):
        h = float(np.float32(h))
        if last_token >= 0:  # 1. boundary from the last generated token(s)
            self.generated.append(last_token)
            last = self.generated[-1]
            prev = self.generated[-2] if len(self.generated) >= 2 else None
            if last in self.double or (last in self.newline and prev in self.newline):
                self.step_sum, self.step_n = 0.0, 0
        if self.step_n < self.w:  # 3. hybrid step estimate
            if not self.win:
                hs = h
            else:
                s = 0.0
                for x in self.win:  # oldest first, like the native code
                    s += x
                hs = s / len(self.win)
        else:
            hs = self.step_sum / self.step_n
        hbar = self.gsum / self.gn if self.gn else hs  # 4. step-aware threshold
        tau = hs if hs > hbar else self.tau0
        t = self.t_high if h >= tau else self.t_low  # 5. temperature
        self.win.append(h)  # 6. append
        self.step_sum += h
        self.step_n += 1
        self.gsum += h
        self.gn += 1
        return t


def reference_entropy(row):
    z = np.asarray(row, dtype=np.float64)
    finite = z[np.isfinite(z)]
    p = np.exp(finite - finite.max())
    p /= p.sum()
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum())


def reference_distribution(z, temperature, top_k=0, top_p=1.0):
    """softmax(z / T) restricted by top-k then top-p with the documented tie rules, in float64."""
    z = np.asarray(z, dtype=np.float64)
    keep = np.ones(z.shape, dtype=bool)
    if 0 < top_k < z.size:
        kth = np.sort(z)[::-1][top_k - 1]
        keep &= z >= kth
    w = np.where(keep, np.exp((z - z.max()) / temperature), 0.0)
    if top_p < 1.0:
        # mass of strictly larger logits for every token, via a sort (O(V log V) for 151936-wide rows)
        order = np.argsort(z, kind="stable")
        cum = np.cumsum(w[order])
        at_or_below = np.searchsorted(z[order], z, side="right")  # tokens with logit <= z_i
        above = cum[-1] - cum[at_or_below - 1]
        keep &= above < top_p * cum[-1]
        w = np.where(keep, w, 0.0)
    return w / w.sum()


def expected_token(z, temperature, top_p, u, order):
    """The token an inverse-CDF draw with uniform u picks from the top-p-restricted softmax(z / T),
    walking the tokens in `order` (index order on the CPU), in float64. Returns (token, probs)."""
    probs = reference_distribution(z, temperature, 0, top_p)
    cum = np.cumsum(probs[order])
    return int(order[min(np.searchsorted(cum, u * cum[-1], side="right"), len(order) - 1)]), probs


def chi2_critical(df, z=3.719):
    """Upper quantile of chi-square (Wilson-Hilferty); z = 3.719 is p = 1e-4."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def assert_follows(samples, probs, vocab):
    counts = np.bincount(samples, minlength=vocab)
    assert counts[probs == 0].sum() == 0, "sampled a token the restriction excludes"
    support = probs > 0
    if support.sum() == 1:
        return
    expected = probs[support] * len(samples)
    stat = float(((counts[support] - expected) ** 2 / expected).sum())
    assert stat < chi2_critical(int(support.sum()) - 1), (stat, counts, expected)


# -------------------------------------------------------------- checks of the reference itself
def test_reference_by_hand_window_two():
    # window 2, tau0 0.5, no newlines. Step by step:
    # t0: win empty -> Hs = H = 1.0, Hbar = Hs -> not uncertain, tau = 0.5; 1.0 >= 0.5 -> t_high
    # t1: step_n 1 < 2 -> Hs = mean(win) = 1.0; Hbar = 1.0 -> tau 0.5; H 0.2 < 0.5 -> t_low
    # t2: step_n 2 >= 2 -> Hs = mean(step) = 0.6; Hbar = 0.6 -> tau 0.5; H 0.55 >= 0.5 -> t_high
    # t3: Hs = mean(step) = 1.75/3 = 0.5833 > Hbar 0.5833? equal -> not uncertain; H 0.52 >= 0.5 -> t_high
    ref = ReferenceSlot(0.1, 0.5, 1.0, 2, (), ())
    temps = [ref.step(-1, 1.0), ref.step(5, 0.2), ref.step(6, 0.55), ref.step(7, 0.52)]
    assert temps == [1.0, 0.1, 1.0, 1.0]


def test_reference_by_hand_uncertain_step():
    # window 1, tau0 10 (never reached): only an uncertain step (Hs > Hbar, tau = Hs) gives t_high.
    ref = ReferenceSlot(0.1, 10.0, 1.0, 1, newline_ids=(1,), double_newline_ids=(2,))
    assert ref.step(-1, 1.0) == 0.1  # Hs = H = 1 = Hbar: certain, tau 10
    assert ref.step(9, 3.0) == 0.1   # Hs = mean(step) = 1 = Hbar 1
    assert ref.step(9, 3.0) == 0.1   # Hs = mean([1, 3]) = 2 = Hbar 2
    assert ref.step(2, 5.0) == 1.0   # "\n\n": step cleared, Hs = mean(win=[3]) = 3 > Hbar 7/3, 5 >= 3
    assert ref.step(9, 2.0) == 0.1   # Hs = mean([5]) = 5 > Hbar 3, but 2 < 5
    assert ref.step(9, 6.0) == 1.0   # Hs = mean([5, 2]) = 3.5 > Hbar 2.8, 6 >= 3.5


def test_reference_boundary_clears_step():
    ref = ReferenceSlot(0.1, 10.0, 1.0, 1, newline_ids=(1,), double_newline_ids=(2,))
    ref.step(-1, 1.0)
    ref.step(9, 1.0)
    assert ref.step_n == 2
    ref.step(2, 1.0)                      # double newline: step restarts, then H is appended
    assert ref.step_n == 1
    ref.step(1, 1.0)                      # one newline: no boundary
    assert ref.step_n == 2
    ref.step(1, 1.0)                      # newline after newline: boundary
    assert ref.step_n == 1


def test_reference_distribution_matches_the_rule_written_out():
    """The sorted implementation against the rule applied token by token (quadratic, small rows)."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        z = np.round(rng.standard_normal(40), 1)  # rounding makes ties
        t, p = rng.uniform(0.3, 2), rng.uniform(0.05, 0.99)
        w = np.exp((z - z.max()) / t)
        keep = np.array([w[z > zi].sum() < p * w.sum() for zi in z])
        np.testing.assert_allclose(reference_distribution(z, t, 0, p), np.where(keep, w, 0) / w[keep].sum(),
                                   rtol=1e-12)


def test_reference_distribution_tie_rules():
    z = np.array([2.0, 1.0, 1.0, 0.0])
    # top-k 2 keeps the two tied at 1.0 as well (logit >= 2nd largest = 1.0)
    assert np.count_nonzero(reference_distribution(z, 1.0, top_k=2)) == 3
    # top-p: mass above the max is 0 < p, so the max is always kept
    p = reference_distribution(z, 1.0, top_p=0.01)
    assert p[0] == 1.0
