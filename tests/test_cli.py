"""The `live` command: help everywhere, and each working subcommand end to end."""

import subprocess
import sys

import cv2
import numpy as np
import pytest
import yaml

from live.cli import build_parser, main
from live.cli.run_cmd import parse_seeds
from tests.conftest import needs_shared


def _subcommand_paths(parser, prefix=()):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield prefix + (name,)
                yield from _subcommand_paths(sub, prefix + (name,))


def _parser_at(parser, path):
    for name in path:
        action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        parser = action.choices[name]
    return parser


def test_help_for_every_subcommand(capsys):
    """Every command's --help describes it and lists each of its options with a help text."""
    root = build_parser()
    paths = list(_subcommand_paths(root))
    assert ("run",) in paths and ("models", "convert") in paths and ("config", "show") in paths
    for path in [()] + paths:
        with pytest.raises(SystemExit) as exc:
            main(list(path) + ["--help"])
        assert exc.value.code == 0
        out = " ".join(capsys.readouterr().out.split())
        parser = _parser_at(root, path)
        assert "usage: live" in out and (parser.description or "")[:40] in out, path
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, (path, action.option_strings)
                assert action.option_strings[0] in out, (path, action.option_strings)


def test_help_shows_defaults_from_the_config_dataclasses(capsys):
    """A default is written once, in the dataclass; --help shows that value."""
    from live.config import EngineConfig, RunConfig
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert f"(default: {RunConfig().fps})" in out and f"(default: {EngineConfig().warmup_iters})" in out


def test_a_size_takes_one_value(capsys):
    """--size and --camera-size take one WIDTHxHEIGHT: the help does not suggest several, and two are refused."""
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--size WxH " in out and "--camera-size WxH " in out and "[WxH ...]" not in out
    with pytest.raises(SystemExit) as exc:
        main(["run", "--size", "320x240", "640x480", "--frames", "1"])
    assert exc.value.code == 2 and "unrecognized arguments: 640x480" in capsys.readouterr().err


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "live", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "real-time face puppeteering" in result.stdout


def test_config_show_applies_flags_and_files(tmp_path, capsys):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("engine:\n  warmup_iters: 7\n")
    assert main(["--config", str(cfg_file), "config", "show"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["engine"]["warmup_iters"] == 7


def test_config_init_writes_user_file_once(capsys):
    assert main(["config", "init"]) == 0
    path = capsys.readouterr().out.strip()
    assert "live_home" in path and yaml.safe_load(open(path))["engine"]["backend"] == "auto"
    assert main(["config", "init"]) == 1
    assert main(["config", "init", "--force"]) == 0


def test_bad_config_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("engine:\n  speed: 11\n")
    assert main(["--config", str(bad), "config", "show"]) == 2
    assert "unknown config key 'engine.speed'" in capsys.readouterr().err


def test_parse_seeds():
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    with pytest.raises(ValueError, match="bad seeds"):
        parse_seeds("a-b")


@needs_shared
def test_generate_draws_faces_from_the_fixture(tmp_path, fixture_path):
    out = tmp_path / "grid.png"
    assert main(["generate", "-g", str(fixture_path), "--seeds", "0-3", "--truncation", "0.7", "-o", str(out)]) == 0
    img = cv2.imread(str(out))
    assert img.shape == (256, 256, 3)
    assert img.std() > 20  # a picture, not a flat fill


def test_run_writes_every_frame_to_file_and_null(tmp_path, capsys):
    """Only what holds at any machine speed: how many frames a paced run drops depends on how busy the CPU is."""
    import json
    run = ["run", "-g", "random", "--arch", "fixture128", "--frames", "6", "--size", "160x120"]
    out, stats = tmp_path / "run.mp4", tmp_path / "s.json"
    # --fast: no stage drops a frame (those still in flight when the 6th is written are left), so each sink gets
    # the 6 frames and the file holds exactly those
    assert main(run + ["--fast", "--sink", f"file:{out},null", "--stats", str(stats)]) == 0
    report = json.loads(stats.read_text())
    assert report["written"] == 6 and report["sink_failures"] == []
    assert sum(n for stage, n in report["dropped_by_stage"].items() if stage != "in flight at stop") == 0
    cap = cv2.VideoCapture(str(out))
    ok, frame = cap.read()
    assert ok and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6 and frame.shape == (120, 160, 3)
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(25, abs=0.5)   # the synthetic motion's rate
    err = capsys.readouterr().err
    assert "draws no face" in err and "synthetic motion" in err and "frames in" in err
    # paced, as a live run: however many frames were dropped, the sinks still get the 6 asked, and the file plays
    # at the source's speed: one frame for each source frame from the first written to the last (a dropped one is
    # held), so a busy machine makes it longer, never shorter than the frames written
    paced = tmp_path / "paced.mp4"
    assert main(run + ["--sink", f"file:{paced},null", "--stats", str(stats)]) == 0
    report = json.loads(stats.read_text())
    assert report["written"] == 6 and report["sink_failures"] == []
    sources = [row[0] for row in report["per_frame"]]     # the source frame index of each frame written
    assert int(cv2.VideoCapture(str(paced)).get(cv2.CAP_PROP_FRAME_COUNT)) == sources[-1] - sources[0] + 1, sources


def test_run_unknown_sink_is_a_clear_error(capsys):
    assert main(["run", "-g", "random", "--arch", "fixture128", "--frames", "1", "--sink", "hologram"]) == 2
    assert "unknown sink 'hologram'" in capsys.readouterr().err


def test_the_file_sink_never_overwrites_what_is_not_a_video(tmp_path):
    """`--sink file:me.pt` (an avatar named by mistake) is refused and the file left as it was; a name that is not
    MP4 is refused (the sink writes MP4 whatever the name says); an earlier video of the same name is replaced."""
    from live.io.sink_base import SinkError
    from live.io.sinks import make_sink
    avatar = tmp_path / "me.mp4"
    avatar.write_bytes(b"PK\x03\x04 an avatar, zipped by torch")
    for spec, words in ((f"file:{avatar}", "is not an MP4 video"), (f"file:{tmp_path / 'out.avi'}", "ending in .mp4"),
                        (f"file+driver:{tmp_path / 'me.pt'}", "ending in .mp4"), (f"file:{tmp_path}", "is a folder")):
        with pytest.raises(SinkError, match=words):
            make_sink(spec, 25.0)
    assert avatar.read_bytes() == b"PK\x03\x04 an avatar, zipped by torch"
    video = tmp_path / "take.mp4"
    for _ in range(2):                                  # written, then written again over itself
        sink = make_sink(f"file:{video}", 25.0)
        sink.write(np.zeros((32, 32, 3), np.uint8))
        sink.close()
    assert video.read_bytes()[4:8] == b"ftyp"
