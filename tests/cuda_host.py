"""The project's CUDA kernel sources, run on the CPU: each source string is compiled as C++ with g++.

A small prelude defines what CUDA provides (`__global__`, `__device__`, `blockIdx`/`blockDim`/
`threadIdx`/`gridDim`, `min`/`max`, the <cmath> functions), so the exact text that CuPy compiles
on a GPU builds here too. A RawKernel becomes an `extern "C"` launcher that runs the grid as loops
(every block, every thread: set the indices, call the kernel); an ElementwiseKernel becomes a loop
over the n elements with its parameters bound the way CuPy binds them (inputs `const T &x =
_raw_x[i]`, outputs `T &y = _raw_y[i]`, scalars by value). `HostRawKernel` and
`HostElementwiseKernel` take the arguments CuPy's take (NumPy arrays standing for device arrays),
and check what CuPy does not: the C type of every argument (a Python int would go to CuPy as a
64-bit integer, a float as a double), contiguity, and writes past either end of a buffer (every
array runs in a copy with guard bytes around it).

g++ runs with -O2 and -ffp-contract=off (no fused multiply-add), no -ffast-math: IEEE float and
double arithmetic in source order. Builds are cached by a hash of the source, the flags and the
compiler, in $LIVE_CUDA_HOST_CACHE (default: a folder in the temp dir). Not emulated: shared
memory, __syncthreads and warp functions (threads run one after another).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CXX = os.environ.get("CXX", "g++")
FLAGS = ("-O2", "-shared", "-fPIC", "-std=c++17", "-ffp-contract=off", "-fno-fast-math", "-w")
THREADS = 256  # the block size every launch in kernels/ uses
GUARD = 64     # bytes of guard before and after each array

PRELUDE = r"""
// cuda_host prelude: what nvcc / NVRTC provide to kernel source, for a host build.
#include <cmath>
#include <math.h>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __restrict__
#define __launch_bounds__(...)
struct uint3 { unsigned int x, y, z; };
struct dim3 { unsigned int x, y, z; };
static thread_local uint3 threadIdx, blockIdx;
static thread_local dim3 blockDim, gridDim;
static const int warpSize = 32;
template <class T> inline T __ldg(const T* p) { return *p; }
// CUDA's min/max: overloads for every arithmetic pair; floating point ones are fminf/fmaxf
template <class A, class B> inline typename std::common_type<A, B>::type min(A a, B b) {
  typedef typename std::common_type<A, B>::type C;
  if constexpr (std::is_floating_point<C>::value) return std::fmin((C)a, (C)b);
  else return (C)b < (C)a ? (C)b : (C)a;
}
template <class A, class B> inline typename std::common_type<A, B>::type max(A a, B b) {
  typedef typename std::common_type<A, B>::type C;
  if constexpr (std::is_floating_point<C>::value) return std::fmax((C)a, (C)b);
  else return (C)a < (C)b ? (C)b : (C)a;
}
"""

# C scalar type -> (ctypes type, NumPy dtype)
C_TYPES = {
    "float": (ctypes.c_float, np.float32), "double": (ctypes.c_double, np.float64),
    "int": (ctypes.c_int32, np.int32), "unsigned int": (ctypes.c_uint32, np.uint32),
    "unsigned": (ctypes.c_uint32, np.uint32), "char": (ctypes.c_int8, np.int8),
    "signed char": (ctypes.c_int8, np.int8), "unsigned char": (ctypes.c_uint8, np.uint8),
    "short": (ctypes.c_int16, np.int16), "unsigned short": (ctypes.c_uint16, np.uint16),
    "long long": (ctypes.c_int64, np.int64), "unsigned long long": (ctypes.c_uint64, np.uint64),
    "size_t": (ctypes.c_size_t, np.uintp), "bool": (ctypes.c_bool, np.bool_),
}
KERNEL_RE = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)', re.DOTALL)


class HostCompileError(RuntimeError):
    pass


class OutOfBoundsWrite(AssertionError):
    """A kernel wrote into the guard bytes around an array."""


def compiler_missing() -> str | None:
    """Why the kernels cannot be built here, or None when they can."""
    return None if shutil.which(CXX) else f"needs a C++ compiler ({CXX}) to run the CUDA sources on the CPU"


@functools.cache
def _compiler_id() -> str:
    return subprocess.run([CXX, "--version"], capture_output=True, text=True, check=False).stdout.split("\n")[0]


def cache_dir() -> Path:
    default = Path(tempfile.gettempdir()) / f"live-cuda-host-{os.getuid()}"
    return Path(os.environ.get("LIVE_CUDA_HOST_CACHE", default))


_loaded: dict[str, ctypes.CDLL] = {}


def build(unit: str, stem: str) -> ctypes.CDLL:
    """The translation unit `unit` compiled and loaded; once per distinct unit, flags and compiler."""
    key = hashlib.sha256("\n".join([unit, " ".join(FLAGS), _compiler_id()]).encode()).hexdigest()[:20]
    if key in _loaded:
        return _loaded[key]
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    lib = folder / f"{stem}-{key}.so"
    if not lib.is_file():
        src = folder / f"{stem}-{key}.cpp"
        src.write_text(unit)
        tmp = folder / f"{stem}-{key}.{os.getpid()}.tmp.so"
        result = subprocess.run([CXX, *FLAGS, "-o", str(tmp), str(src)], capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            raise HostCompileError(f"{CXX} failed on {src}:\n{result.stderr}")
        os.replace(tmp, lib)  # atomic: parallel sessions never load half a file
    _loaded[key] = ctypes.CDLL(str(lib))
    return _loaded[key]


@dataclass(frozen=True)
class Param:
    name: str
    decl: str        # the C declaration text without the name ("const float* __restrict__")
    base: str        # the scalar type ("float")
    pointer: bool
    const: bool      # const pointee (pointers) / const value

    @property
    def ctype(self):
        return ctypes.c_void_p if self.pointer else C_TYPES[self.base][0]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(C_TYPES[self.base][1])


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*|/\*.*?\*/", " ", text, flags=re.DOTALL)


def parse_params(text: str) -> list[Param]:
    params = []
    for raw in _strip_comments(text).split(","):
        raw = " ".join(raw.split())
        m = re.fullmatch(r"(.*?)\s*\b(\w+)", raw)
        if not m or not m.group(1):
            raise ValueError(f"cannot read the kernel parameter {raw!r}")
        decl, name = m.group(1), m.group(2)
        words = decl.replace("*", " * ").replace("__restrict__", " ").split()
        pointer = words.count("*")
        const = "const" in words[: words.index("*")] if pointer else "const" in words
        base = " ".join(w for w in words if w not in ("const", "*", "volatile"))
        if pointer > 1 or base not in C_TYPES:
            raise ValueError(f"unsupported kernel parameter type {decl!r} ({name})")
        params.append(Param(name, decl, base, bool(pointer), const))
    return params


def kernel_signatures(source: str) -> dict[str, list[Param]]:
    """name -> parameters, for every `extern "C" __global__ void NAME(...)` in the source."""
    return {m.group(1): parse_params(m.group(2)) for m in KERNEL_RE.finditer(_strip_comments(source))}


class _Guarded:
    """NumPy arrays run in copies with GUARD bytes of a pattern before and after; `finish` checks the
    guards and copies the written arrays back. The same array passed twice shares one copy."""

    def __init__(self):
        self.buffers: dict[int, tuple[np.ndarray, np.ndarray, bool, str]] = {}

    def pointer(self, arr: np.ndarray, writable: bool, label: str) -> int:
        key = id(arr)
        if key in self.buffers:
            buf, _, w, _ = self.buffers[key]
            self.buffers[key] = (buf, arr, w or writable, label)
            return buf.ctypes.data + GUARD
        for buf, other, _, name in self.buffers.values():
            if np.may_share_memory(arr, other):
                raise ValueError(f"{label} overlaps {name} without being the same array; not supported")
        buf = np.empty(arr.nbytes + 2 * GUARD, np.uint8)
        buf[:GUARD] = buf[-GUARD:] = 0xA5
        buf[GUARD:GUARD + arr.nbytes] = arr.reshape(-1).view(np.uint8)
        self.buffers[key] = (buf, arr, writable, label)
        return buf.ctypes.data + GUARD

    def finish(self, what: str) -> None:
        for buf, arr, writable, label in self.buffers.values():
            for side, guard in (("before", buf[:GUARD]), ("after", buf[-GUARD:])):
                bad = np.flatnonzero(guard != 0xA5)
                if bad.size:
                    at = (bad - GUARD) if side == "before" else bad
                    raise OutOfBoundsWrite(f"{what} wrote {side} the end of {label} "
                                           f"(bytes {at.min()}..{at.max()} {side} it, {arr.nbytes} bytes long)")
            if writable:
                arr.reshape(-1).view(np.uint8)[:] = buf[GUARD:GUARD + arr.nbytes]


def _array(arg, dtype: np.dtype, label: str) -> np.ndarray:
    if not isinstance(arg, np.ndarray):
        raise TypeError(f"{label}: an array is needed, got {type(arg).__name__}")
    if arg.dtype != dtype:
        raise TypeError(f"{label}: {dtype} array needed, got {arg.dtype}")
    if not arg.flags.c_contiguous:
        raise ValueError(f"{label}: the kernel indexes a C-contiguous array; got strides {arg.strides}")
    return arg


def _dims(d) -> tuple[int, int, int]:
    d = (d,) if isinstance(d, (int, np.integer)) else tuple(d)
    if not 1 <= len(d) <= 3 or any(int(v) < 1 for v in d):
        raise ValueError(f"grid and block are 1 to 3 positive sizes, got {d}")
    return tuple(int(v) for v in d) + (1,) * (3 - len(d))


class HostRawKernel:
    """cupy.RawKernel(code, name) on the CPU: kern(grid, block, args), args in the kernel's order."""

    def __init__(self, code: str, name: str):
        sigs = kernel_signatures(code)
        if name not in sigs:
            raise ValueError(f'no extern "C" __global__ void {name}(...) in the source (found {list(sigs)})')
        self.code, self.name, self.params = code, name, sigs[name]

    def unit(self) -> str:
        decls = ", ".join(f"{p.decl} a{k}" for k, p in enumerate(self.params))
        args = ", ".join(f"a{k}" for k in range(len(self.params)))
        return f"""{PRELUDE}
#line 1 "{self.name}.cu"
{self.code}
#line 1 "{self.name}_launch.cpp"
extern "C" void {self.name}__host_launch(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                                         unsigned bz, int reverse, {decls}) {{
  gridDim = dim3{{gx, gy, gz}};
  blockDim = dim3{{bx, by, bz}};
  const unsigned long long blocks = 1ull * gx * gy * gz, threads = 1ull * bx * by * bz;
  for (unsigned long long b = 0; b < blocks; ++b) {{
    const unsigned long long bb = reverse ? blocks - 1 - b : b;
    blockIdx = uint3{{(unsigned)(bb % gx), (unsigned)(bb / gx % gy), (unsigned)(bb / gx / gy)}};
    for (unsigned long long t = 0; t < threads; ++t) {{
      const unsigned long long tt = reverse ? threads - 1 - t : t;
      threadIdx = uint3{{(unsigned)(tt % bx), (unsigned)(tt / bx % by), (unsigned)(tt / bx / by)}};
      {self.name}({args});
    }}
  }}
}}
"""

    @functools.cached_property
    def _fn(self):
        fn = getattr(build(self.unit(), self.name), f"{self.name}__host_launch")
        fn.argtypes = [ctypes.c_uint] * 6 + [ctypes.c_int] + [p.ctype for p in self.params]
        fn.restype = None
        return fn

    def __call__(self, grid, block, args, reverse: bool = False) -> None:
        if len(args) != len(self.params):
            raise TypeError(f"{self.name} takes {len(self.params)} arguments "
                            f"({', '.join(p.name for p in self.params)}), got {len(args)}")
        guarded, values = _Guarded(), []
        for p, a in zip(self.params, args):
            label = f"{p.name} ({p.decl})"
            if p.pointer:
                values.append(guarded.pointer(_array(a, p.dtype, label), not p.const, label))
            elif not (isinstance(a, np.generic) and a.dtype == p.dtype):
                raise TypeError(f"{label}: pass np.{p.dtype.name}, got {type(a).__name__} "
                                f"(CuPy sends a Python int as int64 and a float as double)")
            else:
                values.append(a.item())
        self._fn(*_dims(grid), *_dims(block), int(reverse), *values)
        guarded.finish(self.name)


CUPY_TYPES = {"float32": "float", "float64": "double", "int32": "int", "uint32": "unsigned int",
              "int8": "signed char", "uint8": "unsigned char", "int16": "short", "uint16": "unsigned short",
              "int64": "long long", "uint64": "unsigned long long", "bool": "bool"}
TYPE_VARS = {"float": np.float32, "double": np.float64}  # what a type variable (T) is instantiated as


def _cupy_params(text: str) -> list[tuple[str, str]]:
    out = []
    for part in (p.split() for p in text.split(",") if p.strip()):
        if len(part) != 2:
            raise ValueError(f"unsupported ElementwiseKernel parameter {' '.join(part)!r} (raw is not handled)")
        out.append((part[0], part[1]))
    return out


class HostElementwiseKernel:
    """cupy.ElementwiseKernel(in_params, out_params, operation, name) on the CPU: kern(*ins, *outs).

    Arrays are broadcast as CuPy does (outputs must already have the full shape); a scalar input is
    passed by value; a type variable (T) takes the dtype of its arrays: float32 or float64. Each
    distinct choice of which inputs are scalars compiles once, for T = float and T = double."""

    def __init__(self, in_params: str, out_params: str, operation: str, name: str):
        self.ins, self.outs = _cupy_params(in_params), _cupy_params(out_params)
        self.operation, self.name = operation, name
        self.type_vars = sorted({t for t, _ in self.ins + self.outs if t not in CUPY_TYPES})
        if len(self.type_vars) > 1:
            raise ValueError(f"one type variable is handled, got {self.type_vars}")
        self._fns: dict = {}

    def unit(self, scalars: tuple[bool, ...]) -> str:
        parts = [PRELUDE]
        for ctype in TYPE_VARS:
            decls, binds = ["ptrdiff_t _n"], []
            for (t, n), scalar in zip(self.ins, scalars):
                c = CUPY_TYPES.get(t, t)
                decls.append(f"const {c} {n}" if scalar else f"const {c}* _raw_{n}")
                if not scalar:
                    binds.append(f"const {c} &{n} = _raw_{n}[_ind.get()];")
            for t, n in self.outs:
                decls.append(f"{CUPY_TYPES.get(t, t)}* _raw_{n}")
                binds.append(f"{CUPY_TYPES.get(t, t)} &{n} = _raw_{n}[_ind.get()];")
            typedefs = "".join(f"typedef {ctype} {v};" for v in self.type_vars)
            parts.append(f"""
namespace {self.name}_{ctype.replace(' ', '_')} {{
{typedefs}
struct Indexer {{ ptrdiff_t n, i; ptrdiff_t size() const {{ return n; }} void set(ptrdiff_t k) {{ i = k; }}
                  ptrdiff_t get() const {{ return i; }} }};
extern "C" void {self.name}__host_{ctype.replace(' ', '_')}({', '.join(decls)}) {{
  Indexer _ind{{_n, 0}};
  for (ptrdiff_t i = 0; i < _ind.size(); ++i) {{
    _ind.set(i);
    {' '.join(binds)}
#line 1 "{self.name}.body"
{self.operation};
  }}
}}
}}""")
        return "\n".join(parts)

    def _fn(self, scalars: tuple[bool, ...], ctype: str):
        if (scalars, ctype) in self._fns:
            return self._fns[scalars, ctype]
        fn = getattr(build(self.unit(scalars), self.name), f"{self.name}__host_{ctype.replace(' ', '_')}")
        fn.argtypes = [ctypes.c_ssize_t] + [
            C_TYPES[CUPY_TYPES.get(t, ctype)][0] if s else ctypes.c_void_p
            for (t, _), s in zip(self.ins, scalars)] + [ctypes.c_void_p] * len(self.outs)
        fn.restype = None
        self._fns[scalars, ctype] = fn
        return fn

    def __call__(self, *args):
        if len(args) not in (len(self.ins), len(self.ins) + len(self.outs)):
            raise TypeError(f"{self.name} takes {len(self.ins)} inputs (+ {len(self.outs)} outputs), got {len(args)}")
        ins, outs = args[:len(self.ins)], list(args[len(self.ins):])
        scalars = tuple(not isinstance(a, np.ndarray) for a in ins)
        typed = [a.dtype for (t, _), a in zip(self.ins + self.outs, list(ins) + outs)
                 if t in self.type_vars and isinstance(a, np.ndarray)]
        if typed and any(d != typed[0] for d in typed):
            raise TypeError(f"{self.name}: the arrays of type {self.type_vars} differ: {typed}")
        tdtype = np.dtype(typed[0]) if typed else np.dtype(np.float64)
        ctype = {np.dtype(v): k for k, v in TYPE_VARS.items()}.get(tdtype)
        if self.type_vars and ctype is None:
            raise TypeError(f"{self.name}: {self.type_vars[0]} as {tdtype} is not instantiated here")
        ctype = ctype or "double"

        def dtype_of(t: str) -> np.dtype:
            return tdtype if t in self.type_vars else np.dtype(t)

        shape = np.broadcast_shapes(*(a.shape for a in list(ins) + outs if isinstance(a, np.ndarray)))
        if not outs:
            outs = [np.empty(shape, dtype_of(t)) for t, _ in self.outs]
        guarded, values = _Guarded(), []
        for (t, n), a, scalar in zip(self.ins, ins, scalars):
            if scalar:
                values.append(np.asarray(a, dtype_of(t)).item())
            elif any(a is o for o in outs) and a.shape == shape and a.dtype == dtype_of(t):
                values.append(guarded.pointer(a, False, f"{self.name} input {n}"))  # CuPy: no copy, aliased
            else:  # CuPy copies an input that overlaps an output; here every input is a copy
                a = np.array(np.broadcast_to(a.astype(dtype_of(t), copy=False), shape), order="C")
                values.append(guarded.pointer(a, False, f"{self.name} input {n}"))
        for (t, n), a in zip(self.outs, outs):
            label = f"{self.name} output {n}"
            if a.shape != shape:
                raise ValueError(f"{label}: shape {a.shape}, the broadcast shape is {shape}")
            values.append(guarded.pointer(_array(a, dtype_of(t), label), True, label))
        self._fn(scalars, ctype)(int(np.prod(shape)), *values)
        guarded.finish(self.name)
        return outs[0] if len(outs) == 1 else tuple(outs)


# ---- the launches of kernels/, as their `impl == "cupy"` branches make them ----

def grid_for(n: int, threads: int = THREADS) -> tuple[int]:
    return ((n + threads - 1) // threads,)


def latent_blend_host(w_s, w_avg, A, bias, dp, strength, psi: float = 1.0, source: str | None = None,
                      out=None, reverse: bool = False) -> np.ndarray:
    """kernels.latent_blend's CuPy launch, with `source` (default: the module's CUDA_SOURCE).
    `out` defaults to NaN so that an element the kernel never writes shows."""
    from kernels import latent_blend as mod
    kern = HostRawKernel(source or mod.CUDA_SOURCE, "live_latent_blend")
    arrays = [np.ascontiguousarray(np.asarray(x, dtype=np.float32)) for x in (w_s, w_avg, A, bias, dp, strength)]
    L, S, Ls, P = mod._check(*arrays)
    out = np.full((L, S), np.nan, np.float32) if out is None else out
    kern(grid_for(L * S), (THREADS,), (*arrays, np.float32(psi), np.int32(L), np.int32(S), np.int32(Ls),
                                       np.int32(P), out), reverse=reverse)
    return out


def postprocess_host(img, out_h: int, out_w: int, fill=(0, 0, 0), source: str | None = None, out=None,
                     reverse: bool = False) -> np.ndarray:
    """kernels.postprocess's CuPy launch for a [3, H, W] float image, with `source` (default: the
    module's CUDA_SOURCE); pass a pre-filled `out` to see pixels the kernel leaves alone."""
    from kernels import postprocess as mod
    kern = HostRawKernel(source or mod.CUDA_SOURCE, "live_postprocess")
    H, W = int(img.shape[1]), int(img.shape[2])
    x0, y0, cw, ch = mod.content_rect(H, W, out_h, out_w)
    src = np.ascontiguousarray(np.asarray(img, dtype=np.float32))
    out = np.empty((out_h, out_w, 3), np.uint8) if out is None else out
    kern(grid_for(out_h * out_w), (THREADS,),
         (src, np.int32(H), np.int32(W), np.int32(out_h), np.int32(out_w), np.int32(x0), np.int32(y0),
          np.int32(cw), np.int32(ch), np.uint8(fill[0]), np.uint8(fill[1]), np.uint8(fill[2]), out), reverse=reverse)
    return out


def one_euro_host(body: str | None = None) -> HostElementwiseKernel:
    """kernels.one_euro's ElementwiseKernel; call it as the module does:
    kern(x, float(dt), min_cutoff, beta, float(d_cutoff), x_hat, dx_hat, out)."""
    from kernels import one_euro as mod
    return HostElementwiseKernel(mod.CUPY_IN_PARAMS, mod.CUPY_OUT_PARAMS, body or mod.CUPY_BODY, "live_one_euro_step")


def fake_cupy() -> types.ModuleType:
    """A stand-in `cupy` module: NumPy arrays as device arrays, the host kernels as CuPy's."""
    fake = types.ModuleType("cupy")
    fake.__getattr__ = lambda name: getattr(np, name)  # asarray, empty, float32, broadcast_to, ...
    fake.RawKernel, fake.ElementwiseKernel, fake.asnumpy = HostRawKernel, HostElementwiseKernel, np.asarray
    return fake


@contextlib.contextmanager
def cupy_branch_on_host(*modules):
    """Run the `impl="cupy"` branch of kernel modules (their own launch code) on the host kernels:
    `cupy` imports as fake_cupy() and the modules' resolve_impl lets "cupy" through. Restored on exit."""
    saved_cupy = sys.modules.get("cupy")
    saved = [(m, m.resolve_impl) for m in modules]
    sys.modules["cupy"] = fake_cupy()
    for m, orig in saved:
        m.resolve_impl = lambda impl, sample, _orig=orig: impl if impl == "cupy" else _orig(impl, sample)
        m._cupy_kernel.cache_clear()
    try:
        yield
    finally:
        for m, orig in saved:
            m.resolve_impl = orig
            m._cupy_kernel.cache_clear()
        if saved_cupy is None:
            sys.modules.pop("cupy", None)
        else:
            sys.modules["cupy"] = saved_cupy
