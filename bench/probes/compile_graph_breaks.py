"""Graph breaks of a compiled NVFP4Linear: torch._dynamo.explain on an NVFP4Linear (1024 -> 640, bias, bfloat16) for
W4A16 and W4A4 with a static input scale at 8, 48 and 100 tokens; one line each with the number of graphs, breaks and
traced ops, and the first break reasons. A compiled model is one graph when every line says 1 graph, 0 breaks.

    python3 bench/probes/compile_graph_breaks.py [--device cuda|cpu]
"""
import argparse

import torch

from reset_native.integrations.nvfp4_linear import NVFP4Linear


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cuda", "cpu"])
    args = ap.parse_args()
    for act in ("bf16", "nvfp4"):
        lin = torch.nn.Linear(1024, 640, bias=True).to(torch.bfloat16)
        q = NVFP4Linear.from_linear(lin.to(args.device), activation=act)
        if act == "nvfp4":
            q.set_input_scale(0.01)
        for m in (8, 48, 100):
            x = torch.randn(m, 1024, dtype=torch.bfloat16, device=args.device)
            torch._dynamo.reset()
            with torch.no_grad():
                q(x)  # eager first, as a model runs before it is compiled
                e = torch._dynamo.explain(q)(x)
            print(f"{args.device} {act} m={m}: graphs {e.graph_count}, breaks {e.graph_break_count}, "
                  f"ops {e.op_count}")
            for b in e.break_reasons[:4]:
                print("   ", str(b.reason)[:300].replace("\n", " "))


if __name__ == "__main__":
    main()
