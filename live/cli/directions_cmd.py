"""`live directions fit` (the matrix A for a generator) and `live edit` (move a face along it)."""

from __future__ import annotations

from dataclasses import dataclass

from loguru import logger

from live.cli.arguments import add_command
from live.directions.adopt import AdoptOptions
from live.directions.fit import FitOptions
from live.options import option


@dataclass
class FitCommand(FitOptions):
    # required; given defaults only because the fields of FitOptions before them have defaults
    generator: str = option("", "generator (path or cached model name)", flags=("-g",), metavar="G", required=True)
    out: str = option("", "where to write the direction matrix", flags=("-o",), metavar="A.pt", required=True)


@dataclass
class AdoptCommand(AdoptOptions):
    # required; given defaults only because the fields of AdoptOptions before them have defaults
    generator: str = option("", "generator the matrix was made for (path or cached model name)", flags=("-g",),
                            metavar="G", required=True)
    directions: str = option("", "the matrix to adopt, e.g. the paper's (vox256-directions)", flags=("-d",),
                             metavar="A_PAPER", required=True)
    out: str = option("", "where to write the adopted matrix", flags=("-o",), metavar="A.pt", required=True)


@dataclass
class EditCommand:
    generator: str = option(help="generator (path or cached model name)", flags=("-g",), metavar="G")
    directions: str = option(help="direction matrix", flags=("-d",), metavar="A.pt")
    out: str = option(help="out.png (source | edit) or, with --sweep, out.mp4 / strip.png", flags=("-o",))
    seed: int = option(0, "source face: a random seed", exclusive="source")
    avatar: str | None = option(None, "source face: an avatar made by `live avatar create`", exclusive="source",
                                metavar="ME.pt")
    truncation: float = option(0.7, "truncation psi of the seed's code")
    set: list = option([], "parameters to set, e.g. --set yaw=20 jaw=3", metavar="NAME=VALUE")
    sweep: str | None = option(None, "sweep one parameter, e.g. --sweep pitch=-10:10 (video or image strip)",
                               metavar="NAME=LO:HI")
    steps: int = option(30, "sweep steps")


def register(sub) -> None:
    p = sub.add_parser("directions", help="fit the direction matrix A for a generator")
    dsub = p.add_subparsers(dest="directions_command", metavar="ACTION", required=True)
    add_command(dsub, "fit", fit, "sample, track and fit A (delta_p -> delta_w) for a generator", FitCommand,
                description="Sample codes, synthesise and track every image, keep those with a face, measure the "
                "parameter ranges and fit A in closed form; optionally refine it by re-synthesis calibration. "
                "Samples are cached and resumed.")
    add_command(dsub, "adopt", adopt, "make another matrix (the paper's, in DECA's parameters) drivable by live's "
                "tracker", AdoptCommand, description="Render the generator moved by the other matrix's directions, "
                "track what our parameters do, fit the map between the two parameter sets (its R^2 per parameter "
                "is printed: near 1 is well reached, near 0 not at all), and write A = A_other M+ in live's format: "
                "`live run` then drives the other matrix's trained directions with your face.")
    from live.cli import directions_train_cmd
    directions_train_cmd.register(dsub)
    add_command(sub, "edit", edit, "edit a face along the directions: set or sweep parameters", EditCommand,
                description="Single-attribute editing as in the paper: synthesise a face (a seed, or an avatar), "
                "track its parameters, and move chosen ones to new values through the direction matrix. Values are "
                "raw: degrees for yaw/pitch/roll, standard deviations for expressions.")


def fit(opts: FitCommand, cfg) -> int:
    from live.directions.fit import fit_for_generator
    from live.model_store import ModelStore
    from live.paths import cache_dir
    from models.checkpoint import load_generator
    G = load_generator(ModelStore().resolve(opts.generator))
    directions = fit_for_generator(G, opts, cache_dir() / "directions")
    directions.save(opts.out)
    r2 = directions.fit_info["held_out_r2"]
    print(f"wrote {opts.out} ({opts.layers} W+ layers, {directions.fit_info['seconds']} s)")
    print(f"  held-out R^2 {r2:.2f}: the share of the face parameters' variation across samples that the latent code "
          f"explains linearly ({'good' if r2 >= 0.5 else 'fair' if r2 >= 0.2 else 'low'}; the paper's VoxCeleb generator "
          f"is expected higher than the small test generator's 0.15-0.2). It bounds how faithfully the directions "
          f"move each parameter; `python -m bench directions -g G -d A` measures the edits themselves.")
    return 0


def adopt(opts: AdoptCommand, cfg) -> int:
    from live.directions.adopt import adopt as adopt_matrix
    from live.directions.adopt import tracked_params
    from live.model_store import ModelStore
    from models.checkpoint import load_generator, weights_hash
    from models.direction_matrix import Directions
    from models.face.shape_model import default_model_path
    from models.weights_io import file_sha256
    store = ModelStore()
    G = load_generator(store.resolve(opts.generator))
    other = Directions.load(store.resolve(opts.directions), require_ours=False)
    other.check_generator(weights_hash(G))
    if other.in_live_space:
        raise ValueError(f"{opts.directions} is already in live's parameters; nothing to adopt")
    measure = tracked_params(G)
    try:
        directions, info = adopt_matrix(G, other, measure, opts)
    finally:
        measure.close()
    directions.generator_sha256 = weights_hash(G)
    directions.face_model_sha256 = file_sha256(default_model_path())
    directions.save(opts.out)
    print(f"wrote {opts.out}: {info['pairs_with_faces']} pairs with faces")
    print("R^2 of each of our parameters from the other matrix's (1: reached exactly, 0: not at all):")
    for name, r2 in info["fit_r2"].items():
        print(f"  {name:<12} {r2:+.2f}")
    return 0


def edit(opts: EditCommand, cfg) -> int:
    from live.avatar.avatar_file import Avatar
    from live.directions.edit import Editor, parse_assignments, source_code, write_edits
    from live.model_store import ModelStore
    from models.checkpoint import load_generator, weights_hash
    from models.direction_matrix import Directions
    if not opts.set and not opts.sweep:
        raise ValueError("nothing to edit: give --set NAME=VALUE ... or --sweep NAME=LO:HI")
    store = ModelStore()
    G = load_generator(store.resolve(opts.generator))
    d = Directions.load(store.resolve(opts.directions))
    d.check_generator(weights_hash(G))
    if opts.avatar:
        avatar = Avatar.load(opts.avatar, G)
        editor = Editor(avatar.generator, d, avatar.w_s[None])
    else:
        editor = Editor(G, d, source_code(G, opts.seed, opts.truncation))
    logger.info("{}", write_edits(editor, parse_assignments(opts.set), opts.sweep, opts.steps, opts.out))
    return 0
