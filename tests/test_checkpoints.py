"""Loading real checkpoints safely; clear errors for everything that is not one."""

import argparse
import os
import pickle

import pytest
import torch

from live.cli import main
from models import CheckpointError, load_generator, save_safetensors, weights_hash
from models.atomic_files import is_partial
from models.checkpoint import read_reference_state, save_reference_checkpoint
from tests.conftest import needs_shared

pytestmark = needs_shared


@pytest.fixture(scope="module")
def fixture_state(fixture_path):
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(fixture_path, map_location="cpu", weights_only=True)


def test_bare_g_ema_state_dict_loads(tmp_path, fixture_state, face128):
    path = tmp_path / "bare.pt"
    torch.save(fixture_state["g_ema"], path)
    G = load_generator(path)  # no latent_avg: estimated from mapped samples
    assert G.arch == face128.arch
    assert (G.w_avg - face128.w_avg).abs().mean() < 0.05


def test_truncated_file(tmp_path, fixture_path):
    data = fixture_path.read_bytes()
    path = tmp_path / "truncated.pt"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_generator(path)


def test_random_bytes_and_missing_file(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(os.urandom(4096).replace(b"PK", b"xx").replace(b"\x80", b"\x00"))
    with pytest.raises(CheckpointError, match="unrecognised file content"):
        load_generator(path)
    with pytest.raises(CheckpointError, match="no such file"):
        load_generator(tmp_path / "absent.pt")


def test_foreign_network_is_named(tmp_path):
    path = tmp_path / "resnet_like.pt"
    torch.save({"state_dict": torch.nn.Linear(4, 4).state_dict(), "epoch": 3}, path)
    with pytest.raises(CheckpointError, match=r"no 'g_ema' generator.*state_dict, epoch.*Expected a StyleGAN2"):
        load_generator(path)


def test_e4e_style_checkpoint_is_not_a_generator(tmp_path):
    path = tmp_path / "encoder.pt"
    torch.save({"e": {"input_layer.0.weight": torch.zeros(64, 3, 3, 3)}}, path)
    with pytest.raises(CheckpointError, match="no 'g_ema'"):
        load_generator(path)


class Payload:
    """Stands for arbitrary pickled code: weights_only loading must refuse it."""

    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/live_pwned",))


def test_pickled_code_is_refused_not_run(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": {}, "x": Payload()}, path)
    if os.path.exists("/tmp/live_pwned"):
        os.remove("/tmp/live_pwned")
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_generator(path)
    assert not os.path.exists("/tmp/live_pwned")
    legacy = tmp_path / "legacy.pkl"
    legacy.write_bytes(pickle.dumps(Payload(), protocol=2))
    with pytest.raises(CheckpointError):
        load_generator(legacy)
    assert not os.path.exists("/tmp/live_pwned")


def test_missing_key_is_named(tmp_path, fixture_state):
    state = dict(fixture_state["g_ema"])
    del state["to_rgbs.2.conv.weight"]
    path = tmp_path / "missing.pt"
    torch.save({"g_ema": state}, path)
    with pytest.raises(CheckpointError, match=r"missing 1 tensors.*to_rgbs\.2\.conv\.weight"):
        load_generator(path)


def test_wrong_shape_is_named(tmp_path, fixture_state):
    state = dict(fixture_state["g_ema"])
    state["convs.3.conv.modulation.weight"] = torch.zeros(256, 256)
    path = tmp_path / "shape.pt"
    torch.save({"g_ema": state}, path)
    with pytest.raises(CheckpointError, match=r"wrong shape.*convs\.3\.conv\.modulation\.weight.*\[256, 512\]"):
        load_generator(path)


def test_unexpected_key_is_named(tmp_path, fixture_state):
    state = {**fixture_state["g_ema"], "extra_head.weight": torch.zeros(3)}
    path = tmp_path / "extra.pt"
    torch.save({"g_ema": state}, path)
    with pytest.raises(CheckpointError, match="unexpected tensors.*extra_head.weight"):
        load_generator(path)


def test_nan_weights_are_refused(tmp_path, fixture_state):
    state = dict(fixture_state["g_ema"])
    state["convs.0.conv.weight"] = state["convs.0.conv.weight"].clone()
    state["convs.0.conv.weight"][0, 0, 0, 0, 0] = float("nan")
    path = tmp_path / "nan.pt"
    torch.save({"g_ema": state}, path)
    with pytest.raises(CheckpointError, match="NaN or Inf"):
        load_generator(path)


def test_full_training_checkpoint_with_g_and_d_loads(tmp_path, fixture_state, face128):
    # Real checkpoints also carry g, d and optimiser states; only g_ema is used.
    ckpt = {**fixture_state, "g": fixture_state["g_ema"], "d": {"convs.0.0.weight": torch.zeros(1)},
            "g_optim": {"state": {}, "param_groups": [{"lr": 0.002}]}}
    path = tmp_path / "full.pt"
    torch.save(ckpt, path)
    assert weights_hash(load_generator(path)) == weights_hash(face128)


def test_safetensors_roundtrip_is_exact(tmp_path, face128, golden):
    path = save_safetensors(face128, tmp_path / "face128.safetensors")
    assert path.read_bytes()[8:9] == b"{"
    G = load_generator(path)
    assert weights_hash(G) == weights_hash(face128)
    with torch.no_grad():
        assert torch.equal(G.synthesize(golden["w_plus"]), face128.synthesize(golden["w_plus"]))


def test_truncated_and_foreign_safetensors(tmp_path, face128):
    from safetensors.torch import save_file
    good = save_safetensors(face128, tmp_path / "g.safetensors").read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_generator(cut)
    other = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(3)}, str(other), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="not a generator written by `live models convert`"):
        load_generator(other)


def test_reference_checkpoint_writer_roundtrip(tmp_path, face128):
    path = save_reference_checkpoint(face128, tmp_path / "ref.pt")
    state, latent_avg = read_reference_state(path)
    assert set(state) == set(torch.load(path, weights_only=False)["g_ema"])
    assert torch.equal(latent_avg, face128.w_avg)


def test_cli_convert_and_info(tmp_path, fixture_path, capsys):
    out = tmp_path / "face128.safetensors"
    assert main(["models", "convert", str(fixture_path), str(out)]) == 0
    assert out.is_file() and not [p for p in tmp_path.iterdir() if is_partial(p)]
    assert main(["models", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "128 px" in text and "9.96 M" in text


def test_cli_bad_checkpoint_is_an_error_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    assert main(["models", "info", str(bad)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_first_line_of_an_error():
    from models.errors import first_line
    assert first_line(RuntimeError("no kernel\nfor this op\n...")) == "no kernel"
    assert first_line(RuntimeError("\n  bad build  \ndetails")) == "bad build"
    assert first_line(RuntimeError()) == "RuntimeError"          # `str(e).splitlines()[0]` raised IndexError here
    assert first_line(ValueError("x" * 500)) == "x" * 300 and len(first_line(ValueError("x" * 500), None)) == 500
    # cut at a sentence's end, else between words, never mid-word
    assert first_line(ValueError("The archive is cut short at its end. " + "More words here " * 30), 100) == \
        "The archive is cut short at its end."
    assert first_line(ValueError("a long line " * 40), 50) == "a long line a long line a long line a long line a ..."
