"""The fast FIR ops equal the reference upfirdn2d."""

import torch

from models.ops import blur2d, make_fir_kernel, upfirdn2d_ref, upsample2d


def test_fir_kernel_normalised_and_gain():
    k = make_fir_kernel((1, 3, 3, 1), gain=4.0)
    assert k.shape == (4, 4)
    assert torch.isclose(k.sum(), torch.tensor(4.0))
    assert torch.equal(k, k.flip(0)) and torch.equal(k, k.t())


def test_upsample_fast_equals_reference():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 7, 9)
    k = make_fir_kernel((1, 3, 3, 1), gain=4.0)
    ref = upsample2d(x, k, impl="ref")
    fast = upsample2d(x, k, impl="fast")
    assert ref.shape == fast.shape == (2, 5, 14, 18)
    assert (ref - fast).abs().max() < 1e-5


def test_upsample_of_constant_is_constant():
    # The FIR upsampler with gain 4 preserves a constant image away from the borders.
    x = torch.full((1, 1, 8, 8), 3.0)
    out = upsample2d(x, make_fir_kernel((1, 3, 3, 1), gain=4.0))
    assert torch.allclose(out[:, :, 2:-2, 2:-2], torch.full_like(out[:, :, 2:-2, 2:-2], 3.0), atol=1e-5)


def test_asymmetric_kernel_is_convolved_not_correlated():
    # A one-tap shift kernel must move content the way a true convolution does.
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1.0
    k = torch.zeros(3, 3)
    k[2, 2] = 1.0  # convolution with this kernel shifts by +1 after the (1, 1) padding
    out = upfirdn2d_ref(x, k, pad=(1, 1))
    assert out[0, 0, 3, 3] == 1.0 and out.sum() == 1.0


def test_blur_symmetric_padding_matches_reference():
    torch.manual_seed(1)
    x = torch.randn(1, 3, 10, 10)
    k = make_fir_kernel((1, 3, 3, 1), gain=4.0)
    assert (blur2d(x, k, (1, 1)) - upfirdn2d_ref(x, k, pad=(1, 1))).abs().max() < 1e-5
