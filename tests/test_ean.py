"""EAN against an equation-by-equation reference of the paper's Eqns 5-9."""
import pytest
import torch
from mmdet.registry import MODELS as MMDET_MODELS
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

import ean_mm  # noqa: F401
from ean_mm.models import EAN


def ean_reference(x, gamma, beta, alpha, delta, groups, eps=1e-5, l2_eps=1e-5,
                  l2_reduction='sum'):
    """Eqns 5-9 written out group by group, channel by channel."""
    n, c, h, w = x.shape
    cg = c // groups
    squares = sum(gamma[i] ** 2 for i in range(cg))
    if l2_reduction == 'mean':
        squares = squares / cg
    omega = [gamma[i] / torch.sqrt(squares + l2_eps) for i in range(cg)]  # Eqn 6
    groups_out = []
    for k in range(groups):  # Grouping
        x_k = x[:, k * cg:(k + 1) * cg]
        channels = []
        for i in range(cg):
            xi = x_k[:, i]
            mu = xi.mean(dim=(1, 2), keepdim=True)
            var = ((xi - mu) ** 2).mean(dim=(1, 2), keepdim=True)
            gn = gamma[i] * (xi - mu) / torch.sqrt(var + eps) + beta[i]  # Eqn 5
            x_tilde = omega[i] * gn  # Eqn 7
            a = 1 / (1 + torch.exp(-(alpha[i] * x_tilde + delta[i])))  # Eqn 8
            channels.append(a * xi)  # Eqn 9
        groups_out.append(torch.stack(channels, dim=1))
    return torch.cat(groups_out, dim=1)  # Aggregation


# the default (the C++ kernel here), its PyTorch-ops fallback, the PyTorch-ops fused path, the
# equation path
IMPLEMENTATIONS = ['auto', 'torch', 'fused', 'reference']


def randomized(layer: EAN) -> EAN:
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn_like(p))
    return layer


@pytest.mark.parametrize('c,g', [(8, 1), (8, 2), (16, 4), (24, 8), (64, 64), (12, 3)])
@pytest.mark.parametrize('l2_reduction', ['sum', 'mean'])
@pytest.mark.parametrize('impl', IMPLEMENTATIONS)
def test_forward_and_gradients_match_reference(c, g, l2_reduction, impl):
    layer = randomized(EAN(c, groups=g, l2_reduction=l2_reduction,
                           implementation=impl)).double()
    x = (torch.randn(2, c, 5, 7, dtype=torch.float64) * 3 + 1).requires_grad_()
    y = layer(x)
    params = [layer.gn.weight, layer.gn.bias, layer.alpha, layer.delta]
    ref_params = [p.detach().clone().requires_grad_() for p in params]
    x_ref = x.detach().clone().requires_grad_()
    y_ref = ean_reference(x_ref, *ref_params, groups=g, l2_reduction=l2_reduction)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)

    upstream = torch.randn_like(y)
    grads = torch.autograd.grad(y, [x] + params, upstream)
    ref_grads = torch.autograd.grad(y_ref, [x_ref] + ref_params, upstream)
    for name, got, want in zip(['x', 'gamma', 'beta', 'alpha', 'delta'], grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10, msg=name)


@pytest.mark.parametrize('impl', IMPLEMENTATIONS)
def test_sum_is_paper_default_and_differs_from_mean(impl):
    x = torch.randn(1, 8, 4, 4, dtype=torch.float64)
    layer = randomized(EAN(8, groups=2, implementation=impl)).double()
    assert layer.l2_reduction == 'sum'
    mean_layer = EAN(8, groups=2, l2_reduction='mean', implementation=impl).double()
    mean_layer.load_state_dict(layer.state_dict())
    # omega differs by sqrt(C/G) = 2 (up to eps), so the outputs differ.
    ratio = mean_layer.l2_weights() / layer.l2_weights()
    torch.testing.assert_close(ratio, torch.full_like(ratio, 2.0), rtol=1e-4, atol=0)
    assert not torch.allclose(layer(x), mean_layer(x))


@pytest.mark.parametrize('impl', IMPLEMENTATIONS)
def test_fresh_layer_halves_input(impl):
    layer = EAN(32, groups=8, implementation=impl)
    assert torch.equal(layer.alpha, torch.zeros(4)) and torch.equal(layer.delta, torch.zeros(4))
    x = torch.randn(3, 32, 6, 6)
    torch.testing.assert_close(layer(x), 0.5 * x)


@pytest.mark.parametrize('impl', IMPLEMENTATIONS)
def test_checkpoint_format(impl):
    layer = EAN(256, groups=64, implementation=impl)
    shapes = {k: tuple(v.shape) for k, v in layer.state_dict().items()}
    assert shapes == {'gn.weight': (4,), 'gn.bias': (4,), 'alpha': (4,), 'delta': (4,)}


@pytest.mark.parametrize('c,g', [(96, 7), (10, 4), (8, 0), (8, -2), (8, 16)])
def test_groups_must_divide_channels(c, g):
    with pytest.raises(ValueError, match=rf'groups={g}.*in_channels={c}'):
        EAN(c, groups=g)


@pytest.mark.parametrize('impl', IMPLEMENTATIONS)
def test_wrong_input_channels(impl):
    with pytest.raises(ValueError, match=r'\(N, 16, H, W\).*\(2, 8, 4, 4\)'):
        EAN(16, groups=4, implementation=impl)(torch.randn(2, 8, 4, 4))
    with pytest.raises(ValueError, match=r'\(N, 16, H, W\).*\(16, 4, 4\)'):
        EAN(16, groups=4, implementation=impl)(torch.randn(16, 4, 4))


def test_builds_by_name_in_both_registries():
    for registry in (MMDET_MODELS, MMPRETRAIN_MODELS):
        layer = registry.build(dict(type='ean_mm.EAN', in_channels=64, groups=8))
        assert isinstance(layer, EAN) and layer.groups == 8
        assert layer.implementation == 'auto'  # the default
        layer = registry.build(dict(type='ean_mm.EAN', in_channels=64, groups=8,
                                    implementation='reference'))
        assert layer.implementation == 'reference'


@pytest.mark.parametrize('shape', [(1, 16, 1, 1), (1, 16, 9, 9), (4, 16, 3, 5)])
@pytest.mark.parametrize('impl', IMPLEMENTATIONS)
def test_zero_variance_input_is_finite(shape, impl):
    layer = randomized(EAN(16, groups=4, implementation=impl))
    for value in (0.0, 3.5, -1e4):
        x = torch.full(shape, value, requires_grad=True)
        y = layer(x)
        y.sum().backward()
        assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()
        assert all(torch.isfinite(p.grad).all() for p in layer.parameters())
        layer.zero_grad()


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
@pytest.mark.parametrize('impl', IMPLEMENTATIONS)
def test_autocast_is_finite_and_close(dtype, impl):
    layer = randomized(EAN(32, groups=8, implementation=impl))
    x = torch.randn(1, 32, 8, 8) * 50
    with torch.autocast('cpu', dtype=dtype):
        y = layer(x.to(dtype))
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y.float(), layer(x), rtol=0.05, atol=0.5)
    with torch.autocast('cpu', dtype=dtype):  # constant input under autocast
        assert torch.isfinite(layer(torch.ones(1, 32, 4, 4, dtype=dtype))).all()


def test_set_ean_implementation_sets_every_layer():
    from ean_mm.models import EANResNet, set_ean_implementation
    model = EANResNet(depth=18)
    layers = [m for m in model.modules() if isinstance(m, EAN)]
    assert len(layers) == 8 and all(m.implementation == 'auto' for m in layers)
    assert set_ean_implementation(model, 'reference', True) == 8
    assert all(m.implementation == 'reference' and m.use_compile for m in layers)
    with pytest.raises(ValueError, match="implementation must be one of"):
        set_ean_implementation(model, 'cuda')
