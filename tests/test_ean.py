"""EAN against an equation-by-equation reference of the paper's Eqns 5-9, and its two other
weight normalisations against the EAN authors' released module."""
import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS as MMDET_MODELS
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

import ean_mm  # noqa: F401
from ean_mm.models import EAN

OMEGAS = ['l2', 'l2_mean', 'l1_mean']


def omega_reference(gamma, omega='l2', l2_eps=1e-5):
    """Eqn 6 (``'l2'``) and the authors' two forms, value by value."""
    cg = gamma.numel()
    if omega == 'l1_mean':
        total = sum(gamma[i].abs() for i in range(cg)) / cg
        return [gamma[i] / (total + l2_eps) for i in range(cg)]
    squares = sum(gamma[i] ** 2 for i in range(cg))
    if omega == 'l2_mean':
        squares = squares / cg
    return [gamma[i] / torch.sqrt(squares + l2_eps) for i in range(cg)]


def ean_reference(x, gamma, beta, alpha, delta, groups, eps=1e-5, l2_eps=1e-5, omega='l2'):
    """Eqns 5-9 written out group by group, channel by channel."""
    n, c, h, w = x.shape
    cg = c // groups
    weights = omega_reference(gamma, omega, l2_eps)  # Eqn 6
    groups_out = []
    for k in range(groups):  # Grouping
        x_k = x[:, k * cg:(k + 1) * cg]
        channels = []
        for i in range(cg):
            xi = x_k[:, i]
            mu = xi.mean(dim=(1, 2), keepdim=True)
            var = ((xi - mu) ** 2).mean(dim=(1, 2), keepdim=True)
            gn = gamma[i] * (xi - mu) / torch.sqrt(var + eps) + beta[i]  # Eqn 5
            x_tilde = weights[i] * gn  # Eqn 7
            a = 1 / (1 + torch.exp(-(alpha[i] * x_tilde + delta[i])))  # Eqn 8
            channels.append(a * xi)  # Eqn 9
        groups_out.append(torch.stack(channels, dim=1))
    return torch.cat(groups_out, dim=1)  # Aggregation


def authors_module(x, groupnorm_weight, groupnorm_bias, alpha, delta, groups, mode):
    """The forward of the EAN authors' ``ean_module`` (repository ``Lihahaah/EAN``, file
    ``ean_module.py``, commit 502bc79), written from its facts: ``x`` viewed as
    ``(b * groups, C / groups, h, w)``; ``nn.GroupNorm(C/groups, C/groups)`` (eps 1e-5);
    ``mode='l2'``: ``weight / (mean(weight^2) + 1e-5) ** 0.5``, ``mode='l1'``:
    ``weight / (mean(|weight|) + 1e-5)``; ``out = x * sigmoid(gn(x) * alpha * that + delta)``
    with ``alpha, delta`` of shape ``(1, C/groups, 1, 1)``, viewed back to ``(b, C, h, w)``."""
    b, c, h, w = x.shape
    k = c // groups
    xg = x.reshape(b * groups, k, h, w)
    xs = F.group_norm(xg, k, groupnorm_weight, groupnorm_bias, 1e-5)
    weight = groupnorm_weight.view(1, k, 1, 1)
    if mode == 'l2':
        scale = (weight.pow(2).mean(dim=1, keepdim=True) + 1e-5).pow(0.5)
    else:
        scale = weight.abs().mean(dim=1, keepdim=True) + 1e-5
    out = xg * torch.sigmoid(xs * (alpha * (weight / scale)) + delta)
    return out.reshape(b, c, h, w)


# the default (the C++ kernel here), its PyTorch-ops fallback, the equation path
IMPLEMENTATIONS = ['auto', 'torch', 'reference']


def randomized(layer: EAN) -> EAN:
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn_like(p))
    return layer


def forward_and_gradients(fn, x, params, upstream):
    x = x.detach().clone().requires_grad_()
    params = [p.detach().clone().requires_grad_() for p in params]
    y = fn(x, *params)
    return [y] + list(torch.autograd.grad(y, [x] + params, upstream))


@pytest.mark.parametrize('c,g', [(8, 1), (8, 2), (16, 4), (24, 8), (64, 64), (12, 3)])
@pytest.mark.parametrize('omega', OMEGAS)
@pytest.mark.parametrize('impl', IMPLEMENTATIONS)
def test_forward_and_gradients_match_reference(c, g, omega, impl):
    layer = randomized(EAN(c, groups=g, omega=omega, implementation=impl)).double()
    x = (torch.randn(2, c, 5, 7, dtype=torch.float64) * 3 + 1).requires_grad_()
    y = layer(x)
    params = [layer.gn.weight, layer.gn.bias, layer.alpha, layer.delta]
    upstream = torch.randn_like(y)
    grads = torch.autograd.grad(y, [x] + params, upstream)
    want = forward_and_gradients(lambda *a: ean_reference(*a, groups=g, omega=omega), x, params,
                                 upstream)
    torch.testing.assert_close(y, want[0], rtol=1e-12, atol=1e-12)
    for name, got, ref in zip(['x', 'gamma', 'beta', 'alpha', 'delta'], grads, want[1:]):
        torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10, msg=name)


@pytest.mark.parametrize('omega,mode', [('l2_mean', 'l2'), ('l1_mean', 'l1')])
@pytest.mark.parametrize('impl', IMPLEMENTATIONS)
def test_authors_modes_match_their_module(omega, mode, impl):
    c, g = 32, 4
    layer = randomized(EAN(c, groups=g, omega=omega, implementation=impl)).double()
    x = torch.randn(3, c, 6, 5, dtype=torch.float64) * 2 + 0.5
    k = c // g
    params = [layer.gn.weight, layer.gn.bias, layer.alpha, layer.delta]
    upstream = torch.randn_like(x)
    xg = x.clone().requires_grad_()
    y = layer(xg)
    got = [y] + list(torch.autograd.grad(y, [xg] + params, upstream))
    want = forward_and_gradients(
        lambda x, w, b, a, d: authors_module(x, w, b, a.view(1, k, 1, 1), d.view(1, k, 1, 1),
                                             g, mode), x, params, upstream)
    for name, a, b in zip(['y', 'x', 'gamma', 'beta', 'alpha', 'delta'], got, want):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11, msg=name)


@pytest.mark.parametrize('impl', IMPLEMENTATIONS)
def test_l2_is_paper_default_and_the_forms_differ(impl):
    x = torch.randn(1, 8, 4, 4, dtype=torch.float64)
    layer = randomized(EAN(8, groups=2, implementation=impl)).double()
    assert layer.omega == 'l2'
    others = {}
    for omega in ('l2_mean', 'l1_mean'):
        others[omega] = EAN(8, groups=2, omega=omega, implementation=impl).double()
        others[omega].load_state_dict(layer.state_dict())  # same keys for every form
        assert not torch.allclose(layer(x), others[omega](x))
    # omega differs by sqrt(C/G) = 2 (up to eps) between the two l2 forms.
    ratio = others['l2_mean'].omega_weights() / layer.omega_weights()
    torch.testing.assert_close(ratio, torch.full_like(ratio, 2.0), rtol=1e-4, atol=0)


def test_l2_reduction_is_an_alias_of_omega():
    assert EAN(8, groups=2, l2_reduction='sum').omega == 'l2'
    assert EAN(8, groups=2, l2_reduction='mean').omega == 'l2_mean'
    assert EAN(8, groups=2, omega='l2_mean', l2_reduction='mean').omega == 'l2_mean'
    with pytest.raises(ValueError, match=r"omega='l1_mean' and l2_reduction='sum' name "
                                         r'different forms'):
        EAN(8, groups=2, omega='l1_mean', l2_reduction='sum')
    with pytest.raises(ValueError, match=r"omega must be 'l2'.*got 'l1'"):
        EAN(8, groups=2, omega='l1')
    with pytest.raises(ValueError, match=r"l2_reduction must be 'sum'.*got 'max'"):
        EAN(8, groups=2, l2_reduction='max')


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
    assert set_ean_implementation(model, 'reference') == 8
    assert all(m.implementation == 'reference' for m in layers)
    for wrong in ('cuda', 'fused'):  # 'fused': the earlier PyTorch-ops path, removed
        with pytest.raises(ValueError, match="implementation must be one of"):
            set_ean_implementation(model, wrong)


def test_every_implementation_is_selectable_and_no_other():
    from ean_mm.models.layers.ean import IMPLEMENTATIONS as ALL
    assert ALL == ('auto', 'cpp', 'triton', 'torch', 'reference')
    for impl in ALL:
        assert EAN(8, groups=2, implementation=impl).implementation == impl
    assert "implementation='auto'" in repr(EAN(8, groups=2))
    for wrong in ('cuda', 'fused'):
        with pytest.raises(ValueError, match='implementation must be one of'):
            EAN(8, groups=2, implementation=wrong)
    with pytest.raises(TypeError, match='compile'):  # the fused path's flag, removed with it
        EAN(8, groups=2, compile=True)
