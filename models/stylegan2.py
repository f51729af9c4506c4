"""StyleGAN2 generator (Karras et al. 2020) in the layout of the reference PyTorch trainer.

Mapping network z -> w, synthesis network W+ -> image, truncation toward the mean w.
The architecture is described by `GeneratorArch`; nothing here reads a global config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from models.layers import ConstantInput, EqualLinear, PixelNorm, StyledConv, ToRGB

NOISE_MODES = ("const", "random", "none")


@dataclass(frozen=True)
class GeneratorArch:
    """Everything needed to build a generator. `channels[i]` is the width at 4 * 2**i px."""

    resolution: int
    channels: tuple[int, ...]
    style_dim: int = 512
    n_mlp: int = 8
    conv_clamp: float | None = None  # StyleGAN2-ADA clamps activations to +-256; the reference trainer does not

    def __post_init__(self):
        log2 = math.log2(self.resolution)
        if self.resolution < 8 or log2 != int(log2):
            raise ValueError(f"resolution must be a power of two >= 8, got {self.resolution}")
        if len(self.channels) != int(log2) - 1:
            raise ValueError(f"need {int(log2) - 1} channel widths (4 px .. {self.resolution} px), "
                             f"got {len(self.channels)}")

    @property
    def log_size(self) -> int:
        return int(math.log2(self.resolution))

    @property
    def n_latent(self) -> int:
        """Number of W+ codes: two per resolution from 8 px, plus conv1 and to_rgb1 at 4 px."""
        return self.log_size * 2 - 2

    @property
    def num_noise_layers(self) -> int:
        return (self.log_size - 2) * 2 + 1

    @classmethod
    def standard(cls, resolution: int, channel_multiplier: int = 2, channel_max: int = 512,
                 style_dim: int = 512, n_mlp: int = 8) -> "GeneratorArch":
        """The reference trainer's widths: 512 up to 32 px, then 2**(14 - log2 res) * multiplier."""
        widths = []
        for log2 in range(2, int(math.log2(resolution)) + 1):
            width = 512 if log2 <= 5 else (2 ** (14 - log2)) * channel_multiplier
            widths.append(min(width, channel_max))
        return cls(resolution=resolution, channels=tuple(widths), style_dim=style_dim, n_mlp=n_mlp)

    def to_dict(self) -> dict:
        d = {"resolution": self.resolution, "channels": list(self.channels),
             "style_dim": self.style_dim, "n_mlp": self.n_mlp}
        if self.conv_clamp is not None:
            d["conv_clamp"] = self.conv_clamp
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorArch":
        return cls(resolution=int(d["resolution"]), channels=tuple(int(c) for c in d["channels"]),
                   style_dim=int(d["style_dim"]), n_mlp=int(d["n_mlp"]),
                   conv_clamp=float(d["conv_clamp"]) if d.get("conv_clamp") is not None else None)


# Named architectures users and benchmarks refer to (random weights unless a checkpoint is given).
STANDARD_ARCHS = {
    "vox256": GeneratorArch.standard(256, channel_multiplier=1),   # the paper's VoxCeleb generator
    "256-cm1": GeneratorArch.standard(256, channel_multiplier=1),
    "256-cm2": GeneratorArch.standard(256, channel_multiplier=2),
    "1024-cm2": GeneratorArch.standard(1024, channel_multiplier=2),  # FFHQ config-f
    "fixture128": GeneratorArch(resolution=128, channels=(256, 256, 256, 256, 256, 128)),
}


class MappingNetwork(nn.Sequential):
    """Pixel norm followed by `n_mlp` equalized-lr layers (lr_mul 0.01): z [N, S] -> w [N, S]."""

    def __init__(self, style_dim: int, n_mlp: int, lr_mul: float = 0.01):
        layers = [PixelNorm()] + [EqualLinear(style_dim, style_dim, lr_mul=lr_mul, activation=True)
                                  for _ in range(n_mlp)]
        super().__init__(*layers)


class NoiseBuffers(nn.Module):
    """The constant per-layer noise maps, `noise_0 .. noise_{L-1}`, each [1, 1, R, R]."""

    def __init__(self, arch: GeneratorArch):
        super().__init__()
        for i in range(arch.num_noise_layers):
            res = 2 ** ((i + 5) // 2)
            self.register_buffer(f"noise_{i}", torch.randn(1, 1, res, res))

    def maps(self) -> list[torch.Tensor]:
        return [getattr(self, f"noise_{i}") for i in range(len(self._buffers))]


class SynthesisNetwork(nn.Module):
    """W+ [N, n_latent, S] -> image [N, 3, R, R], roughly in [-1, 1].

    Latent use follows the reference trainer: conv1 takes code 0 and to_rgb1 code 1; each
    following resolution's up-conv, conv and ToRGB take codes i, i+1, i+2, with i += 2.
    """

    def __init__(self, arch: GeneratorArch):
        super().__init__()
        self.arch = arch
        ch, s, c = arch.channels, arch.style_dim, arch.conv_clamp
        self.input = ConstantInput(ch[0])
        self.conv1 = StyledConv(ch[0], ch[0], s, clamp=c)
        self.to_rgb1 = ToRGB(ch[0], s, upsample=False, clamp=c)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        for in_ch, out_ch in zip(ch[:-1], ch[1:]):
            self.convs.append(StyledConv(in_ch, out_ch, s, upsample=True, clamp=c))
            self.convs.append(StyledConv(out_ch, out_ch, s, clamp=c))
            self.to_rgbs.append(ToRGB(out_ch, s, clamp=c))
        self.noises = NoiseBuffers(arch)

    def noise_maps(self, batch: int, mode: str, dtype: torch.dtype) -> list[torch.Tensor | None]:
        if mode == "const":
            return [n.to(dtype) for n in self.noises.maps()]
        if mode == "random":
            return [torch.randn(batch, 1, *n.shape[2:], device=n.device, dtype=dtype)
                    for n in self.noises.maps()]
        if mode == "none":
            return [None] * self.arch.num_noise_layers
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {mode!r}")

    def forward(self, w_plus: torch.Tensor, noise_mode: str = "const", impl: str = "grouped") -> torch.Tensor:
        n_latent, s = self.arch.n_latent, self.arch.style_dim
        assert w_plus.ndim == 3 and w_plus.shape[1:] == (n_latent, s), \
            f"w_plus must be [N, {n_latent}, {s}], got {list(w_plus.shape)}"
        dtype = w_plus.dtype
        noise = self.noise_maps(w_plus.shape[0], noise_mode, dtype)
        x = self.input(w_plus.shape[0], dtype)
        x = self.conv1(x, w_plus[:, 0], noise[0], impl)
        skip = self.to_rgb1(x, w_plus[:, 1], impl=impl)
        i = 1
        for up_conv, conv, noise_up, noise_conv, to_rgb in zip(
                self.convs[::2], self.convs[1::2], noise[1::2], noise[2::2], self.to_rgbs):
            x = up_conv(x, w_plus[:, i], noise_up, impl)
            x = conv(x, w_plus[:, i + 1], noise_conv, impl)
            skip = to_rgb(x, w_plus[:, i + 2], skip, impl)
            i += 2
        return skip


class Generator(nn.Module):
    """Mapping + synthesis + the mean code `w_avg` used for truncation."""

    def __init__(self, arch: GeneratorArch):
        super().__init__()
        self.arch = arch
        self.style = MappingNetwork(arch.style_dim, arch.n_mlp)  # reference name: `style.N`
        self.synthesis = SynthesisNetwork(arch)
        self.register_buffer("w_avg", torch.zeros(arch.style_dim))

    @property
    def n_latent(self) -> int:
        return self.arch.n_latent

    @property
    def resolution(self) -> int:
        return self.arch.resolution

    @property
    def style_dim(self) -> int:
        return self.arch.style_dim

    def mapping(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        """z [N, S] -> w [N, S], optionally truncated toward w_avg."""
        assert z.ndim == 2 and z.shape[1] == self.style_dim, f"z must be [N, {self.style_dim}]"
        return self.truncate(self.style(z), truncation_psi)

    def truncate(self, w: torch.Tensor, psi: float) -> torch.Tensor:
        """w_avg + psi * (w - w_avg); works for W [N, S] and W+ [N, L, S]."""
        if psi == 1.0:
            return w
        return self.w_avg.to(w.dtype) + psi * (w - self.w_avg.to(w.dtype))

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """W [N, S] -> W+ [N, n_latent, S]."""
        assert w.ndim == 2, "w must be [N, S]"
        return w[:, None, :].expand(-1, self.n_latent, -1)

    def synthesize(self, w_plus: torch.Tensor, noise_mode: str = "const", impl: str = "grouped") -> torch.Tensor:
        """W+ [N, n_latent, S] (or W [N, S], broadcast) -> image [N, 3, R, R] in about [-1, 1]."""
        if w_plus.ndim == 2:
            w_plus = self.broadcast(w_plus)
        return self.synthesis(w_plus, noise_mode=noise_mode, impl=impl)

    @torch.no_grad()
    def estimate_w_avg(self, n: int = 10_000, seed: int = 0) -> torch.Tensor:
        """Mean of mapped samples: the truncation centre when a checkpoint has none stored."""
        gen = torch.Generator(device="cpu").manual_seed(seed)
        z = torch.randn(n, self.style_dim, generator=gen).to(self.w_avg.device)
        w = torch.cat([self.style(chunk) for chunk in z.split(2048)])
        self.w_avg.copy_(w.mean(0))
        return self.w_avg

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: str = "const") -> torch.Tensor:
        return self.synthesize(self.broadcast(self.mapping(z, truncation_psi)), noise_mode)
