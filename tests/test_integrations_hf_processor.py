"""ReSETLogitsProcessor inside real transformers generate() calls on a tiny randomly initialised
Llama (no downloads)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from reset_native.integrations.hf import ReSETLogitsProcessor  # noqa: E402
from reset_native.sampler import ReSETConfig, ReSETState, decode_step  # noqa: E402
from test_sampler_reference import ReferenceSlot, reference_entropy  # noqa: E402

VOCAB = 64


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                                      pad_token_id=0, bos_token_id=1, eos_token_id=2)
    m = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():  # spread the logits so both temperatures occur
        m.lm_head.weight.mul_(40.0)
    return m


class Spy(transformers.LogitsProcessor):
    """Records the raw scores the ReSET processor receives (it runs right before it)."""

    def __init__(self):
        self.scores = []

    def __call__(self, input_ids, scores):
        self.scores.append(scores.detach().clone())
        return scores


def generate(model, processors, **kw):
    prompt = torch.tensor([[1, 5, 9, 3], [1, 7, 7, 8], [1, 4, 11, 30]])
    args = dict(max_new_tokens=16, min_new_tokens=16, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                logits_processor=transformers.LogitsProcessorList(processors))
    args.update(kw)
    with torch.no_grad():
        return model.generate(prompt, attention_mask=torch.ones_like(prompt), **args)


NEWLINE, DOUBLE = (3, 8), (12,)


def test_temperatures_follow_the_spec_inside_generate(model):
    config = ReSETConfig(t_low=0.2, tau0=1.0, window=4, newline_ids=NEWLINE, double_newline_ids=DOUBLE)
    spy, proc = Spy(), ReSETLogitsProcessor(config, record=True)
    out = generate(model, [spy, proc])
    assert proc.prompt_length == 4 and len(proc.history) == 16
    refs = [ReferenceSlot(0.2, 1.0, 1.0, 4, NEWLINE, DOUBLE) for _ in range(3)]
    temps = []
    for step, (scores, record) in enumerate(zip(spy.scores, proc.history)):
        np.testing.assert_allclose(record.entropies.numpy(), [reference_entropy(r) for r in scores.numpy()],
                                   rtol=1e-5)
        last = out[:, 4 + step - 1] if step else torch.full((3,), -1)
        want = [refs[r].step(int(last[r]), float(record.entropies[r])) for r in range(3)]
        np.testing.assert_array_equal(record.temperatures.numpy(), np.array(want, np.float32))
        temps.extend(want)
    assert {0.2, 1.0} <= set(temps)


def test_greedy_config_reproduces_greedy_generate(model):
    greedy = generate(model, [], do_sample=False, temperature=None, top_k=None, top_p=None)
    proc = ReSETLogitsProcessor(ReSETConfig.fixed(0.0))
    torch.manual_seed(123)
    ours = generate(model, [proc])
    assert torch.equal(ours, greedy)


def test_sample_mode_emits_reset_native_tokens(model):
    config = ReSETConfig(t_low=0.3, tau0=0.8, top_p=0.9, newline_ids=NEWLINE)
    spy, proc = Spy(), ReSETLogitsProcessor(config, seed=5, mode="sample")
    out = generate(model, [spy, proc])
    state = ReSETState(config, 3, VOCAB, seed=5)
    last = torch.full((3,), -1)
    for step, scores in enumerate(spy.scores):
        tokens = decode_step(state, scores, last).tokens
        assert torch.equal(tokens, out[:, 4 + step])
        last = tokens
    # a second generate() call with the same processor starts afresh and repeats itself
    again = generate(model, [proc])
    assert torch.equal(again, out)


def test_beam_search_is_refused(model):
    proc = ReSETLogitsProcessor(ReSETConfig(0.1, 0.5))
    with pytest.raises(ValueError, match="beam"):
        generate(model, [proc], do_sample=False, num_beams=2, temperature=None, top_k=None, top_p=None)


def test_processor_arguments():
    with pytest.raises(TypeError, match="ReSETConfig"):
        ReSETLogitsProcessor({"t_low": 0.1})
    with pytest.raises(ValueError, match="mode"):
        ReSETLogitsProcessor(ReSETConfig(0.1, 0.5), mode="beam")
    assert ReSETLogitsProcessor.supports_continuous_batching is False
    assert isinstance(ReSETLogitsProcessor(ReSETConfig(0.1, 0.5)), transformers.LogitsProcessor)
