"""NVIDIA StyleGAN2-ADA pickles: read without running their code, mapped exactly, or refused."""

import pickle

import pytest
import torch

from models import load_generator, save_safetensors
from models.checkpoint import CheckpointError, random_generator
from models.nvidia_pkl import read_network_pickle
from models.stylegan2 import GeneratorArch
from tests import ada_pickles
from tests.ada_pickles import ada_forward, ada_state_from, write_ada_pickle

ARCH = GeneratorArch(resolution=32, channels=(64, 64, 32, 32), style_dim=64, n_mlp=3)


@pytest.fixture(autouse=True)
def _no_calls():
    ada_pickles.CALLS.clear()
    yield
    assert ada_pickles.CALLS == [], "the pickle's embedded code ran"


def _random_ada(tmp_path, clamp=256.0, **kw):
    G = random_generator(ARCH, seed=3)
    # Some layers far from 1 so the clamp matters somewhere: scale a ToRGB bias past +-clamp.
    rec = ada_state_from(G, conv_clamp=clamp, **kw)
    path = tmp_path / "network-snapshot.pkl"
    write_ada_pickle(path, rec)
    return G, rec, path


def test_ada_pickle_loads_exactly_without_running_its_code(tmp_path):
    G, rec, path = _random_ada(tmp_path)
    H = load_generator(path)
    assert H.arch.conv_clamp == 256.0 and H.resolution == 32 and H.arch.n_mlp == 3
    z = torch.randn(3, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = H.synthesize(H.broadcast(H.mapping(z)))
    expected = ada_forward(rec, z)
    assert (ours.double() - expected).abs().max() < 2e-4
    assert torch.equal(H.w_avg, G.w_avg)


def test_conv_clamp_is_applied(tmp_path):
    G, rec, path = _random_ada(tmp_path, clamp=0.05)  # small enough to bite everywhere
    H = load_generator(path)
    z = torch.randn(2, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = H.synthesize(H.broadcast(H.mapping(z)))
        unclamped = G.synthesize(G.broadcast(G.mapping(z)))
    assert (ours.double() - ada_forward(rec, z)).abs().max() < 2e-4
    assert (ours - unclamped).abs().max() > 0.01


def test_ada_pickle_converts_to_safetensors_and_keeps_the_clamp(tmp_path):
    _, _, path = _random_ada(tmp_path, clamp=0.05)
    H = load_generator(path)
    out = save_safetensors(H, tmp_path / "g.safetensors")
    K = load_generator(out)
    assert K.arch.conv_clamp == 0.05
    w = K.broadcast(K.mapping(torch.randn(2, 64)))
    assert torch.equal(K.synthesize(w), H.synthesize(w))


def test_stylegan3_is_refused_with_a_reason(tmp_path):
    _, _, path = _random_ada(tmp_path, stylegan3=True)
    with pytest.raises(CheckpointError, match="StyleGAN3"):
        load_generator(path)


def test_resnet_architecture_is_refused(tmp_path):
    G = random_generator(ARCH, seed=3)
    rec = ada_state_from(G)
    rec.meta["state"]["_modules"]["synthesis"].meta["state"]["_modules"]["b8"].meta["state"]["architecture"] = "resnet"
    write_ada_pickle(tmp_path / "r.pkl", rec)
    with pytest.raises(CheckpointError, match="'resnet'"):
        load_generator(tmp_path / "r.pkl")


def test_foreign_globals_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pkl"
    # A pickle that looks like NVIDIA's (mentions the persistence module early) but calls print.
    with open(path, "wb") as f:
        pickle.dump({"note": "torch_utils.persistence", "G_ema": Evil()}, f, protocol=4)
    with pytest.raises(CheckpointError, match="builtins.print"):
        read_network_pickle(path)
    with pytest.raises(CheckpointError, match="builtins.print"):
        load_generator(path)


def test_truncated_pickle(tmp_path):
    _, _, path = _random_ada(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_generator(path)


def test_the_fake_reconstructor_would_run_code_under_plain_pickle(tmp_path):
    """The guard above is meaningful: unpickling the same file the usual way runs the embedded source."""
    import sys
    _, _, path = _random_ada(tmp_path)
    sys.modules.update(ada_pickles._fake_module())
    try:
        with open(path, "rb") as f:
            pickle.load(f)
    finally:
        sys.modules.pop("torch_utils.persistence", None)
        sys.modules.pop("torch_utils", None)
    assert "module source executed" in ada_pickles.CALLS
    ada_pickles.CALLS.clear()


def test_models_import_converts_a_pickle(tmp_path, capsys):
    from live.cli import main
    _, _, path = _random_ada(tmp_path)
    assert main(["models", "import", str(path), "--name", "ada"]) == 0
    assert main(["models", "path", "ada"]) == 0
    converted = capsys.readouterr().out.strip().splitlines()[-1]
    assert converted.endswith("ada.safetensors")
    with open(converted, "rb") as f:
        assert b"torch_utils" not in f.read()
    H, K = load_generator(path), load_generator(converted)
    w = H.broadcast(H.mapping(torch.randn(1, 64)))
    assert torch.equal(H.synthesize(w), K.synthesize(w))
    assert main(["models", "verify", "ada"]) == 0
