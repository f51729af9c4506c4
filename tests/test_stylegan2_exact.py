"""Exactness against the reference implementation's golden outputs (fixtures README)."""

import pytest
import torch

from tests.conftest import needs_shared

pytestmark = needs_shared
TOL = 2e-4  # max abs error allowed in fp32 on the CPU


def test_mapping_matches_reference(face128, golden):
    with torch.no_grad():
        w = face128.mapping(golden["z"])
    assert (w - golden["w"]).abs().max() <= TOL


def test_w_avg_is_the_stored_latent_avg(face128, golden):
    assert torch.equal(face128.w_avg, golden["latent_avg"])
    assert face128.n_latent == int(golden["n_latent"]) == 12
    assert face128.resolution == 128


@pytest.mark.parametrize("impl", ["grouped", "static"])
def test_synthesis_from_w(face128, golden, impl):
    with torch.no_grad():
        img = face128.synthesize(golden["w"], noise_mode="const", impl=impl)
    assert img.shape == (4, 3, 128, 128)
    assert (img - golden["img_w"]).abs().max() <= TOL


@pytest.mark.parametrize("impl", ["grouped", "static"])
def test_synthesis_from_w_plus_with_style_mixing(face128, golden, impl):
    with torch.no_grad():
        img = face128.synthesize(golden["w_plus"], noise_mode="const", impl=impl)
    assert (img - golden["img_w_plus"]).abs().max() <= TOL


@pytest.mark.parametrize("impl", ["grouped", "static"])
def test_truncation(face128, golden, impl):
    with torch.no_grad():
        img = face128.synthesize(face128.mapping(golden["z"], truncation_psi=0.7), impl=impl)
    assert (img - golden["img_trunc07"]).abs().max() <= TOL


def test_per_layer_codes_matter(face128, golden):
    # Changing one W+ layer must change the image: the layers are wired, not broadcast.
    wp = golden["w_plus"][:1].clone()
    with torch.no_grad():
        a = face128.synthesize(wp)
        wp[:, 7] += 2.0
        b = face128.synthesize(wp)
    assert (a - b).abs().max() > 1e-2


def test_noise_modes(face128, golden):
    w = golden["w"][:1]
    with torch.no_grad():
        const = face128.synthesize(w, noise_mode="const")
        torch.manual_seed(0)
        rand1 = face128.synthesize(w, noise_mode="random")
        torch.manual_seed(1)
        rand2 = face128.synthesize(w, noise_mode="random")
        none = face128.synthesize(w, noise_mode="none")
    assert not torch.allclose(rand1, rand2)
    assert not torch.allclose(const, none)
    with pytest.raises(ValueError, match="noise_mode"):
        face128.synthesize(w, noise_mode="bogus")


def test_wrong_w_plus_shape_fails_at_the_boundary(face128):
    with pytest.raises(AssertionError, match=r"w_plus must be \[N, 12, 512\]"):
        face128.synthesize(torch.zeros(1, 14, 512))
