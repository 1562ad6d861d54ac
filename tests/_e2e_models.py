"""Tiny randomly initialised transformers models and a tiny offline tokenizer for the e2e tests."""
from __future__ import annotations

import torch


def tiny_llama(seed: int = 0, *, vocab: int = 51, hidden: int = 64, layers: int = 2, tie: bool = True,
               dtype=torch.float32, init_std: float = 0.25):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      tie_word_embeddings=tie, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                      initializer_range=init_std)
    model = LlamaForCausalLM(cfg).to(dtype).eval()
    return model


def tiny_qwen3(seed: int = 0, *, vocab: int = 51, hidden: int = 64, layers: int = 2, dtype=torch.float32,
               init_std: float = 0.25):
    """A Qwen3 causal LM (q/k head norms, head_dim 32 != hidden / heads) with random weights."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen3Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=256,
                      tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                      initializer_range=init_std)
    model = Qwen3ForCausalLM(cfg).to(dtype).eval()
    with torch.no_grad():  # norm weights start at 1: perturb them so a swapped q/k weight would show
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.add_(torch.randn_like(p) * 0.2)
    return model


def tiny_tokenizer():
    """A character-level fast tokenizer built in memory (no files, no network)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    from transformers import PreTrainedTokenizerFast

    chars = list("abcdefghijklmnopqrstuvwxyz0123456789 +-*/=?.:,\n")
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2}
    for c in chars:
        vocab.setdefault(c, len(vocab))
    vocab["\n\n"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    return fast
