"""The config tree: documented defaults, YAML files, overrides, clear errors."""

import dataclasses

import pytest
import yaml

from live.config import ConfigError, LiveConfig
from live.config_files import load_config, to_dict, to_yaml


def _all_fields(node, prefix=""):
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if dataclasses.is_dataclass(value):
            yield from _all_fields(value, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f


def test_every_leaf_is_documented():
    for key, f in _all_fields(LiveConfig()):
        assert f.metadata.get("help"), f"{key} has no help text"


def test_documented_yaml_parses_back_to_the_defaults(tmp_path):
    text = to_yaml(LiveConfig())
    assert "# synthesis backend" in text
    shown = yaml.safe_load(text)
    assert shown["run"].pop("output_size") == "512x512" and shown["run"].pop("camera_size") == "640x480"
    defaults = to_dict(LiveConfig())
    del defaults["run"]["output_size"], defaults["run"]["camera_size"]
    assert shown == defaults
    (tmp_path / "shown.yaml").write_text(text)
    assert load_config(tmp_path / "shown.yaml") == LiveConfig()


def test_a_size_in_a_config_file_is_written_as_the_flag_takes_it(tmp_path):
    """`run.output_size: 320x240` (as --size takes it) and the list form both load; anything else names the key."""
    path = tmp_path / "sizes.yaml"
    path.write_text("run:\n  output_size: 320x240\n  camera_size: [1280, 720]\n")
    cfg = load_config(path)
    assert cfg.run.output_size == ["320", "240"] and cfg.run.camera_size == ["1280", "720"]
    assert "  output_size: 320x240\n" in to_yaml(cfg) and "  camera_size: 1280x720\n" in to_yaml(cfg)
    path.write_text("run:\n  output_size: big\n")
    with pytest.raises(ConfigError, match="run.output_size: expected a size like 640x480, got 'big'"):
        load_config(path)


def test_file_then_overrides(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("engine:\n  backend: eager\n  batch: 2\nrun:\n  sinks: ['null', 'file:a.mp4']\n")
    cfg = load_config(path, overrides={"engine.batch": "4", "generator.truncation": 0.7})
    assert cfg.engine.backend == "eager"
    assert cfg.engine.batch == 4
    assert cfg.generator.truncation == 0.7
    assert cfg.run.sinks == ["null", "file:a.mp4"]


def test_shown_config_is_a_valid_config_file(tmp_path):
    cfg = load_config(overrides={"engine.precision": "fp16"})
    path = tmp_path / "shown.yaml"
    path.write_text(to_yaml(cfg))
    assert load_config(path) == cfg


@pytest.mark.parametrize("text,message", [
    ("engine:\n  backnd: eager\n", "unknown config key 'engine.backnd'; valid keys here: backend"),
    ("engine:\n  batch: two\n", "engine.batch: expected int"),
    ("engine:\n  batch: 1.5\n", "engine.batch: expected an integer"),
    ("engine:\n  cuda_graph: maybe\n", "engine.cuda_graph: expected true or false"),
    ("engine: [1, 2]\n", "engine: expected a mapping"),
    ("engine: {backend: eager\n", "not valid YAML"),
])
def test_bad_files_name_the_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(path)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.yaml")


def test_a_config_file_value_outside_an_option_s_choices_is_refused_at_load(tmp_path):
    """As the command line refuses `--gaze sideways`, so does a config file, naming the key and the choices
    (it used to load and run, the value ignored or failing later)."""
    from live.config_files import load_config
    from live.options import ConfigError
    bad = tmp_path / "bad.yaml"
    bad.write_text("run:\n  gaze: sideways\n")
    with pytest.raises(ConfigError, match=r"run\.gaze: 'sideways' is not one of follow, camera"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"engine\.backend: 'magic' is not one of"):
        load_config(overrides={"engine.backend": "magic"})
    assert load_config(overrides={"run.gaze": "camera"}).run.gaze == "camera"
    bad.write_text("run:\n  mouth: painted\n")
    with pytest.raises(ConfigError, match=r"run\.mouth: 'painted' is not one of driver, drawn"):
        load_config(bad)
    assert load_config().run.mouth == "driver" and load_config(overrides={"run.mouth": "drawn"}).run.mouth == "drawn"
