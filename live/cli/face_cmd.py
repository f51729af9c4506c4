"""`live track`, `live calibrate`, `live face-model build`: the face parameters, on their own."""

from __future__ import annotations

from dataclasses import dataclass

from loguru import logger

from live.cli.arguments import add_command
from live.options import option


@dataclass
class TrackCommand:
    source: str = option(help="0 (camera), clip.mp4 or photo.jpg", positional=True, metavar="SOURCE")
    out: str | None = option(None, "per-frame parameters as CSV (`live run --source CSV` replays them)", metavar="CSV")
    overlay: str | None = option(None, "video with the tracking drawn on it", metavar="MP4")
    frames: int | None = option(None, "stop after N frames; none: the whole source", metavar="N")


@dataclass
class CalibrateCommand:
    source: str = option("0", "camera index, clip.mp4 or photo.jpg")
    seconds: float = option(2.0, "length of the still stretch")
    timeout: float = option(20.0, "give up after this many seconds of video")
    name: str = option("default", "profile name")


@dataclass
class FaceModelBuildCommand:
    out: str = option("models/data/face_model.npz", "output .npz", flags=("-o",))
    media: str = option("../shared/media", "folder with the clips")
    clips: list = option([], "clip file names; none: the five test clips", metavar="CLIP")


def register(sub) -> None:
    add_command(sub, "track", track, "track a face: per-frame parameters as CSV and an overlay video", TrackCommand,
                sections=("tracking", "smoothing"),
                description="Track the face in SOURCE (camera index, video or image) and write the 15 parameters "
                "per frame (yaw, pitch, roll, jaw and 11 expression coefficients) to CSV, and/or a video with the "
                "mesh, head-pose axes and expression bars. --no-smoothing gives the raw per-frame fit.")
    add_command(sub, "calibrate", calibrate, "record your neutral face as a calibration profile", CalibrateCommand,
                sections=("tracking",),
                description="Look for a still, neutral face (mouth closed, eyes open, head still) for --seconds, "
                "and store its parameters and landmark template as a named profile. `live run --profile NAME` "
                "drives the avatar relative to it.")
    p = sub.add_parser("face-model", help="build the 3D face shape model from footage")
    fsub = p.add_subparsers(dest="face_model_command", metavar="ACTION", required=True)
    add_command(fsub, "build", build_face_model, "track clips and build the shape model (reproducible)",
                FaceModelBuildCommand, description="Track every frame of the clips, align them, and build the mean "
                "shape, identity and expression bases, rigidity weights and parameter ranges. The project ships the "
                "result as models/data/face_model.npz.")


def track(opts: TrackCommand, cfg) -> int:
    from live.tracking.track_source import track as track_source
    if not opts.out and not opts.overlay:
        logger.warning("neither --out nor --overlay given: tracking only, results are not saved")
    track_source(cfg, opts.source, opts.out, opts.overlay, opts.frames)
    return 0


def calibrate(opts: CalibrateCommand, cfg) -> int:
    from live.tracking.calibrate import calibrate as calibrate_from
    profile, path = calibrate_from(cfg, opts.source, opts.seconds, opts.timeout, opts.name)
    print(f"profile {profile.name!r} written to {path}")
    print(f"  from {profile.frames} still frames of {profile.source}")
    for name, value in profile.neutral_named().items():
        print(f"  {name:<12} {value:+8.3f}")
    from calibration.neutral import askew_neutral
    from live.pipeline.motion import WINK_FROM
    askew = askew_neutral(profile.neutral, uneven_eyes=WINK_FROM)
    if askew:
        logger.warning("this profile was taken with {}: an avatar driven with it will look askew while you face the "
                       "camera. Face the camera, eyes open, and run `live calibrate` again", " and ".join(askew))
    return 0


def build_face_model(opts: FaceModelBuildCommand, cfg) -> int:
    from live.tracking.clips import DEFAULT_CLIPS, build_from_footage
    build_from_footage(opts.media, tuple(opts.clips or DEFAULT_CLIPS), opts.out)
    return 0
