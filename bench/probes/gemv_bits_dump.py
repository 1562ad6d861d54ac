"""The NVFP4 GEMV's outputs on fixed inputs, saved for a bit-for-bit comparison between two builds of the package.

  python3 bench/probes/gemv_bits_dump.py OUT.pt [REFERENCE.pt]

Runs W4A16 and W4A4 (dynamic scale) GEMVs with bf16 and fp16 x at 3, 4, 6, 8, 9, 12 and 16 tokens on the Qwen3
decode shapes that run the 16-bit kernel's two-team, two-CTA and split-K forms, plus two shapes with a partial last
row tile (weights and x drawn on the GPU from fixed seeds), saves every output to OUT.pt and, given REFERENCE.pt
(another build's OUT.pt), prints how many outputs are identical bit for bit and the first that are not. Used by
bench/probes/gemv_define_ab.sh for build-time switches that must not change a bit (e.g. weight slots per thread)."""
import sys

import torch

import reset_native.nvfp4 as nv

SHAPES = ((6144, 4096), (4096, 4096), (24576, 4096), (10240, 5120), (5120, 8192), (1000, 4096), (3000, 5120))
TOKENS = (3, 4, 6, 8, 9, 12, 16)


def outputs():
    out = {}
    for n, k in SHAPES:
        g = torch.Generator(device="cuda").manual_seed(n * 7 + k)
        t = nv.quantize(torch.randn(n, k, device="cuda", generator=g, dtype=torch.float32))
        for m in TOKENS:
            for dt in (torch.bfloat16, torch.float16):
                x = torch.randn(m, k, device="cuda", generator=g).to(dt)
                for act in ("bf16", "nvfp4"):
                    out[f"{n}x{k} m{m} {dt} {act}"] = nv.gemv(t, x, activation=act).cpu()
    return out


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    out = outputs()
    torch.save(out, sys.argv[1])
    if len(sys.argv) == 3:
        ref = torch.load(sys.argv[2])
        bad = [key for key in out if key not in ref or not torch.equal(out[key].view(torch.int16),
                                                                          ref[key].view(torch.int16))]
        print(f"bits: {len(out) - len(bad)}/{len(out)} outputs identical to {sys.argv[2]}", bad[:5])


if __name__ == "__main__":
    main()
