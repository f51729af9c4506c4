"""NVIDIA StyleGAN2-ADA `.pkl` generators, read without running the code they carry.

NVIDIA's pickles store each network as `torch_utils.persistence._reconstruct_persistent_obj(meta)`,
where meta holds the Python source of the network's module (`module_src`), the class name and
the object's state (`_parameters`, `_buffers`, `_modules`, init kwargs). Unpickling them the
usual way executes that source. Here a restricted unpickler allows exactly the globals a
tensor needs and replaces the reconstructor with one that returns the meta as plain data:
no source is ever executed, any other global is refused by name.

The StyleGAN2-ADA generator ('skip' architecture, unconditional) is the same network as the
reference trainer's up to parameterisation, which is mapped exactly:
- mapping fc{i} -> style.{i+1} (same equalised-lr form, lr multiplier 0.01, z normalised);
- synthesis conv weights are stored without the 1/sqrt(fan_in) gain: demodulation cancels
  any scale, so they load as they are; ToRGB scales the styles by 1/sqrt(C_in), the reference
  the weights: the same product;
- the up-conv (transposed, then the [1,3,3,1] FIR with gain 4, padding 1/1) and the skip
  upsampling (padding 2/1) are the reference's;
- `conv_clamp`: activations clamped to +-256 after the bias and activation. The reference
  has no clamp; our layers take it from the architecture (GeneratorArch.conv_clamp).
- layers NVIDIA ran in fp16 (`num_fp16_res`) are computed here in fp32: the difference is
  that rounding, not the network.
Refused with a reason: StyleGAN3 (a different synthesis network), conditional generators,
the 'orig' and 'resnet' architectures, and anything else that does not map one to one.
"""

from __future__ import annotations

import collections
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch

from models.errors import CheckpointError
from models.layers import make_fir_kernel

STYLEGAN2_FIR = (1.0, 3.0, 3.0, 1.0)

G_EMA = "G_ema"  # the generator to use: the EMA of the training weights, as NVIDIA's own scripts do


@dataclass
class PersistentObject:
    """What `_reconstruct_persistent_obj` was given, kept as data (the source is never run)."""
    class_name: str
    module_src: str
    state: dict

    def param(self, name: str) -> torch.Tensor | None:
        for group in ("_parameters", "_buffers"):
            t = (self.state.get(group) or {}).get(name)
            if t is not None:
                return t
        return None

    def child(self, name: str) -> "PersistentObject | None":
        c = (self.state.get("_modules") or {}).get(name)
        return c if isinstance(c, PersistentObject) else None

    def attr(self, name: str, default=None):
        if name in self.state:
            return self.state[name]
        kwargs = self.state.get("init_kwargs") or {}
        return kwargs.get(name, default)


def _reconstruct_persistent_obj(meta):
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise pickle.UnpicklingError("unsupported persistent object in the pickle")
    state = meta.get("state")
    return PersistentObject(str(meta.get("class_name")), str(meta.get("module_src", "")),
                            state if isinstance(state, dict) else {})


def _load_storage_from_bytes(data: bytes):
    # A storage pickled on its own: a small torch file, read with weights_only as everything else.
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _rebuild_parameter(data, requires_grad, backward_hooks, *state):
    return data


class _EasyDict(dict):
    """dnnlib.EasyDict as a plain dict (its attribute access is not needed here)."""


ALLOWED = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("dnnlib", "EasyDict"): _EasyDict,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        found = ALLOWED.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"the pickle references {module}.{name}, which is not a tensor or a "
                                         f"StyleGAN network record; refusing to run it")
        return found

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not used by NVIDIA network pickles")


def is_nvidia_pickle(path: str | Path) -> bool:
    """A pickle that names NVIDIA's persistence module in its first 4 KB (a network pickle)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    return head[:1] == b"\x80" and b"torch_utils.persistence" in head


def read_network_pickle(path: str | Path) -> dict:
    """The pickle's top-level dict ('G', 'D', 'G_ema', ...) with networks as PersistentObject."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = _RestrictedUnpickler(f).load()
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{path}: not a StyleGAN2-ADA network pickle we can read safely: {e}") from None
    except (EOFError, ValueError, OSError, RuntimeError, IndexError) as e:
        raise CheckpointError(f"{path}: unreadable pickle, it may be truncated ({type(e).__name__}: {e}). "
                              f"Download it again.") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: the pickle holds a {type(data).__name__}, not NVIDIA's dict of networks.")
    return data


def _need(obj: PersistentObject | None, name: str, where: str) -> torch.Tensor:
    t = obj.param(name) if obj is not None else None
    if not isinstance(t, torch.Tensor):
        raise CheckpointError(f"{where}.{name} is missing: not a StyleGAN2-ADA generator")
    return t.detach().float()


def generator_state(G: PersistentObject, source: str = "pickle") -> tuple[dict[str, torch.Tensor], torch.Tensor, float | None]:
    """Map an ADA generator record to (reference-keyed state dict, latent_avg, conv_clamp), or refuse."""
    if G.class_name != "Generator":
        raise CheckpointError(f"{source}: G_ema is a {G.class_name}, not a Generator")
    synthesis, mapping = G.child("synthesis"), G.child("mapping")
    if synthesis is None or mapping is None:
        raise CheckpointError(f"{source}: the generator has no synthesis/mapping networks")
    if synthesis.child("input") is not None or "SynthesisInput" in synthesis.module_src:
        raise CheckpointError(f"{source}: a StyleGAN3 (alias-free) generator. Its synthesis network (Fourier "
                              f"features, filtered non-linearities) is not StyleGAN2's; live supports StyleGAN2 only.")
    if int(G.attr("c_dim", 0) or 0) != 0 or mapping.child("embed") is not None:
        raise CheckpointError(f"{source}: a class-conditional generator; live needs an unconditional face generator.")
    resolution = int(G.attr("img_resolution") or synthesis.attr("img_resolution") or 0)
    if resolution < 8 or resolution & (resolution - 1):
        raise CheckpointError(f"{source}: image resolution {resolution} is not a power of two")
    if int(G.attr("img_channels", 3) or 3) != 3:
        raise CheckpointError(f"{source}: the generator draws {G.attr('img_channels')} channels, not RGB")
    out: dict[str, torch.Tensor] = {}
    # Mapping network.
    n_mlp = 0
    while mapping.child(f"fc{n_mlp}") is not None:
        fc = mapping.child(f"fc{n_mlp}")
        where = f"{source}: mapping.fc{n_mlp}"
        lr = float(fc.attr("lr_multiplier", 0.01))
        if abs(lr - 0.01) > 1e-9:
            raise CheckpointError(f"{where}: learning-rate multiplier {lr}, the reference trainer's is 0.01")
        if fc.attr("activation", "lrelu") != "lrelu":
            raise CheckpointError(f"{where}: activation {fc.attr('activation')!r}, expected lrelu")
        out[f"style.{n_mlp + 1}.weight"] = _need(fc, "weight", where)
        out[f"style.{n_mlp + 1}.bias"] = _need(fc, "bias", where)
        n_mlp += 1
    if n_mlp == 0:
        raise CheckpointError(f"{source}: the mapping network has no layers")
    latent_avg = _need(mapping, "w_avg", f"{source}: mapping")
    # Synthesis blocks b4 .. b{resolution}.
    clamps = set()
    noise_index = 0

    def layer(rec: PersistentObject | None, dst: str, where: str, up: bool) -> None:
        nonlocal noise_index
        if rec is None:
            raise CheckpointError(f"{where} is missing")
        if int(rec.attr("kernel_size", 3)) != 3 or int(rec.attr("up", 1)) != (2 if up else 1):
            raise CheckpointError(f"{where}: kernel {rec.attr('kernel_size')} / up {rec.attr('up')} differ from StyleGAN2's")
        if rec.attr("activation", "lrelu") != "lrelu":
            raise CheckpointError(f"{where}: activation {rec.attr('activation')!r}, expected lrelu")
        _check_filter(rec, where)
        weight = _need(rec, "weight", where)
        out[f"{dst}.conv.weight"] = weight.unsqueeze(0)
        out[f"{dst}.conv.modulation.weight"] = _need(rec.child("affine"), "weight", f"{where}.affine")
        out[f"{dst}.conv.modulation.bias"] = _need(rec.child("affine"), "bias", f"{where}.affine")
        out[f"{dst}.activate.bias"] = _need(rec, "bias", where)
        res = int(rec.attr("resolution"))
        if rec.param("noise_strength") is not None:
            out[f"{dst}.noise.weight"] = _need(rec, "noise_strength", where).reshape(1)
            out[f"noises.noise_{noise_index}"] = _need(rec, "noise_const", where).reshape(1, 1, res, res)
        else:  # use_noise=False: adding zero noise is the same network
            out[f"{dst}.noise.weight"] = torch.zeros(1)
            out[f"noises.noise_{noise_index}"] = torch.zeros(1, 1, res, res)
        if up:  # the reference stores its (fixed) FIR kernels; ADA's is checked equal above
            out[f"{dst}.conv.blur.kernel"] = make_fir_kernel(STYLEGAN2_FIR, gain=4.0)
        noise_index += 1
        clamps.add(rec.attr("conv_clamp"))

    def torgb(rec: PersistentObject | None, dst: str, where: str) -> None:
        if rec is None:
            raise CheckpointError(f"{where} is missing")
        weight = _need(rec, "weight", where)
        if weight.shape[0] != 3 or weight.shape[2:] != (1, 1):
            raise CheckpointError(f"{where}: weight {list(weight.shape)}, expected [3, C, 1, 1]")
        out[f"{dst}.conv.weight"] = weight.unsqueeze(0)
        out[f"{dst}.conv.modulation.weight"] = _need(rec.child("affine"), "weight", f"{where}.affine")
        out[f"{dst}.conv.modulation.bias"] = _need(rec.child("affine"), "bias", f"{where}.affine")
        out[f"{dst}.bias"] = _need(rec, "bias", where).reshape(1, 3, 1, 1)
        if dst != "to_rgb1":
            out[f"{dst}.upsample.kernel"] = make_fir_kernel(STYLEGAN2_FIR, gain=4.0)
        clamps.add(rec.attr("conv_clamp"))

    res, i = 4, 0
    while res <= resolution:
        block = synthesis.child(f"b{res}")
        where = f"{source}: synthesis.b{res}"
        if block is None:
            raise CheckpointError(f"{where} is missing")
        arch = block.attr("architecture", "skip")
        if arch != "skip":
            raise CheckpointError(f"{where}: architecture {arch!r}; only StyleGAN2's 'skip' generator maps exactly "
                                  f"onto the reference network")
        if res == 4:
            out["input.input"] = _need(block, "const", where).unsqueeze(0)
            layer(block.child("conv1"), "conv1", f"{where}.conv1", up=False)
            torgb(block.child("torgb"), "to_rgb1", f"{where}.torgb")
        else:
            _check_filter(block, where)
            layer(block.child("conv0"), f"convs.{2 * i}", f"{where}.conv0", up=True)
            layer(block.child("conv1"), f"convs.{2 * i + 1}", f"{where}.conv1", up=False)
            torgb(block.child("torgb"), f"to_rgbs.{i}", f"{where}.torgb")
            i += 1
        res *= 2
    if len(clamps) > 1:
        raise CheckpointError(f"{source}: layers use different conv_clamp values {sorted(map(str, clamps))}")
    clamp = clamps.pop()
    return out, latent_avg, (float(clamp) if clamp is not None else None)


def _check_filter(rec: PersistentObject, where: str) -> None:
    f = rec.param("resample_filter")
    if f is None:
        return
    expected = torch.tensor(STYLEGAN2_FIR)
    expected = torch.outer(expected, expected)
    if tuple(f.shape) != (4, 4) or not torch.allclose(f.float(), expected / expected.sum(), atol=1e-6):
        raise CheckpointError(f"{where}: resample filter {f.tolist()} is not StyleGAN2's [1, 3, 3, 1]")


