"""Full-size configurations build, round-trip through the checkpoint format, and synthesise."""

import pytest
import torch

from models import STANDARD_ARCHS, GeneratorArch, load_generator, random_generator
from models.checkpoint import infer_arch, save_reference_checkpoint, to_reference_keys


def test_standard_widths():
    assert STANDARD_ARCHS["vox256"].channels == (512, 512, 512, 512, 256, 128, 64)
    assert STANDARD_ARCHS["256-cm2"].channels == (512, 512, 512, 512, 512, 256, 128)
    assert STANDARD_ARCHS["1024-cm2"].channels == (512, 512, 512, 512, 512, 256, 128, 64, 32)
    assert STANDARD_ARCHS["1024-cm2"].n_latent == 18
    assert STANDARD_ARCHS["vox256"].n_latent == 14


@pytest.mark.parametrize("name,params_m", [("256-cm1", 24.77), ("256-cm2", 30.03),
                                           pytest.param("1024-cm2", 30.37, marks=pytest.mark.slow)])
def test_full_size_configs_roundtrip(tmp_path, name, params_m):
    arch = STANDARD_ARCHS[name]
    G = random_generator(arch, seed=3)
    n = sum(p.numel() for p in G.parameters()) / 1e6
    assert abs(n - params_m) < 0.05, f"{name}: {n:.2f} M parameters"
    assert infer_arch(to_reference_keys(G.state_dict())) == arch
    path = save_reference_checkpoint(G, tmp_path / f"{name}.pt")
    G2 = load_generator(path)
    assert G2.arch == arch
    for (k, a), b in zip(G.state_dict().items(), G2.state_dict().values()):
        assert torch.equal(a, b), k
    w = G2.broadcast(G2.mapping(torch.randn(1, 512)))
    with torch.no_grad():
        img = G2.synthesize(w, impl="static")
    assert img.shape == (1, 3, arch.resolution, arch.resolution)
    assert torch.isfinite(img).all()


def test_any_channel_widths_are_inferred(tmp_path):
    arch = GeneratorArch(resolution=64, channels=(96, 80, 64, 48, 32), style_dim=128, n_mlp=4)
    G = random_generator(arch)
    G2 = load_generator(save_reference_checkpoint(G, tmp_path / "odd.pt"))
    assert G2.arch == arch
    with torch.no_grad():
        a = G.synthesize(G.broadcast(G.w_avg[None]))
        b = G2.synthesize(G2.broadcast(G2.w_avg[None]))
    assert torch.equal(a, b)


def test_bad_arch_is_rejected():
    with pytest.raises(ValueError, match="power of two"):
        GeneratorArch(resolution=100, channels=(512,) * 5)
    with pytest.raises(ValueError, match="channel widths"):
        GeneratorArch(resolution=64, channels=(512, 512))
