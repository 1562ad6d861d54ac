"""The vLLM adapters against small fakes with vLLM's field names: a persistent batch that adds,
removes, moves and swaps requests (v1), and slot-mapped rows (Model Runner V2). Each request's
temperatures must equal the spec re-implementation fed with that request's own entropies/tokens."""
import enum
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reset_native.integrations.vllm import (ReSETLogitsProcessorV1, ReSETLogitsProcessorV2,  # noqa: E402
                                            request_enabled, settings_from_vllm_config)
from test_sampler_reference import ReferenceSlot, reference_entropy  # noqa: E402

VOCAB, SLOTS = 30, 6
SETTINGS = {"t_low": 0.25, "tau0": 2.9, "window": 3, "newline_ids": [1], "double_newline_ids": [2], "seed": 4}


class MoveDirectionality(enum.Enum):
    UNIDIRECTIONAL = enum.auto()
    SWAP = enum.auto()


@dataclass
class BatchUpdate:
    batch_size: int
    removed: list = field(default_factory=list)
    added: list = field(default_factory=list)
    moved: list = field(default_factory=list)


def fake_vllm_config(settings=SETTINGS):
    return SimpleNamespace(additional_config={"reset_native": dict(settings)},
                           scheduler_config=SimpleNamespace(max_num_seqs=SLOTS),
                           model_config=SimpleNamespace(get_vocab_size=lambda: VOCAB))


def params(enabled=True, seed=None):
    extra = {"reset": enabled}
    if seed is not None:
        extra["reset_seed"] = seed
    return SimpleNamespace(temperature=1.0, extra_args=extra)


def new_reference():
    return ReferenceSlot(0.25, 2.9, 1.0, 3, (1,), (2,))


def check_rows(before, after, expected_t):
    """after == before / T on each row (T = None: row untouched; T = 0: one-hot argmax)."""
    for row, t in expected_t.items():
        if t is None:
            assert torch.equal(after[row], before[row])
        elif t == 0.0:
            assert torch.isfinite(after[row]).sum() == 1 and int(after[row].argmax()) == int(before[row].argmax())
        else:
            torch.testing.assert_close(after[row], before[row] / t, rtol=1e-6, atol=0)


def test_v1_persistent_batch_add_remove_move_swap():
    rng = np.random.default_rng(0)
    proc = ReSETLogitsProcessorV1(fake_vllm_config(), torch.device("cpu"), False)
    assert proc.is_argmax_invariant() is False
    rows = {}  # batch index -> (name, output list, reference or None)
    counter = [0]

    def add(index, enabled=True):
        out = []
        rows[index] = (f"r{counter[0]}", out, new_reference() if enabled else None)
        counter[0] += 1
        return (index, params(enabled), [5, 6, 7], out)

    script = {0: dict(added=[0, 1, 2]), 3: dict(added_plain=[3]), 5: dict(removed=[1]), 6: dict(added=[1]),
              8: dict(swap=(0, 3)), 10: dict(move=(2, 4)), 12: dict(removed=[0], added=[0]), 15: dict(swap=(1, 4))}
    fed = {}
    seen_high = seen_low = False
    for step in range(24):
        s = script.get(step, {})
        update = BatchUpdate(batch_size=0)
        for index in s.get("removed", []):
            update.removed.append(index)
            rows.pop(index)
        for index in s.get("added", []):
            update.added.append(add(index))
        for index in s.get("added_plain", []):
            update.added.append(add(index, enabled=False))
        if "swap" in s:
            a, b = s["swap"]
            update.moved.append((a, b, MoveDirectionality.SWAP))
            rows[a], rows[b] = rows[b], rows[a]
        if "move" in s:
            a, b = s["move"]
            update.moved.append((a, b, MoveDirectionality.UNIDIRECTIONAL))
            rows[b] = rows.pop(a)
        proc.update_state(update if (update.added or update.removed or update.moved) else None)

        width = max(rows) + 1
        logits = torch.from_numpy((rng.standard_normal((width, VOCAB)) * rng.uniform(0.3, 3, (width, 1)))
                                  .astype(np.float32))
        before = logits.clone()
        after = proc.apply(logits)
        expected = {}
        for index, (name, out, ref) in rows.items():
            if ref is None:
                expected[index] = None
                continue
            last = out[-1] if len(out) > fed.get(name, 0) else -1
            fed[name] = len(out)
            expected[index] = ref.step(last, reference_entropy(before[index].numpy()))
            seen_high |= expected[index] == 1.0
            seen_low |= expected[index] == 0.25
        check_rows(before, after, expected)
        for index, (name, out, ref) in rows.items():  # the engine appends the sampled tokens (live lists)
            out.append(int(rng.choice([1, 1, 2, 9, 14, 20])))
    assert seen_high and seen_low


def test_v1_request_seed_and_validation():
    proc = ReSETLogitsProcessorV1(fake_vllm_config(), "cpu")
    proc.update_state(BatchUpdate(1, added=[(0, params(seed=77), [1], [])]))
    assert proc.state.slot_seed(proc._rows[0].slot) == 77
    ReSETLogitsProcessorV1.validate_params(params())
    for bad in [{"reset": "yes"}, {"reset": True, "reset_seed": -1}]:
        with pytest.raises(ValueError, match="reset"):
            request_enabled(SimpleNamespace(extra_args=bad))
    assert request_enabled(SimpleNamespace(extra_args=None)) is False
    with pytest.raises(ValueError, match="additional_config"):
        settings_from_vllm_config(SimpleNamespace(additional_config=None))
    with pytest.raises(ValueError, match="unknown"):
        settings_from_vllm_config(fake_vllm_config({"t_low": 0.1, "tau0": 0.5, "temperature": 1}))
    with pytest.raises(ValueError, match="t_low"):
        settings_from_vllm_config(fake_vllm_config({"t_low": -1, "tau0": 0.5}))
    full = ReSETLogitsProcessorV1(fake_vllm_config(), "cpu")
    with pytest.raises(ValueError, match="max_num_seqs"):
        full.update_state(BatchUpdate(7, added=[(i, params(), [1], []) for i in range(SLOTS + 1)]))


def test_v2_slot_mapped_rows():
    rng = np.random.default_rng(1)
    proc = ReSETLogitsProcessorV2(fake_vllm_config(), torch.device("cpu"))
    refs, last_token = {}, {}
    for slot in range(SLOTS):
        proc.add_request(slot, params(enabled=slot != 4))
        refs[slot] = new_reference() if slot != 4 else None
    for step in range(20):
        if step == 9:  # slot 2 finishes, a new request takes it
            proc.add_request(2, params())
            refs[2] = new_reference()
            last_token.pop(2, None)
        live = rng.permutation(SLOTS)[: int(rng.integers(2, SLOTS + 1))]  # rows are reordered every step
        logits = torch.from_numpy((rng.standard_normal((len(live), VOCAB)) * 2).astype(np.float32))
        before = logits.clone()
        ctx = SimpleNamespace(idx_mapping=torch.tensor(live, dtype=torch.int32),
                              input_ids=torch.tensor([last_token.get(s, 99 % VOCAB) for s in live]))
        after = proc.apply(logits, ctx)
        expected = {}
        for row, slot in enumerate(live):
            h = reference_entropy(before[row].numpy())
            t = refs[slot].step(last_token.get(slot, -1), h) if refs[slot] else None
            expected[row] = t
        check_rows(before, after, expected)
        for slot in live:
            last_token[int(slot)] = int(rng.choice([1, 2, 3, 17]))
