"""`live models list|fetch|import|verify|path|convert|export|info`: weights, the registry and the cache."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from live.cli.arguments import add_command
from live.options import option
from models.atomic_files import write_text_atomic

DESCRIPTION = ("Known weights are listed in a registry (models/registry.yaml, plus registry.yaml in the config "
               "folder); fetched and imported files live in the user cache (models/ under it). A model NAME can be "
               "given wherever a path is asked for, e.g. `live run -g vox256`.")


@dataclass
class FetchCommand:
    names: list = option(help="registered model names", positional=True, metavar="NAME")
    force: bool = option(False, "download again even if the cache has it")


@dataclass
class ImportCommand:
    path: str = option(help="the file to register", positional=True, metavar="PATH")
    name: str | None = option(None, "name to use; none: the file name without extension", flags=("-n",))
    kind: str | None = option(None, "what the file is; none: from the registry or the file",
                              choices=("generator", "encoder", "directions", "identity", "metric"))


@dataclass
class VerifyCommand:
    names: list = option([], "models to check; none: every cached model", positional=True, nargs="*",
                         metavar="NAME")


@dataclass
class NameCommand:
    name: str = option(help="a cached model", positional=True, metavar="NAME")


@dataclass
class ConvertCommand:
    src: str = option(help="reference-trainer checkpoint (.pt) or NVIDIA StyleGAN2-ADA .pkl", positional=True,
                      metavar="IN")
    dst: str = option(help="output .safetensors file", positional=True, metavar="OUT")


@dataclass
class ExportCommand:
    generator: str = option(help="generator file or cached model name", positional=True, metavar="G")
    output: str = option(help="folder to write synthesis.onnx or synthesis.xml/.bin and synthesis.json into",
                         flags=("-o",), metavar="DIR")
    format: str = option("onnx", "onnx (ONNX Runtime, DirectML, CoreML, TensorRT's parser, ...) or openvino (IR: "
                                 ".xml + .bin)", choices=("onnx", "openvino"))
    precision: str = option("fp32", "onnx: fp32, or fp16 for GPU providers; openvino: the weights' storage "
                                    "(fp16 halves the file; the device's precision is chosen when compiled)",
                            choices=("fp32", "fp16"))
    batch: int = option(1, "images per run the graph is built for (static shapes)")


@dataclass
class InfoCommand:
    path: str = option(help="a generator file or cached model name", positional=True, metavar="PATH")


def register(sub) -> None:
    p = sub.add_parser("models", help="get, check, inspect and convert weights (generators, encoders, directions)",
                       description=DESCRIPTION)
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    add_command(msub, "list", listing, "the registry and what is in the local cache")
    add_command(msub, "fetch", fetch, "download a registered model (resumable, verified before it is kept)",
                FetchCommand, description="Download NAME from the registry's URLs (Google Drive included) into the "
                "cache. An interrupted download resumes; the file is kept only after its size, sha256 (where known) "
                "and a load with live's own loaders check out. NVIDIA pickles are converted to safetensors.")
    add_command(msub, "import", import_file, "register a local file after checking it loads", ImportCommand,
                description="Check PATH with live's loaders and record it in the cache index under NAME (the file "
                "stays where it is; NVIDIA pickles are converted into the cache).")
    add_command(msub, "verify", verify, "re-check cached models (sha256 and loading); broken ones are taken out",
                VerifyCommand)
    add_command(msub, "path", path, "print the file of a cached model", NameCommand)
    add_command(msub, "convert", convert, "convert a checkpoint to safetensors (no pickle needed to load it)",
                ConvertCommand, description="Load IN with the safe loader, check it, and write OUT as safetensors.")
    add_command(msub, "export", export, "write the synthesis network as ONNX or OpenVINO IR", ExportCommand,
                description="One static graph, W+ [batch, n_latent, 512] in (name w_plus), image [batch, 3, R, R] "
                "in [-1, 1] out (name image), for runtimes outside live. synthesis.json beside it records the "
                "shapes, the generator's weights hash and its mean W (for truncation).")
    add_command(msub, "info", info, "describe a generator file: architecture, size, weights hash", InfoCommand)


def listing(_, cfg) -> int:
    from live.cli.table import print_table
    from live.model_store import ModelStore
    store = ModelStore()
    rows = [{**r, "size": f"{r['size'] / 1e6:.0f} MB" if r["size"] else ""} for r in store.listing()]
    print_table(f"models (cache: {store.root})", rows,
                [("name", "name"), ("kind", "kind"), ("status", "status"), ("size", "size"), ("description", "what")])
    return 0


def fetch(opts: FetchCommand, cfg) -> int:
    from live.model_store import ModelStore
    store = ModelStore()
    for name in opts.names:
        m = store.fetch(name, force=opts.force)
        print(f"{name}: {m.path}")
    return 0


def import_file(opts: ImportCommand, cfg) -> int:
    from live.model_store import ModelStore
    m = ModelStore().import_file(Path(opts.path), opts.name, opts.kind)
    print(f"{m.name}: {m.summary}")
    print(f"  {m.path}  (sha256 {m.sha256[:16]}...)")
    return 0


def verify(opts: VerifyCommand, cfg) -> int:
    from live.model_store import ModelStore
    results = ModelStore().verify(opts.names or None)
    if not results:
        print("no models in the cache; `live models list` shows what can be fetched")
    for name, ok, message in results:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {message}")
    return 0 if all(ok for _, ok, _ in results) else 1


def path(opts: NameCommand, cfg) -> int:
    from live.model_store import ModelStore
    print(ModelStore().path(opts.name))
    return 0


def convert(opts: ConvertCommand, cfg) -> int:
    from models.checkpoint import load_generator, save_safetensors, weights_hash
    G = load_generator(opts.src)
    dst = save_safetensors(G, opts.dst)
    logger.info("wrote {} ({} px, weights sha256 {})", dst, G.resolution, weights_hash(G)[:16])
    return 0


def info(opts: InfoCommand, cfg) -> int:
    from live.model_store import ModelStore
    from models.checkpoint import load_generator, weights_hash
    G = load_generator(ModelStore().resolve(opts.path))
    n_params = sum(p.numel() for p in G.parameters())
    print(f"file:        {opts.path}")
    print(f"resolution:  {G.resolution} px")
    print(f"channels:    {list(G.arch.channels)} (4 px .. {G.resolution} px)")
    print(f"style dim:   {G.style_dim}, mapping layers: {G.arch.n_mlp}, W+ codes: {G.n_latent}")
    print(f"parameters:  {n_params / 1e6:.2f} M")
    print(f"weights:     sha256 {weights_hash(G)}")
    return 0


def export(opts: ExportCommand, cfg) -> int:
    import json

    import torch

    from live.model_store import ModelStore
    from models.checkpoint import load_generator, weights_hash
    G = load_generator(ModelStore().resolve(opts.generator))
    folder = Path(opts.output)
    dtype = torch.float16 if opts.precision == "fp16" else torch.float32
    if opts.format == "onnx":
        from live.engines.onnx_export import export_onnx
        written = [export_onnx(G, folder / "synthesis.onnx", opts.batch, dtype)]
    else:
        from live.engines.openvino_backend import convert_synthesis, save_ir
        xml = save_ir(convert_synthesis(G, opts.batch), folder / "synthesis.xml", fp16_weights=opts.precision == "fp16")
        written = [xml, xml.with_suffix(".bin")]
    info = {"format": opts.format, "precision": opts.precision, "input": {"name": "w_plus", "shape": [
                opts.batch, G.n_latent, G.style_dim]}, "output": {"name": "image", "shape": [
                opts.batch, 3, G.resolution, G.resolution], "range": [-1, 1]},
            "weights_sha256": weights_hash(G), "w_avg": [round(float(v), 6) for v in G.w_avg.flatten()]}
    write_text_atomic(folder / "synthesis.json", json.dumps(info, indent=1))
    for path in written:
        print(f"{path}  ({path.stat().st_size / 1e6:.1f} MB)")
    print(f"{folder / 'synthesis.json'}  (shapes, weights hash, mean W)")
    return 0
