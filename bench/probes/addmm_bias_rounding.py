"""Which torch.addmm forms round alpha * (x @ w^T) + bias once on this GPU (session 25)? Pure torch, no build:
    python3 bench/probes/addmm_bias_rounding.py
Per form: max |y - ref| over the one-rounding bound (half an output ulp of |ref| plus 2^-18 of sum |x||w|, fp64 ref)
and the fraction of outputs beyond it; > 1 means the form rounded alpha * AB before adding the bias. The prefill
route (python/reset_native/_nvfp4_prefill.py) uses form A for calls with a bias."""
import torch

torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
g = torch.Generator(device="cuda").manual_seed(0)
for dtype in (torch.bfloat16, torch.float16):
    m, n, k = 77, 200, 1024
    x = (torch.randn(m, k, device="cuda", generator=g) * 2).to(dtype)
    w = (torch.randint(-6, 7, (n, k), device="cuda", generator=g).float() * 4).to(dtype)  # exact small integers
    b = (torch.randn(n, device="cuda", generator=g) * 300).to(dtype)
    gs = 0.0123
    ref = gs * (x.double() @ w.double().T) + b.double()
    bound = (2.0 ** -8 if dtype == torch.bfloat16 else 2.0 ** -11) * ref.abs() \
        + 2.0 ** -18 * gs * (x.double().abs() @ w.double().abs().T)

    def report(name, y):
        err = (y.double() - ref).abs()
        print(f"{dtype} {name:40s} max err/bound {(err / bound).max().item():8.2f}  "
              f"beyond {(err > bound).double().mean().item():.4f}")

    report("A addmm(b1d, alpha) contiguous", torch.addmm(b, x, w.t(), alpha=gs))
    y = torch.empty(m, n + 8, device="cuda", dtype=dtype)
    report("C addmm(b1d, alpha, out=strided)", torch.addmm(b, x, w.t(), alpha=gs, out=y[:, :n]))
    y = b.expand(m, n).contiguous()
    torch.addmm(y, x, w.t(), alpha=gs, out=y)
    report("B in-place 2-D C beta=1", y)
    y = torch.empty(m, n + 8, device="cuda", dtype=dtype)
    p = y[:, :n]
    p.copy_(b.expand(m, n))
    torch.addmm(p, x, w.t(), alpha=gs, out=p)
    report("B2 in-place strided 2-D C beta=1", p)
    y = torch.empty(m, n, device="cuda", dtype=dtype)
    torch.addmm(y, x, w.t(), beta=0, alpha=gs, out=y)
    report("E no bias, then + b", y + b)
    try:
        report("G mm out_dtype=f32, * gs + b in f32", (torch.mm(x, w.t(), out_dtype=torch.float32) * gs + b.float())
               .to(dtype))
    except (TypeError, RuntimeError) as e:
        print("G unavailable:", e)
