"""reset_native's decode loop: greedy agrees with transformers' own generate, seeds reproduce, streaming, errors."""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from reset_native import sampler  # noqa: E402
from reset_native.integrations.generate import generate  # noqa: E402
from reset_native.integrations.nvfp4_linear import quantize_model  # noqa: E402

from _e2e_models import tiny_llama, tiny_tokenizer  # noqa: E402

PROMPTS = ["ab 12 + 3 = ", "c", "what is 7 * 6?\n"]


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model():
    m = tiny_llama(seed=1)
    quantize_model(m)
    return m


def _hf_greedy(model, ids, n):
    out = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False, eos_token_id=None,
                         pad_token_id=0)
    return out[0, len(ids):].tolist()


def test_greedy_batched_left_padded_matches_transformers(model, tok):
    res = generate(model, tok, PROMPTS, temperature=0.0, max_new_tokens=12, stop_at_eos=False)
    for b, p in enumerate(PROMPTS):
        ids = tok(p, add_special_tokens=False)["input_ids"]
        assert res.token_ids[b] == _hf_greedy(model, ids, 12), p
        assert res.token_ids[b] == res.argmax_ids[b]
    assert res.steps == 12 and res.prompt_length == max(len(p) for p in PROMPTS)
    assert all(t == 0.0 for row in res.temperatures for t in row)


def test_entropies_are_those_of_the_model(model, tok):
    res = generate(model, tok, PROMPTS[:2], temperature=1.0, max_new_tokens=6, seed=5, stop_at_eos=False)
    for b, p in enumerate(PROMPTS[:2]):
        ids = tok(p, add_special_tokens=False)["input_ids"]
        full = torch.tensor([ids + res.token_ids[b]])
        with torch.no_grad():
            logits = model(full).logits[0, len(ids) - 1:-1].double()
        logp = torch.log_softmax(logits, -1)
        want = -(logp.exp() * logp).sum(-1)
        assert torch.allclose(torch.tensor(res.entropies[b], dtype=torch.float64), want, rtol=1e-4, atol=1e-5)
        assert res.argmax_ids[b] == logits.argmax(-1).tolist()


def test_fixed_seed_reproducible_and_seed_matters(model, tok):
    a = generate(model, tok, PROMPTS, temperature=1.0, max_new_tokens=16, seed=11, stop_at_eos=False)
    b = generate(model, tok, PROMPTS, temperature=1.0, max_new_tokens=16, seed=11, stop_at_eos=False)
    c = generate(model, tok, PROMPTS, temperature=1.0, max_new_tokens=16, seed=12, stop_at_eos=False)
    assert a.token_ids == b.token_ids and a.texts == b.texts
    assert a.token_ids != c.token_ids


def test_reset_sampler_and_stream(model, tok):
    nl, dnl = sampler.newline_token_ids(tok)
    cfg = sampler.ReSETConfig(t_low=0.2, tau0=1.0, t_high=1.0, newline_ids=nl, double_newline_ids=dnl)
    pieces = {0: [], 1: []}
    res = generate(model, tok, PROMPTS[:2], sampler=cfg, max_new_tokens=20, seed=3, stop_at_eos=False,
                   stream=lambda row, text: pieces[row].append(text))
    for b in range(2):
        assert "".join(pieces[b]) == res.texts[b]
        assert set(round(t, 6) for t in res.temperatures[b]) <= {0.2, 1.0}
        assert len(res.temperatures[b]) == len(res.token_ids[b]) == 20
    # the state machine's choice, replayed independently from the recorded entropies and tokens
    state = sampler.ReSETState(cfg, 1, 51)
    last = -1
    for h, tkn, t in zip(res.entropies[0], res.token_ids[0], res.temperatures[0]):
        assert state.update(torch.tensor([h]), torch.tensor([last]))[0] == pytest.approx(t)
        last = tkn


def test_stops_at_eos(model, tok):
    full = generate(model, tok, ["ab"], temperature=0.0, max_new_tokens=12, stop_at_eos=False).token_ids[0]
    k = next(i for i, t in enumerate(full) if t not in full[:i] and i >= 1)  # first fresh token after step 0
    res = generate(model, tok, ["ab"], temperature=0.0, max_new_tokens=12, eos_token_id=full[k])
    assert res.token_ids == [full[:k]] and res.steps == k + 1  # the CPU loop checks every step
    assert res.texts == [tok.decode(full[:k], skip_special_tokens=True)]


def test_token_id_prompts_without_tokenizer(model):
    res = generate(model, None, torch.tensor([[3, 4, 5], [6, 7, 8]]), temperature=0.0, max_new_tokens=4,
                   stop_at_eos=False)
    assert len(res.token_ids) == 2 and res.texts == ["", ""]
    assert res.token_ids[0] == _hf_greedy(model, [3, 4, 5], 4)


def test_bad_inputs(model, tok):
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(model, tok, "a", max_new_tokens=0)
    with pytest.raises(ValueError, match="sampler"):
        generate(model, tok, "a", sampler="greedy")
    with pytest.raises(TypeError, match="sampler"):
        generate(model, tok, "a", sampler=0.5)
    with pytest.raises(ValueError, match="temperature"):
        generate(model, tok, "a", temperature=-1.0)
    with pytest.raises(ValueError, match="at least one prompt"):
        generate(model, tok, [])
    with pytest.raises(ValueError, match="at least one token"):
        generate(model, tok, [""])
    with pytest.raises(ValueError, match="tokenizer"):
        generate(model, None, "a")
    with pytest.raises(TypeError, match="prompts"):
        generate(model, tok, [1.5])
    with pytest.raises(ValueError, match="cuda_graph"):
        generate(model, tok, "a", cuda_graph="yes")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda_graph=True"):
            generate(model, tok, "a", cuda_graph=True)
    with pytest.raises(TypeError, match="stream"):
        generate(model, tok, "a", stream="print")


@pytest.mark.gpu
def test_cuda_graph_matches_eager_on_gpu(tok):
    m = tiny_llama(seed=1, dtype=torch.bfloat16).cuda()
    quantize_model(m)
    kw = dict(temperature=0.7, max_new_tokens=24, seed=9, stop_at_eos=False)
    eager = generate(m, tok, PROMPTS, cuda_graph=False, **kw)
    graph = generate(m, tok, PROMPTS, cuda_graph=True, **kw)
    assert graph.cuda_graph and not eager.cuda_graph
    assert graph.token_ids == eager.token_ids
    m = tiny_llama(seed=1).cuda()  # float32, so greedy ties cannot differ by rounding between the two paths
    quantize_model(m)
    greedy = generate(m, tok, PROMPTS, temperature=0.0, max_new_tokens=10, stop_at_eos=False, cuda_graph=True)
    assert greedy.cuda_graph
    for b, p in enumerate(PROMPTS):
        ids = tok(p, add_special_tokens=False)["input_ids"]
        out = m.generate(torch.tensor([ids], device="cuda"), max_new_tokens=10, do_sample=False, eos_token_id=None,
                         pad_token_id=0)
        assert greedy.token_ids[b] == out[0, len(ids):].tolist()
