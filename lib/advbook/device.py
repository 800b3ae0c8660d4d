"""The training device and its precision settings, in one place."""
from __future__ import annotations

import torch


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device, precision: str):
    """bf16 autocast on the device when asked; fp32 master weights are untouched."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def enable_cudnn_autotuning(device: torch.device) -> None:
    """cuDNN picks the fastest convolution algorithm for each shape once (full batches only keep
    the shapes fixed). A GPU fast-path option; nothing on a CPU."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
