"""The fused EAN (default) against the equation path (``implementation='reference'``)."""
import warnings

import pytest
import torch

from ean_mm.models import EAN
from ean_mm.models.layers import ean_fused as fused_mod
from ean_mm.models.layers.ean_fused import EANFusedFunction, ean_fused

TOL = {torch.float64: dict(rtol=1e-10, atol=1e-10), torch.float32: dict(rtol=1e-5, atol=1e-5)}


def pair(c, g, dtype=torch.float64, **kwargs):
    """A randomised fused layer and a reference layer with the same parameters."""
    fused = EAN(c, groups=g, **dict(dict(implementation='fused'), **kwargs)).to(dtype)
    with torch.no_grad():
        for p in fused.parameters():
            p.copy_(torch.randn_like(p))
    ref = EAN(c, groups=g, implementation='reference', **kwargs).to(dtype)
    ref.load_state_dict(fused.state_dict())
    return fused, ref


def params(layer):
    return [layer.gn.weight, layer.gn.bias, layer.alpha, layer.delta]


def run(layer, x, upstream):
    x = x.detach().clone().requires_grad_()
    y = layer(x)
    return [y] + list(torch.autograd.grad(y, [x] + params(layer), upstream))


NAMES = ['y', 'x', 'gn.weight', 'gn.bias', 'alpha', 'delta']


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
@pytest.mark.parametrize('shape,g', [
    ((2, 8, 5, 7), 2), ((1, 16, 1, 1), 4), ((3, 12, 1, 9), 3), ((1, 6, 3, 3), 6),
    ((2, 15, 4, 5), 5), ((2, 8, 6, 6), 1), ((1, 64, 2, 3), 64)])
@pytest.mark.parametrize('l2_reduction', ['sum', 'mean'])
def test_fused_matches_reference(dtype, shape, g, l2_reduction):
    # EAN has no running statistics: train and eval mode compute the same.
    fused, ref = pair(shape[1], g, dtype, l2_reduction=l2_reduction)
    x = torch.randn(shape, dtype=dtype) * 3 + 1
    upstream = torch.randn(shape, dtype=dtype)
    tol = TOL[dtype]
    if dtype == torch.float32 and shape[2] * shape[3] == 1:
        # Zero variance: rstd = 1/sqrt(eps) ~ 316 amplifies float32 rounding in *both* paths
        # (torch's GroupNorm also folds scale*x + shift); each is ~2e-5 off float64 here.
        tol = dict(rtol=1e-4, atol=1e-4)
    for name, got, want in zip(NAMES, run(fused, x, upstream), run(ref, x, upstream)):
        assert got.dtype == want.dtype == dtype, name
        torch.testing.assert_close(got, want, **tol, msg=name)


def test_implementations_selectable():
    assert EAN(8, groups=2).implementation == 'auto'
    for impl in ('fused', 'reference', 'cpp', 'triton', 'torch'):
        assert EAN(8, groups=2, implementation=impl).implementation == impl
    assert "implementation='auto'" in repr(EAN(8, groups=2))
    with pytest.raises(ValueError, match='implementation must be one of'):
        EAN(8, groups=2, implementation='cuda')


def test_state_dict_is_the_same():
    fused, ref = pair(32, 8)
    assert list(fused.state_dict()) == list(ref.state_dict())
    assert set(fused.state_dict()) == {'gn.weight', 'gn.bias', 'alpha', 'delta'}
    for k, v in fused.state_dict().items():
        assert v.shape == (4,) and torch.equal(v, ref.state_dict()[k])


def test_fused_path_is_used():
    fused, _ = pair(8, 2)
    x = torch.randn(2, 8, 3, 3, dtype=torch.float64, requires_grad=True)
    assert type(fused(x).grad_fn).__name__ == 'EANFusedFunctionBackward'


@pytest.mark.parametrize('omega', ['l2', 'l2_mean', 'l1_mean'])
@pytest.mark.parametrize('shape,g', [((2, 6, 3, 4), 2), ((1, 4, 1, 1), 1), ((1, 3, 1, 5), 3)])
def test_gradcheck(omega, shape, g):
    k = shape[1] // g
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    ps = [torch.randn(k, dtype=torch.float64, requires_grad=True) for _ in range(4)]
    fn = lambda x, *ps: ean_fused(x, *ps, groups=g, omega_form=omega)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, *ps), eps=1e-6, atol=1e-7)


def test_parameter_gradients_without_input_gradient():
    fused, ref = pair(12, 3)
    x = torch.randn(2, 12, 4, 4, dtype=torch.float64)  # no requires_grad
    grads = torch.autograd.grad(fused(x).sum(), params(fused))
    ref_grads = torch.autograd.grad(ref(x).sum(), params(ref))
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_saves_only_x_at_full_size():
    fused, _ = pair(16, 4, torch.float32)
    x = torch.randn(2, 16, 8, 8, requires_grad=True)
    saved = []

    def pack(t):
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fused(x)
    assert sorted(saved)[-1] == x.numel() and sum(n == x.numel() for n in saved) == 1
    assert sum(saved) - x.numel() <= 2 * 2 * 16 + 4 * 4  # mu, rstd and the parameters


def test_channels_last_input():
    fused, ref = pair(16, 4)
    x = (torch.randn(2, 16, 5, 6, dtype=torch.float64)).to(memory_format=torch.channels_last)
    upstream = torch.randn(2, 16, 5, 6, dtype=torch.float64)
    for name, got, want in zip(NAMES, run(fused, x, upstream), run(ref, x, upstream)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10, msg=name)


@pytest.mark.parametrize('shape', [(1, 16, 1, 1), (1, 16, 9, 9), (4, 16, 3, 5)])
@pytest.mark.parametrize('value', [0.0, 3.5, -1e4])
def test_zero_variance_input(shape, value):
    fused, ref = pair(16, 4)
    x = torch.full(shape, value, dtype=torch.float64)
    upstream = torch.randn(shape, dtype=torch.float64)
    want = run(ref, x, upstream)
    got = run(fused, x, upstream)
    got32 = run(fused.float(), x.float(), upstream.float())
    assert all(torch.isfinite(t).all() for t in got + got32)
    if abs(value) < 100:  # for |mu| >> 0 the folded shift -scale*mu is rounded (as in GN)
        for name, g, g32, w in zip(NAMES, got, got32, want):
            torch.testing.assert_close(g, w, rtol=1e-8, atol=1e-8, msg=name)
            # rstd = 1/sqrt(eps) amplifies float32 rounding noise (the reference's too).
            scale = w.abs().max().item()
            torch.testing.assert_close(g32.double(), w, rtol=1e-3, atol=1e-3 * scale, msg=name)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_autocast(dtype):
    fused, ref = pair(32, 8, torch.float32)
    x = torch.randn(2, 32, 6, 5) * 4
    with torch.autocast('cpu', dtype=dtype):
        y32 = fused(x)  # float32 input stays float32
        xl = x.to(dtype).requires_grad_()
        y = fused(xl)
        y_ref = ref(x.to(dtype))
    assert y32.dtype == torch.float32 and y.dtype == dtype
    torch.testing.assert_close(y32, ref(x), rtol=1e-5, atol=1e-5)
    assert torch.isfinite(y).all()
    # fused computes in float32 from the rounded input: close to float32 maths on that input.
    torch.testing.assert_close(y, ref(x.to(dtype).float()).to(dtype), rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(y.float(), y_ref.float(), rtol=0.05, atol=0.1)
    y.float().pow(2).sum().backward()
    assert xl.grad.dtype == dtype and torch.isfinite(xl.grad).all()
    assert all(p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
               for p in fused.parameters())
    with torch.autocast('cpu', dtype=dtype):  # constant, 1x1, batch 1
        for shape in [(1, 32, 4, 4), (1, 32, 1, 1)]:
            assert torch.isfinite(fused(torch.ones(shape, dtype=dtype))).all()


def test_double_backward_is_refused():
    fused, _ = pair(8, 2)
    x = torch.randn(1, 8, 3, 3, dtype=torch.float64, requires_grad=True)
    y = fused(x)
    upstream = torch.ones_like(y, requires_grad=True)  # so that a second order graph is asked for
    (gx,) = torch.autograd.grad(y, x, upstream, create_graph=True)
    with pytest.raises(RuntimeError, match='once_differentiable'):
        gx.sum().backward()


def test_compile_failure_falls_back_to_eager(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError('no compiler')

    monkeypatch.setattr(torch, 'compile', broken)
    monkeypatch.setattr(fused_mod, '_compiled', None)
    monkeypatch.setattr(fused_mod, '_compile_failed', False)
    fused, ref = pair(8, 2, compile=True)
    x = torch.randn(2, 8, 3, 3, dtype=torch.float64)
    upstream = torch.randn_like(x)
    with pytest.warns(RuntimeWarning, match='falling back to eager'):
        got = run(fused, x, upstream)
    for name, g, w in zip(NAMES, got, run(ref, x, upstream)):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10, msg=name)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # warned once only
        fused(x)


def test_function_direct_call_matches_module():
    fused, ref = pair(8, 4, eps=1e-3, l2_eps=1e-6, l2_reduction='mean')
    x = torch.randn(2, 8, 3, 3, dtype=torch.float64)
    y = EANFusedFunction.apply(x, *params(fused), 4, 1e-3, 1e-6, 'l2_mean', False)
    torch.testing.assert_close(y, fused(x), rtol=0, atol=0)
    torch.testing.assert_close(y, ref(x), rtol=1e-10, atol=1e-10)  # argument order as the layer's


@pytest.mark.parametrize('shape', [(2, 12, 5, 3), (1, 12, 1, 1)])
def test_var_mean_statistics_branch(monkeypatch, shape):
    """The statistics used on CUDA and under torch.compile (torch.var_mean), checked on CPU."""
    fused, ref = pair(12, 3)
    x = torch.randn(shape, dtype=torch.float64) * 3 + 1
    upstream = torch.randn(shape, dtype=torch.float64)
    want = run(ref, x, upstream)
    monkeypatch.setattr(torch.compiler, 'is_compiling', lambda: True)
    for name, got, w in zip(NAMES, run(fused, x, upstream), want):
        torch.testing.assert_close(got, w, rtol=1e-10, atol=1e-10, msg=name)
    x = torch.full(shape, 2.5, requires_grad=True)
    fused.float()(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_compile_flag_from_environment(monkeypatch):
    monkeypatch.delenv('EAN_COMPILE', raising=False)
    assert not fused_mod._compile_requested(None)
    monkeypatch.setenv('EAN_COMPILE', '1')
    assert fused_mod._compile_requested(None) and not fused_mod._compile_requested(False)
    requested = []
    real_kernels = fused_mod._kernels
    monkeypatch.setattr(fused_mod, '_kernels',
                        lambda use_compile: requested.append(use_compile) or real_kernels(False))
    EAN(8, groups=2, implementation='fused')(torch.randn(1, 8, 2, 2))  # compile=None: the env
    assert requested == [True]


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_cuda_autocast(dtype):
    fused, ref = (m.cuda() for m in pair(32, 8, torch.float32))
    x = torch.randn(2, 32, 7, 5, device='cuda') * 4
    upstream = torch.randn_like(x)
    for name, got, want in zip(NAMES, run(fused, x, upstream), run(ref, x, upstream)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4, msg=name)
    with torch.autocast('cuda', dtype=dtype):
        y = fused(x.to(dtype))
        y_ref = ref(x.to(dtype))
    assert y.dtype == dtype and torch.isfinite(y).all()
    torch.testing.assert_close(y.float(), y_ref.float(), rtol=0.05, atol=0.1)
