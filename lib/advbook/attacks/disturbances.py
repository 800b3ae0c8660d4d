"""Benign test-time "disturbances" (Di et al.'s Table 1, their "five common attacks"): random
transforms of the test images, batched on the images' device, in the attacks' call shape so that
an evaluation spec can name them. They need no model and no gradient; the evaluation's `seed`
fixes them, so every model sees the same disturbed test set. Score them with
`require_clean=False` (the disturbed image alone), as the paper does.

The paper gives only the column names; the parameters are torchvision's usual ones (Section
3.1.4 of our reading). Where torchvision redraws a crop that does not fit, these clip it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _crop_resize(x, top, left, h, w):
    """Each image's box (top, left, h, w in pixels, float tensors) resized back to the full image
    (bilinear), through one affine grid for the batch."""
    n, _, height, width = x.shape
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 1, 1] = w / width, h / height
    theta[:, 0, 2] = (left + w / 2) / width * 2 - 1
    theta[:, 1, 2] = (top + h / 2) / height * 2 - 1
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_resized_crop(model, x, y, scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3)):
    """A box of area s H W, s ~ U(scale), aspect ratio r ~ log-U(ratio), at a uniform place,
    resized back to H x W (torchvision's RandomResizedCrop)."""
    n, _, height, width = x.shape
    u = torch.rand(n, 4, device=x.device, dtype=x.dtype)
    area = (scale[0] + (scale[1] - scale[0]) * u[:, 0]) * height * width
    r = torch.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1])
    w = (area * r).sqrt().clamp(1, width)
    h = (area / r).sqrt().clamp(1, height)
    return _crop_resize(x, u[:, 2] * (height - h), u[:, 3] * (width - w), h, w)


def five_crop(model, x, y, size: int = 24):
    """One of the four corner crops or the centre crop of `size` pixels, uniformly at random,
    resized back to the full image (torchvision's FiveCrop, one crop per image)."""
    n, _, height, width = x.shape
    which = torch.randint(0, 5, (n,), device=x.device)
    top = torch.tensor([0, 0, height - size, height - size, (height - size) / 2], device=x.device)[which]
    left = torch.tensor([0, width - size, 0, width - size, (width - size) / 2], device=x.device)[which]
    side = torch.full((n,), float(size), device=x.device)
    return _crop_resize(x, top.to(x.dtype), left.to(x.dtype), side.to(x.dtype), side.to(x.dtype))


def hflip(model, x, y):
    """Every image mirrored left to right (probability 1, so that no image is left untouched)."""
    return x.flip(-1)


def _gray(x):
    if x.shape[1] == 1:
        return x
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).expand_as(x)


def grayscale(model, x, y):
    """ITU-R 601 luma, replicated to every channel (identity for one-channel images)."""
    return _gray(x).contiguous()


def color_jitter(model, x, y, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4,
                 hue: float = 0.1):
    """Brightness, contrast, saturation (factors ~ U(1 - b, 1 + b)) and hue (a rotation of the
    chroma plane in YIQ by 2 pi h, h ~ U(-hue, hue)), in that fixed order, clipped to [0, 1].
    torchvision draws the order at random and shifts hue in HSV; this is the batched analogue."""
    n = len(x)
    u = torch.rand(n, 4, 1, 1, 1, device=x.device, dtype=x.dtype)
    x = (x * (1 - brightness + 2 * brightness * u[:, 0])).clamp(0, 1)
    mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * (1 - contrast + 2 * contrast * u[:, 1]) + mean).clamp(0, 1)
    if x.shape[1] == 3:
        gray = _gray(x)
        x = ((x - gray) * (1 - saturation + 2 * saturation * u[:, 2]) + gray).clamp(0, 1)
        yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                           device=x.device, dtype=x.dtype)
        angle = 2 * math.pi * hue * (2 * u[:, 3, 0, 0, 0] - 1)
        rotation = torch.zeros(n, 3, 3, device=x.device, dtype=x.dtype)
        rotation[:, 0, 0] = 1
        rotation[:, 1, 1], rotation[:, 1, 2] = angle.cos(), -angle.sin()
        rotation[:, 2, 1], rotation[:, 2, 2] = angle.sin(), angle.cos()
        transform = torch.linalg.inv(yiq) @ rotation @ yiq            # (n, 3, 3), RGB to RGB
        x = torch.einsum("nij,njhw->nihw", transform, x).clamp(0, 1)
    return x


DISTURBANCES = {"random-crop": random_resized_crop, "five-crop": five_crop, "hflip": hflip,
                "grayscale": grayscale, "color-jitter": color_jitter}
