"""The local model cache: what is fetched or imported, where it is, and whether it checks out.

Files live in `<cache>/models/` (the platform's user cache dir, or $LIVE_HOME/cache). An index
(`index.yaml` there) records each usable file: its name, kind, path, size, sha256, origin and
when it was last verified. A file enters the index only after it loaded with the project's own
loader; `verify` re-checks and takes a failing file out (a cached file is renamed `*.invalid`,
an imported one is left where the user keeps it), so nothing broken ever looks usable.

NVIDIA pickles are converted on the way in: the cache keeps the safetensors conversion (no
pickle needed to load it again) next to the original, which the registry's sha256 refers to.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml
from loguru import logger

from live.paths import cache_dir, config_dir
from models.atomic_files import write_text_atomic
from models.download import download
from models.errors import first_line
from models.registry import ModelEntry, load_registry
from models.weights_io import file_sha256 as sha256_file

INDEX = "index.yaml"


class ModelStoreError(RuntimeError):
    """A model that cannot be found, fetched, imported or verified; the message says what to do."""


@dataclass
class StoredModel:
    name: str
    kind: str
    path: str             # the file the loaders use (a conversion for NVIDIA pickles)
    size: int
    sha256: str           # of `original` (what the registry's sha256 describes)
    origin: str           # URL or the imported path
    verified: str         # ISO time of the last successful check
    original: str = ""    # the downloaded/imported file, where it differs from `path`
    summary: str = ""     # one line from the check: architecture, resolution


def check_file(path: Path, kind: str, entry: ModelEntry | None = None) -> str:
    """Load `path` as `kind` with the project's loaders; return a one-line summary or raise ValueError."""
    if kind == "generator":
        from models import load_generator
        G = load_generator(path)
        if entry is not None and entry.resolution and G.resolution != entry.resolution:
            raise ValueError(f"a {G.resolution} px generator, the registry says {entry.resolution} px")
        if entry is not None and entry.channel_multiplier:
            from models.stylegan2 import GeneratorArch
            std = GeneratorArch.standard(G.resolution, entry.channel_multiplier, style_dim=G.style_dim)
            if tuple(G.arch.channels) != std.channels:
                raise ValueError(f"channels {list(G.arch.channels)}, the registry's channel multiplier "
                                 f"{entry.channel_multiplier} means {list(std.channels)}")
        clamp = f", conv clamp {G.arch.conv_clamp:g}" if G.arch.conv_clamp else ""
        return f"StyleGAN2 generator, {G.resolution} px, channels {list(G.arch.channels)}{clamp}"
    if kind == "directions":
        from models.direction_matrix import Directions
        d = Directions.load(path, require_ours=False)
        own = "fitted by live" if d.generator_sha256 else "the paper's format, no parameter ranges or generator hash"
        return f"direction matrix, {d.n_params} parameters -> {d.num_layers_shift} x {d.shift_dim} W+ shift ({own})"
    if kind == "encoder":
        from models.e4e import check_e4e_file
        return check_e4e_file(path)
    if kind == "identity":
        from models.identity.arcface import build_arcface
        build_arcface(path)
        return "ArcFace IR-SE-50 identity network (512-d embeddings)"
    if kind == "metric":
        return check_torchscript(path)
    raise ValueError(f"unknown kind {kind!r}")


def check_torchscript(path: Path) -> str:
    """A TorchScript network (the metrics' detectors: Inception for FID, VGG16 for LPIPS, I3D for FVD).
    TorchScript archives hold their code as TorchScript, run by torch's interpreter; no Python is unpickled."""
    import torch
    try:
        net = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:
        raise ValueError(f"not a TorchScript network ({first_line(e, 200)})") from None
    n = sum(p.numel() for p in net.parameters())
    return f"TorchScript network, {n / 1e6:.1f} M parameters"


class ModelStore:
    def __init__(self, root: Path | None = None, registry: dict[str, ModelEntry] | None = None):
        self.root = Path(root) if root is not None else cache_dir() / "models"
        self.registry = registry if registry is not None else load_registry(config_dir() / "registry.yaml")

    # -- index -----------------------------------------------------------------------------------
    def _index_path(self) -> Path:
        return self.root / INDEX

    def index(self) -> dict[str, StoredModel]:
        p = self._index_path()
        if not p.is_file():
            return {}
        try:
            data = yaml.safe_load(p.read_text()) or {}
            return {name: StoredModel(name=name, **{k: v for k, v in d.items() if k != "name"})
                    for name, d in data.items()}
        except (yaml.YAMLError, TypeError, AttributeError) as e:
            raise ModelStoreError(f"{p}: the model index is damaged ({e}). Delete it and run "
                                  f"`live models verify` to rebuild it from the files.") from None

    def _write_index(self, index: dict[str, StoredModel]) -> None:
        write_text_atomic(self._index_path(), yaml.safe_dump({n: {k: v for k, v in asdict(m).items() if k != "name"}
                                                              for n, m in sorted(index.items())}, sort_keys=False))

    def _record(self, model: StoredModel) -> None:
        index = self.index()
        index[model.name] = model
        self._write_index(index)

    def _forget(self, name: str) -> None:
        index = self.index()
        if index.pop(name, None) is not None:
            self._write_index(index)

    # -- queries ---------------------------------------------------------------------------------
    def entry(self, name: str) -> ModelEntry:
        if name not in self.registry:
            known = ", ".join(sorted(self.registry)) or "none"
            raise ModelStoreError(f"no model named {name!r} in the registry (known: {known}). "
                                  f"`live models list` shows them; `live models import PATH --name {name}` adds a file.")
        return self.registry[name]

    def path(self, name: str) -> Path:
        """The usable file of a fetched or imported model."""
        stored = self.index().get(name)
        if stored is None:
            hint = (f"run `live models fetch {name}`" if name in self.registry
                    else f"run `live models import PATH --name {name}`")
            raise ModelStoreError(f"model {name!r} is not in the local cache: {hint}.")
        p = Path(stored.path)
        if not p.is_file():
            raise ModelStoreError(f"model {name!r}: its file {p} is gone. Fetch or import it again.")
        return p

    def resolve(self, name_or_path: str) -> Path:
        """A path as it is, or the file of a cached model of that name."""
        p = Path(name_or_path).expanduser()
        if p.exists() or os.sep in name_or_path or p.suffix:
            return p
        return self.path(name_or_path)

    def listing(self) -> list[dict]:
        index = self.index()
        rows = []
        for name in sorted(set(self.registry) | set(index)):
            e, m = self.registry.get(name), index.get(name)
            rows.append({"name": name, "kind": (e.kind if e else m.kind),
                         "description": e.description if e else f"imported from {m.origin}",
                         "status": "ready" if m and Path(m.path).is_file() else ("missing file" if m else "not fetched"),
                         "path": m.path if m else "", "size": m.size if m else (e.size if e else None)})
        return rows

    # -- fetch / import / verify -----------------------------------------------------------------
    def fetch(self, name: str, force: bool = False, progress: bool = True) -> StoredModel:
        entry = self.entry(name)
        current = self.index().get(name)
        if current is not None and Path(current.path).is_file() and not force:
            logger.info("{} is already in the cache: {} (use --force to download it again)", name, current.path)
            return current
        if not entry.urls:
            raise ModelStoreError(f"{name}: the registry gives no download URL; get the file from {entry.source or 'its publisher'} "
                                  f"and run `live models import PATH --name {name}`.")
        dest = self.root / entry.file
        summary = {}

        def verify(part: Path) -> None:
            summary["text"] = self._check_and_convert(part, entry, dest)

        fetched = download(list(entry.urls), dest, name=name, size=entry.size, sha256=entry.sha256,
                           verify=verify, progress=progress)
        usable = self._converted_path(dest) if entry.format == "nvidia-pkl" else dest
        model = StoredModel(name=name, kind=entry.kind, path=str(usable), size=fetched.size, sha256=fetched.sha256,
                            origin=fetched.url, verified=_now(), original=str(dest) if usable != dest else "",
                            summary=summary.get("text", ""))
        self._record(model)
        if entry.sha256 is None:
            logger.warning("{}: the registry has no sha256 for this file; it loaded and is kept, sha256 {}",
                           name, fetched.sha256)
        logger.info("{}: {} -> {}", name, model.summary, usable)
        return model

    def _converted_path(self, original: Path) -> Path:
        return original.with_suffix(".safetensors")

    def _check_and_convert(self, path: Path, entry: ModelEntry, final: Path) -> str:
        """Check `path` loads as the entry's kind; NVIDIA pickles are converted next to `final`."""
        text = check_file(path, entry.kind, entry)
        if entry.format == "nvidia-pkl":
            from models import load_generator, save_safetensors
            save_safetensors(load_generator(path), self._converted_path(final),
                             extra_meta={"converted_from": final.name, "registry_name": entry.name})
        return text

    def import_file(self, path: Path, name: str | None = None, kind: str | None = None) -> StoredModel:
        path = Path(path).expanduser().resolve()
        if not path.is_file():
            raise ModelStoreError(f"{path}: no such file.")
        name = name or path.stem
        entry = self.registry.get(name)
        kind = kind or (entry.kind if entry else None) or _guess_kind(path)
        try:
            summary = check_file(path, kind, entry)
        except Exception as e:
            raise ModelStoreError(f"{path} does not load as a {kind}: {e}") from None
        digest = sha256_file(path)
        if entry is not None and entry.sha256 and digest != entry.sha256:
            raise ModelStoreError(f"{path}: sha256 {digest} differs from the registry's {entry.sha256} for {name!r}: "
                                  f"a different file. Import it under another --name.")
        usable, original = path, ""
        from models.checkpoint import detect_format
        from models.nvidia_pkl import is_nvidia_pickle
        if kind == "generator" and detect_format(path) == "legacy-pickle" and is_nvidia_pickle(path):
            from models import load_generator, save_safetensors
            usable = self.root / f"{name}.safetensors"
            self.root.mkdir(parents=True, exist_ok=True)
            save_safetensors(load_generator(path), usable, extra_meta={"converted_from": str(path)})
            original = str(path)
            logger.info("converted the NVIDIA pickle to {} (loads without any pickle)", usable)
        model = StoredModel(name=name, kind=kind, path=str(usable), size=path.stat().st_size, sha256=digest,
                            origin=str(path), verified=_now(), original=original, summary=summary)
        self._record(model)
        return model

    def verify(self, names: list[str] | None = None) -> list[tuple[str, bool, str]]:
        """Re-check models (all in the index by default): (name, ok, message) for each."""
        index = self.index()
        results = []
        for name in names or sorted(index):
            m = index.get(name)
            if m is None:
                results.append((name, False, f"not in the local cache; run `live models fetch {name}`"))
                continue
            entry = self.registry.get(name)
            original = Path(m.original or m.path)
            try:
                if not Path(m.path).is_file() or not original.is_file():
                    raise ValueError(f"file missing: {m.path if not Path(m.path).is_file() else original}")
                digest = sha256_file(original)
                expected = entry.sha256 if entry is not None and entry.sha256 and m.origin.startswith("http") else m.sha256
                if digest != expected:
                    raise ValueError(f"sha256 {digest[:16]}... differs from the expected {expected[:16]}...: "
                                     f"the file changed or is damaged")
                summary = check_file(Path(m.path), m.kind, entry)
            except Exception as e:
                self._forget(name)
                cached = self.root in Path(m.path).resolve().parents
                if cached:
                    for p in {Path(m.path), original}:
                        if p.is_file():
                            p.replace(p.with_name(p.name + ".invalid"))
                fix = f"`live models fetch {name} --force`" if name in self.registry else f"`live models import PATH --name {name}`"
                results.append((name, False, f"{e}; removed from the cache index"
                                + (" and renamed *.invalid" if cached else "") + f". Run {fix}."))
                continue
            m.verified, m.summary = _now(), summary
            self._record(m)
            results.append((name, True, summary))
        return results


def _guess_kind(path: Path) -> str:
    from models.checkpoint import detect_format
    if detect_format(path) == "safetensors" or path.suffix == ".pkl":
        return "generator"
    try:
        from models.checkpoint import safe_torch_load
        obj = safe_torch_load(path, mmap=True)
    except Exception:
        return "generator"  # the generator loader gives the clearest error
    if isinstance(obj, dict) and "A_matrix" in obj:
        return "directions"
    if isinstance(obj, dict) and ("e" in obj or "encoder" in obj) and "g_ema" not in obj:
        return "encoder"
    return "generator"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()

