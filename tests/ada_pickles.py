"""Write StyleGAN2-ADA-style network pickles for tests, and run that network independently.

NVIDIA's pickles store networks as `torch_utils.persistence._reconstruct_persistent_obj(meta)`
with the module's source code inside meta. `write_ada_pickle` produces the same structure:
its reconstructor, if anything ever called it, would record the call and run the embedded
source (which records that it ran): tests assert neither happened.

`ada_forward` is the StyleGAN2-ADA synthesis written from its own equations (weights without
gain and demodulated, ToRGB gain on the styles, bias + lrelu * sqrt 2 then clamp, FIR up-
sampling by zero insertion), on the ADA-named tensors: an independent check of the mapping
of names and parameterisation, not a copy of models/.
"""

from __future__ import annotations

import math
import pickle
import sys
import types

import torch
import torch.nn.functional as F

CALLS: list = []
EVIL_SOURCE = "import tests.ada_pickles as m\nm.CALLS.append('module source executed')\n"


def _reconstruct_persistent_obj(meta):  # what NVIDIA's code would do: run meta['module_src']
    CALLS.append("reconstructor called")
    exec(meta["module_src"], {})


class Record:
    def __init__(self, class_name: str, params: dict, buffers: dict | None = None, modules: dict | None = None,
                 **attrs):
        self.meta = {"type": "class", "version": 4, "module_src": EVIL_SOURCE, "class_name": class_name,
                     "state": {"training": False, "_parameters": dict(params), "_buffers": dict(buffers or {}),
                               "_modules": dict(modules or {}), "init_args": (), "init_kwargs": dict(attrs), **attrs}}


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj):
        if isinstance(obj, Record):
            return _reconstruct_persistent_obj, (obj.meta,)
        return NotImplemented


def _fake_module():
    pkg = types.ModuleType("torch_utils")
    mod = types.ModuleType("torch_utils.persistence")
    mod._reconstruct_persistent_obj = _reconstruct_persistent_obj
    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    pkg.persistence = mod
    return {"torch_utils": pkg, "torch_utils.persistence": mod}


FIR = torch.tensor([1.0, 3.0, 3.0, 1.0])
FIR2 = torch.outer(FIR, FIR) / torch.outer(FIR, FIR).sum()


def ada_state_from(G, conv_clamp: float | None = 256.0, stylegan3: bool = False) -> Record:
    """An ADA generator record holding G's weights in ADA's names and parameterisation."""
    sd = {k: v.detach().clone() for k, v in G.state_dict().items()}
    syn = "synthesis."
    fcs = {}
    for i in range(G.arch.n_mlp):
        fcs[f"fc{i}"] = Record("FullyConnectedLayer", {"weight": sd[f"style.{i + 1}.weight"],
                                                       "bias": sd[f"style.{i + 1}.bias"]},
                               lr_multiplier=0.01, activation="lrelu")
    mapping = Record("MappingNetwork", {}, {"w_avg": sd["w_avg"]}, fcs, num_layers=G.arch.n_mlp)

    def affine(prefix):
        return Record("FullyConnectedLayer", {"weight": sd[prefix + "conv.modulation.weight"],
                                              "bias": sd[prefix + "conv.modulation.bias"]}, activation="linear")

    def layer(prefix, noise_key, res, up):
        return Record("SynthesisLayer", {"weight": sd[prefix + "conv.weight"][0], "bias": sd[prefix + "activate.bias"],
                                         "noise_strength": sd[prefix + "noise.weight"][0]},
                      {"noise_const": sd[syn + "noises." + noise_key][0, 0], "resample_filter": FIR2.clone()},
                      {"affine": affine(prefix)}, resolution=res, up=2 if up else 1, kernel_size=3,
                      activation="lrelu", conv_clamp=conv_clamp)

    def torgb(prefix):
        return Record("ToRGBLayer", {"weight": sd[prefix + "conv.weight"][0], "bias": sd[prefix + "bias"].flatten()},
                      {}, {"affine": affine(prefix)}, conv_clamp=conv_clamp)

    blocks = {"b4": Record("SynthesisBlock", {"const": sd[syn + "input.input"][0]}, {"resample_filter": FIR2.clone()},
                           {"conv1": layer(syn + "conv1.", "noise_0", 4, False), "torgb": torgb(syn + "to_rgb1.")},
                           resolution=4, architecture="skip")}
    res = 8
    for i in range(G.arch.log_size - 2):
        blocks[f"b{res}"] = Record(
            "SynthesisBlock", {}, {"resample_filter": FIR2.clone()},
            {"conv0": layer(f"{syn}convs.{2 * i}.", f"noise_{2 * i + 1}", res, True),
             "conv1": layer(f"{syn}convs.{2 * i + 1}.", f"noise_{2 * i + 2}", res, False),
             "torgb": torgb(f"{syn}to_rgbs.{i}.")}, resolution=res, architecture="skip")
        res *= 2
    if stylegan3:
        blocks = {"input": Record("SynthesisInput", {}, {"freqs": torch.randn(512, 2)})}
    synthesis = Record("SynthesisNetwork", {}, {}, blocks, img_resolution=G.resolution)
    return Record("Generator", {}, {}, {"synthesis": synthesis, "mapping": mapping}, z_dim=G.style_dim, c_dim=0,
                  w_dim=G.style_dim, img_resolution=G.resolution, img_channels=3)


def write_ada_pickle(path, G_record: Record, extra: dict | None = None) -> None:
    saved = {k: sys.modules.get(k) for k in ("torch_utils", "torch_utils.persistence")}
    sys.modules.update(_fake_module())
    try:
        with open(path, "wb") as f:
            _Pickler(f, protocol=4).dump({"G": G_record, "D": Record("Discriminator", {"x": torch.zeros(3)}),
                                          "G_ema": G_record, "training_set_kwargs": {"resolution": 128},
                                          **(extra or {})})
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def _fc(x, weight, bias, lr=1.0, act=True):
    x = F.linear(x, weight * (lr / math.sqrt(weight.shape[1])), bias * lr)
    return F.leaky_relu(x, 0.2) * math.sqrt(2) if act else x


def _upfirdn_up2(x, pad0, pad1):
    n, c, h, w = x.shape
    up = torch.zeros(n, c, h * 2, w * 2, dtype=x.dtype)
    up[:, :, ::2, ::2] = x
    up = F.pad(up, [pad0, pad1, pad0, pad1])
    k = (FIR2 * 4).to(x.dtype).flip([0, 1])[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(up, k, groups=c)


def _fir(x, pad0, pad1, gain):
    c = x.shape[1]
    x = F.pad(x, [pad0, pad1, pad0, pad1])
    k = (FIR2 * gain).to(x.dtype).flip([0, 1])[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, k, groups=c)


def ada_forward(rec: Record, z: torch.Tensor) -> torch.Tensor:
    """Image for z from an ADA generator record (W broadcast, constant noise), double precision."""
    st = lambda r: {**r.meta["state"]["_parameters"], **r.meta["state"]["_buffers"]}  # noqa: E731
    mods = lambda r: r.meta["state"]["_modules"]  # noqa: E731
    mapping, synthesis = mods(rec)["mapping"], mods(rec)["synthesis"]
    x = z.double()
    x = x * (x.square().mean(1, keepdim=True) + 1e-8).rsqrt()
    for i in range(len(mods(mapping))):
        p = st(mods(mapping)[f"fc{i}"])
        x = _fc(x, p["weight"].double(), p["bias"].double(), lr=0.01)
    w = x

    def layer(r, x):
        p, a = st(r), st(mods(r)["affine"])
        clamp = r.meta["state"]["conv_clamp"]
        styles = _fc(w, a["weight"].double(), a["bias"].double(), act=False)
        weight = p["weight"].double()[None] * styles[:, None, :, None, None]
        weight = weight * (weight.square().sum([2, 3, 4], keepdim=True) + 1e-8).rsqrt()
        out = []
        for b in range(x.shape[0]):
            if r.meta["state"]["up"] == 2:
                # transposed conv = zero insertion + full correlation with the flipped kernel
                xb = x[b:b + 1]
                n, c, h, wd = xb.shape
                zi = torch.zeros(1, c, 2 * h - 1, 2 * wd - 1, dtype=xb.dtype)
                zi[:, :, ::2, ::2] = xb
                y = F.conv2d(F.pad(zi, [2, 2, 2, 2]), weight[b].flip([2, 3]))
                out.append(_fir(y, 1, 1, 4.0))
            else:
                out.append(F.conv2d(x[b:b + 1], weight[b], padding=1))
        y = torch.cat(out)
        y = y + p["noise_const"].double() * p["noise_strength"].double()
        y = F.leaky_relu(y + p["bias"].double().view(1, -1, 1, 1), 0.2) * math.sqrt(2)
        return y.clamp(-clamp, clamp) if clamp is not None else y

    def torgb(r, x):
        p, a = st(r), st(mods(r)["affine"])
        clamp = r.meta["state"]["conv_clamp"]
        styles = _fc(w, a["weight"].double(), a["bias"].double(), act=False) / math.sqrt(x.shape[1])
        weight = p["weight"].double()[None] * styles[:, None, :, None, None]
        y = torch.cat([F.conv2d(x[b:b + 1], weight[b]) for b in range(x.shape[0])])
        y = y + p["bias"].double().view(1, -1, 1, 1)
        return y.clamp(-clamp, clamp) if clamp is not None else y

    blocks = mods(synthesis)
    b4 = blocks["b4"]
    x = st(b4)["const"].double()[None].repeat(z.shape[0], 1, 1, 1)
    x = layer(mods(b4)["conv1"], x)
    img = torgb(mods(b4)["torgb"], x)
    res = 8
    while f"b{res}" in blocks:
        blk = mods(blocks[f"b{res}"])
        x = layer(blk["conv0"], x)
        x = layer(blk["conv1"], x)
        img = _upfirdn_up2(img, 2, 1) + torgb(blk["torgb"], x)
        res *= 2
    return img
