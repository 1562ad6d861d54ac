"""Built-in networks, the roofline NPU model and the whole-iteration arithmetic of reset_native.pim.

Parameter counts are the published ones. FLOPs are forward FLOPs per sample (2 per multiply-add) at the
usual input size; activations are the elements of saved layer outputs per sample (each written once in
the forward pass and read once in the backward pass, fp16): estimates from the layer shapes, a lower
bound that an NPU with layer fusion approaches. docs/gradpim.md lists the derivations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, Union


@dataclass(frozen=True)
class Network:
    name: str
    params: int
    flops_per_sample: float        # forward, FLOPs (2 per multiply-add)
    activations_per_sample: float  # saved layer-output elements per sample
    batch_size: int = 32
    note: str = ""

    def __post_init__(self):
        if not isinstance(self.params, int) or isinstance(self.params, bool) or self.params < 1:
            raise ValueError(f"network params must be an int >= 1, got {self.params!r}")
        for name in ("flops_per_sample", "activations_per_sample"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
                raise ValueError(f"network {name} must be a finite number >= 0, got {v!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"network batch_size must be an int >= 1, got {self.batch_size!r}")


NETWORKS: Dict[str, Network] = {n.name: n for n in [
    Network("resnet18", 11_689_512, 3.64e9, 2.5e6, 32, "224x224; 1.82 G multiply-adds"),
    Network("resnet50", 25_557_032, 8.2e9, 11.0e6, 32, "224x224; 4.1 G multiply-adds"),
    Network("vgg16", 138_357_544, 31.0e9, 15.2e6, 32, "224x224; 15.5 G multiply-adds"),
    Network("bert_base", 110_000_000, 22.4e9, 24.0e6, 32,
            "sequence 128: 2 x 85M non-embedding params x 128 tokens + attention"),
    Network("gpt2_small", 124_000_000, 213.0e9, 450.0e6, 8,
            "sequence 1024: 2 x 85M x 1024 tokens + 4 x 1024^2 x 768 x 12 attention"),
]}


def get_network(network: Union[str, Network]) -> Network:
    if isinstance(network, Network):
        return network
    if not isinstance(network, str):
        raise TypeError(f"network must be a name or a Network, got {type(network).__name__}")
    key = network.lower().replace("-", "_")
    aliases = {"bert": "bert_base", "gpt2": "gpt2_small", "vgg_16": "vgg16", "resnet_18": "resnet18",
               "resnet_50": "resnet50"}
    key = aliases.get(key, key)
    if key not in NETWORKS:
        raise ValueError(f"unknown network {network!r}; built-in: {', '.join(NETWORKS)} (or pass a Network)")
    return NETWORKS[key]


@dataclass(frozen=True)
class NPUModel:
    """A roofline accelerator: compute at peak_flops * efficiency, DRAM traffic at the bandwidth the
    memory model measured for the host's streaming update (same channels, ranks and speed grade)."""
    peak_flops: float = 8e12
    efficiency: float = 0.6
    activation_bytes: int = 2      # fp16 activations
    name: str = "edge NPU"

    def __post_init__(self):
        if not isinstance(self.peak_flops, (int, float)) or not self.peak_flops > 0 or not math.isfinite(self.peak_flops):
            raise ValueError(f"peak_flops must be a finite number > 0, got {self.peak_flops!r}")
        if not isinstance(self.efficiency, (int, float)) or not 0 < self.efficiency <= 1:
            raise ValueError(f"efficiency must be in (0, 1], got {self.efficiency!r}")
        if self.activation_bytes not in (1, 2, 4):
            raise ValueError(f"activation_bytes must be 1, 2 or 4, got {self.activation_bytes!r}")


@dataclass
class IterationResult:
    network: str
    batch_size: int
    forward_backward_ns: float
    forward_backward_bytes: float
    compute_bound: bool
    update_host_ns: float
    update_pim_ns: float
    update_host_bytes: float
    update_pim_bytes: float
    iteration_host_ns: float
    iteration_pim_ns: float
    speedup: float                 # whole iteration, host update / PIM update
    update_speedup: float
    traffic_host_bytes: float
    traffic_pim_bytes: float
    traffic_reduction: float       # fraction of the iteration's DRAM traffic PIM removes from the bus
    update_share_of_traffic: float # host update bytes / all host bytes
    update_share_of_time: float    # host update time / host iteration time
    details: Dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> Dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}

    def summary(self) -> str:
        return "\n".join([
            f"{self.network}, batch {self.batch_size}",
            f"forward+backward {self.forward_backward_ns / 1e6:.2f} ms ({'compute' if self.compute_bound else 'memory'} bound), "
            f"{self.forward_backward_bytes / 1e6:.0f} MB",
            f"update          host {self.update_host_ns / 1e6:.2f} ms, PIM {self.update_pim_ns / 1e6:.2f} ms "
            f"({self.update_speedup:.2f}x)",
            f"iteration       host {self.iteration_host_ns / 1e6:.2f} ms, PIM {self.iteration_pim_ns / 1e6:.2f} ms: "
            f"{self.speedup:.3f}x",
            f"DRAM traffic    host {self.traffic_host_bytes / 1e6:.0f} MB, PIM {self.traffic_pim_bytes / 1e6:.0f} MB: "
            f"{100 * self.traffic_reduction:.1f}% less (update was {100 * self.update_share_of_traffic:.1f}% of it)",
        ])


def iteration(net: Network, config, npu: NPUModel, batch_size: int, cmp) -> IterationResult:
    bw_bytes_per_ns = cmp.host.external_bytes / cmp.host.time_ns   # measured streaming bandwidth
    copy_bytes = 2 if config.copy_dtype != "fp32" else 4
    grad_bytes = 4 if config.grad_dtype == "fp32" else 2
    flops = 3.0 * net.flops_per_sample * batch_size
    fb_bytes = (2.0 * net.activations_per_sample * npu.activation_bytes * batch_size
                + 2.0 * net.params * copy_bytes + net.params * grad_bytes)
    t_compute = flops / (npu.peak_flops * npu.efficiency) * 1e9
    t_memory = fb_bytes / bw_bytes_per_ns
    fb = max(t_compute, t_memory)
    host_it = fb + cmp.host.time_ns
    pim_it = fb + cmp.pim.time_ns
    th = fb_bytes + cmp.host.external_bytes
    tp = fb_bytes + cmp.pim.external_bytes
    return IterationResult(
        network=net.name, batch_size=batch_size, forward_backward_ns=fb, forward_backward_bytes=fb_bytes,
        compute_bound=t_compute >= t_memory, update_host_ns=cmp.host.time_ns, update_pim_ns=cmp.pim.time_ns,
        update_host_bytes=cmp.host.external_bytes, update_pim_bytes=cmp.pim.external_bytes,
        iteration_host_ns=host_it, iteration_pim_ns=pim_it, speedup=host_it / pim_it, update_speedup=cmp.speedup,
        traffic_host_bytes=th, traffic_pim_bytes=tp, traffic_reduction=1.0 - tp / th,
        update_share_of_traffic=cmp.host.external_bytes / th, update_share_of_time=cmp.host.time_ns / host_it,
        details={"flops": flops, "compute_ns": t_compute, "memory_ns": t_memory,
                 "measured_bandwidth_GBps": bw_bytes_per_ns, "npu": npu.__dict__})
