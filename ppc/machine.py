"""What machine a run or a benchmark was made on.

A CPU run is reproducible bit for bit only on a machine like the one that made it: the math
libraries pick their kernels by the CPU's instruction set, and another choice rounds
differently. ``summary.json`` therefore records the CPU, not only the device type.
"""

from __future__ import annotations

import os
import platform

import torch


def cpu_name() -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` where there is one)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe_machine(device: torch.device) -> dict:
    """``cpu`` (model name), ``cpu_capability`` (the instruction set torch's CPU kernels
    use, e.g. ``AVX512``), ``cpu_count`` and, on CUDA, ``gpu`` (the device's name)."""
    machine = {
        "cpu": cpu_name(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_count": os.cpu_count(),
    }
    if device.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(device)
    return machine
