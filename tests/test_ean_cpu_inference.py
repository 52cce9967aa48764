"""EAN's C++ CPU kernel with a frozen norm folded in (``ean_forward(x, ag, sh0, eps, aff_a,
aff_b)``: EAN of ``aff_a[c] * x + aff_b[c]``), against the equations in float64, and the
inference path of EAN blocks that uses it."""
import pytest
import torch
from test_ean import ean_reference
from test_ean_kernels import randomized

from ean_mm.models import EAN
from ean_mm.models.layers import ean_ops

pytestmark = pytest.mark.skipif(not ean_ops.cpp_available(), reason='ean_mm._C not built')


def folded_reference(layer: EAN, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor):
    """Eqns 5-9 step by step (tests/test_ean.py) on ``a[c] * x + b[c]``, float64."""
    c = x.shape[1]
    v = a.double().view(1, c, 1, 1) * x.double() + b.double().view(1, c, 1, 1)
    ps = [p.detach().double() for p in (layer.gn.weight, layer.gn.bias, layer.alpha,
                                        layer.delta)]
    return ean_reference(v, *ps, layer.groups, layer.gn.eps, layer.l2_eps, layer.omega), v


@pytest.mark.parametrize('dtype,tol', [(torch.float64, 1e-12), (torch.float32, 2e-6),
                                       (torch.bfloat16, 1e-2)])
@pytest.mark.parametrize('shape,groups', [((2, 8, 5, 7), 2), ((1, 16, 1, 1), 4),
                                          ((3, 12, 1, 9), 3), ((2, 64, 6, 6), 64)])
def test_cpp_affine_forward_is_the_equations_of_the_folded_input(dtype, tol, shape, groups):
    layer = randomized(EAN(shape[1], groups=groups, implementation='cpp'))
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    layer = layer.to(acc)  # omega of Eqn 6 in the compute dtype
    x = (torch.randn(*shape, dtype=torch.float64) * 3 + 1).to(dtype)
    a = torch.rand(shape[1], dtype=acc) * 2 - 1  # negative scales too
    b = torch.randn(shape[1], dtype=acc)
    ag, sh0 = layer.kernel_vectors(dtype)
    with torch.no_grad():
        y, mu, rstd = ean_ops.ean_forward(x, ag, sh0, layer.gn.eps, a, b, 'cpp')
    want, v = folded_reference(layer, x, a, b)
    assert y.dtype == dtype and mu.dtype == rstd.dtype == acc
    # rounding of z = ag * rstd * (v - mu) + sh0 grows with |ag * rstd * v| (1x1 planes: rstd =
    # eps^-1/2 = 316): the tolerance is relative to that and to |y|
    cond = (ag.abs().max() * rstd.abs().max() * v.abs().max()).item()
    bound = tol * max(want.abs().max().item(), cond)
    assert (y.double() - want).abs().max().item() <= bound
    var = v.var(dim=(2, 3), unbiased=False)
    torch.testing.assert_close(mu.double(), v.mean(dim=(2, 3)), rtol=tol, atol=tol)
    torch.testing.assert_close(rstd.double(), (var + layer.gn.eps).rsqrt(), rtol=tol,
                               atol=tol)


def test_cpp_affine_forward_reads_the_input_once(monkeypatch):
    """The fold is inside the kernel: no PyTorch op computes ``aff_a * x + aff_b`` first."""
    layer = randomized(EAN(16, groups=4, implementation='cpp'))
    x = torch.randn(2, 16, 7, 9)
    a, b = torch.rand(16) + 0.5, torch.randn(16)
    ag, sh0 = layer.kernel_vectors(x.dtype)
    want = ean_ops.ean_forward(x, ag, sh0, 1e-5, a, b, 'torch')[0]
    monkeypatch.setattr(ean_ops, '_affine', lambda *args: pytest.fail('affine in PyTorch ops'))
    monkeypatch.setattr(torch, 'addcmul', lambda *args: pytest.fail('affine in PyTorch ops'))
    got = ean_ops.ean_forward(x, ag, sh0, 1e-5, a, b, 'cpp')[0]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_cpp_affine_refusals_name_the_problem():
    x = torch.randn(2, 16, 3, 3)
    ag, sh0 = torch.ones(4), torch.zeros(4)
    with pytest.raises(RuntimeError, match='give both aff_a and aff_b'):
        ean_ops._C.ean_forward(x, ag, sh0, 1e-5, torch.ones(16), None)
    with pytest.raises(RuntimeError, match='vectors of C = 16 values'):
        ean_ops._C.ean_forward(x, ag, sh0, 1e-5, torch.ones(8), torch.zeros(8))
    with pytest.raises(RuntimeError, match="in ag's dtype"):
        ean_ops._C.ean_forward(x, ag, sh0, 1e-5, torch.ones(16, dtype=torch.float64),
                               torch.zeros(16, dtype=torch.float64))


def test_inference_vectors_are_kept_until_a_source_changes(monkeypatch):
    """Inference reuses a layer's K-vectors and its norm's (A, B) while the tensors they come
    from are unchanged; an in-place update, load_state_dict or new running statistics count as
    a change."""
    bn = torch.nn.BatchNorm2d(16).eval()
    folded, alone = randomized(EAN(16, groups=4)), randomized(EAN(16, groups=4))
    x = torch.randn(2, 16, 5, 6)
    calls = []
    original = EAN.kernel_vectors
    monkeypatch.setattr(EAN, 'kernel_vectors',
                        lambda self, dtype: calls.append(1) or original(self, dtype))

    def run():
        with torch.no_grad():
            return folded.forward_after_norm(bn, x), alone(x)

    def want():
        with torch.no_grad():
            return folded(bn(x)), x * alone.attention(x)

    first = run()
    assert len(calls) == 2  # once a layer
    again = run()
    assert len(calls) == 2 and all(torch.equal(a, b) for a, b in zip(again, first))  # kept
    for change in (lambda: folded.alpha.add_(0.5), lambda: alone.delta.sub_(0.5),
                   lambda: bn.running_var.mul_(2), lambda: bn.bias.sub_(1),
                   lambda: alone.load_state_dict({k: v * 1.5 for k, v in
                                                  alone.state_dict().items()})):
        with torch.no_grad():
            change()
        for got, expected in zip(run(), want()):
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    with torch.enable_grad():  # autograd: computed afresh, gradients reach the parameters
        alone(x.requires_grad_()).sum().backward()
    assert torch.count_nonzero(alone.alpha.grad) > 0


@pytest.mark.parametrize('shape', [(3, 100, 7, 7),   # 300 planes, blocks of 83: the last partial
                                   (2, 3, 70, 70),   # 4,900 values a plane: one a block
                                   (2, 24, 33, 3)])  # 99 values: 16-wide vectors and a tail
@pytest.mark.parametrize('threads', [1, 2])
def test_cpp_forward_in_blocks_of_planes_is_the_equations(shape, threads):
    """The C++ forward takes planes in blocks (statistics of a block, then its outputs), split
    across threads: every plane, first and last of a block, against the float64 equations."""
    layer = randomized(EAN(shape[1], groups=shape[1] // 4 if shape[1] % 4 == 0 else 1,
                           implementation='cpp'))
    x = torch.randn(shape) * 2 + 1
    a, b = torch.rand(shape[1]) + 0.5, torch.randn(shape[1])
    ag, sh0 = layer.kernel_vectors(x.dtype)
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            y, mu, rstd = ean_ops.ean_forward(x, ag, sh0, layer.gn.eps, a, b, 'cpp')
    finally:
        torch.set_num_threads(saved)
    want, v = folded_reference(layer, x, a, b)
    torch.testing.assert_close(y.double(), want, rtol=2e-5, atol=2e-5)
    torch.testing.assert_close(mu.double(), v.mean(dim=(2, 3)), rtol=1e-5, atol=1e-5)
