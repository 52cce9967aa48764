"""EAN's kernels (ean_mm.models.layers.ean_ops): the C++ CPU kernel, the Triton kernels (in
Triton's interpreter on CPU tensors without a GPU), the PyTorch-ops backend, the BatchNorm+EAN
step that keeps only the norm's input, mixed precision, channels-last inputs, what a layer keeps
for backward, torch.compile and torch.export."""
import warnings

import pytest
import torch
from test_ean import ean_reference

from ean_mm.models import EAN, EANResNet
from ean_mm.models.layers import ean_ops
from ean_mm.models.layers.ean_triton import triton_backward, triton_forward

DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'  # 'cpu': Triton interpreted
BACKENDS = ['cpp', 'triton', 'torch']
NAMES = ['y', 'x', 'gn.weight', 'gn.bias', 'alpha', 'delta']
needs_cpp = pytest.mark.skipif(not ean_ops.cpp_available(), reason='ean_mm._C not built')


def randomized(layer: EAN) -> EAN:
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn_like(p))
    return layer


def params(layer):
    return [layer.gn.weight, layer.gn.bias, layer.alpha, layer.delta]


def results(layer, x, upstream):
    x = x.detach().clone().requires_grad_()
    y = layer(x)
    return [y] + list(torch.autograd.grad(y, [x] + params(layer), upstream))


def reference(layer, x, upstream):
    """The equations (tests/test_ean.py) in float64."""
    x = x.detach().double().requires_grad_()
    ps = [p.detach().double().requires_grad_() for p in params(layer)]
    y = ean_reference(x, *ps, layer.groups, layer.gn.eps, layer.l2_eps, layer.omega)
    return [y] + list(torch.autograd.grad(y, [x] + ps, upstream.double()))


def device_for(backend: str) -> str:
    return DEVICE if backend == 'triton' else 'cpu'


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest difference relative to ``b``'s largest magnitude (at least 1e-3)."""
    b = b.to(a.device)
    return ((a.double() - b).abs().max() / b.abs().max().clamp_min(1e-3)).item()


SHAPES = [((2, 8, 5, 7), 2),    # odd sizes
          ((1, 16, 1, 1), 4),   # H*W = 1, N = 1
          ((3, 12, 1, 9), 3),
          ((2, 8, 6, 6), 1),    # G = 1
          ((1, 64, 2, 3), 64),  # one channel a group
          ((1, 4, 50, 47), 2)]  # 2,350 values a plane: more than one Triton block


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('shape,g', SHAPES, ids=[str(s) for s, _ in SHAPES])
def test_float32_forward_and_gradients_against_the_equations(backend, shape, g):
    if backend == 'cpp' and not ean_ops.cpp_available():
        pytest.skip('ean_mm._C not built')
    layer = randomized(EAN(shape[1], groups=g, implementation=backend)).to(device_for(backend))
    x = (torch.randn(shape) * 3 + 1).to(device_for(backend))
    upstream = torch.randn(shape).to(device_for(backend))
    got, want = results(layer, x, upstream), reference(layer, x, upstream)
    for name, a, b in zip(NAMES, got, want):
        assert a.dtype == torch.float32, name
        rel = relative_error(a, b)
        # zero variance (H*W = 1): rstd = 1/sqrt(eps) magnifies float32 rounding in any path
        assert rel <= (1e-3 if shape[2] * shape[3] == 1 else 1e-4), (name, rel)


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('omega', ['l2_mean', 'l1_mean'])
def test_every_omega_form_against_the_equations(backend, omega):
    if backend == 'cpp' and not ean_ops.cpp_available():
        pytest.skip('ean_mm._C not built')
    dev = device_for(backend)
    layer = randomized(EAN(12, groups=3, omega=omega, implementation=backend)).to(dev)
    x = (torch.randn(2, 12, 5, 7) * 3 + 1).to(dev)
    upstream = torch.randn_like(x)
    for name, a, b in zip(NAMES, results(layer, x, upstream), reference(layer, x, upstream)):
        assert relative_error(a, b) <= 1e-4, name


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_low_precision_in_and_out(backend, dtype):
    if backend == 'cpp' and not ean_ops.cpp_available():
        pytest.skip('ean_mm._C not built')
    dev = device_for(backend)
    layer = randomized(EAN(32, groups=8, implementation=backend)).to(dev)
    x = (torch.randn(2, 32, 7, 5) * 4).to(dev)
    upstream = torch.randn_like(x)
    xl = x.to(dtype).requires_grad_()
    y = layer(xl)
    assert y.dtype == dtype  # takes and returns the input dtype
    want = reference(layer, xl.detach().float(), upstream)
    torch.testing.assert_close(y.double(), want[0].to(dev), rtol=0.02, atol=0.05)
    grads = torch.autograd.grad(y, [xl] + params(layer), upstream.to(dtype))
    assert grads[0].dtype == dtype and all(g.dtype == torch.float32 for g in grads[1:])
    for name, a, b in zip(NAMES[1:], grads, want[1:]):
        b = b.to(dev)
        assert ((a.double() - b).abs().max() / b.abs().max()).item() < 0.05, name


def test_triton_blocks_of_any_size():
    # The same plane in blocks of 16 (many per plane) and of the default size.
    u = (torch.randn(2, 6, 9, 11) * 2).to(DEVICE)
    ag, sh0 = torch.randn(3, device=DEVICE), torch.randn(3, device=DEVICE)
    gy = torch.randn_like(u)
    small, default = triton_forward(u, ag, sh0, 1e-5, block=16), triton_forward(u, ag, sh0, 1e-5)
    for a, b in zip(small, default):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(triton_backward(gy, u, *small[1:], ag, sh0, None, None, block=16),
                    triton_backward(gy, u, *default[1:], ag, sh0, None, None)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


# Triton launch plans (ean_triton.plan): shape, G, forced plan, SMs assumed.
PLANS = {'one sweep': ((2, 8, 5, 7), 2, {}, 132),
         'packed planes': ((3, 12, 3, 5), 3, {}, 1),  # 16 planes a program, the last partial
         'packed 1x1 planes': ((2, 16, 1, 1), 4, {}, 1),
         'two sweeps': ((1, 4, 10, 11), 2, dict(split=1, block=16), 132),  # H*W % 16 != 0
         'split planes': ((1, 4, 10, 10), 2, dict(split=3, block=16), 132)}  # chunks 48, 48, 4


def kernel_results(layer, x, upstream, aff, how):
    """The Triton kernels on ``x`` (EAN's input ``aff[0] * x + aff[1]`` with ``aff``):
    ``[y, mu, rstd, d input, d gamma, d beta, d alpha, d delta]``, the parameter gradients
    chained from the kernels' per-plane sums."""
    ag, sh0 = layer.kernel_vectors(torch.float32)
    a, b = aff if aff else (None, None)
    y, mu, rstd = triton_forward(x, ag.detach(), sh0.detach(), layer.gn.eps, a, b, **how)
    gv, sz, sx = triton_backward(upstream, x, mu, rstd, ag.detach(), sh0.detach(), a, b, **how)
    d_ag, d_sh0 = ean_ops._param_grads(sz, sx, ag.numel())
    return [y, mu, rstd, gv] + list(torch.autograd.grad((ag, sh0), params(layer), (d_ag, d_sh0)))


def kernel_reference(layer, x, upstream, aff):
    v = x.double() if not aff else aff[0].double().view(1, -1, 1, 1) * x.double() + \
        aff[1].double().view(1, -1, 1, 1)
    v.requires_grad_()
    var, mu = torch.var_mean(v.detach(), dim=(2, 3), unbiased=False)
    out = reference(layer, v, upstream)  # y, d v, d params (the equations in float64)
    return [out[0], mu, torch.rsqrt(var + layer.gn.eps)] + out[1:]


@pytest.mark.parametrize('affine', [False, True], ids=['plain', 'frozen-norm fold'])
@pytest.mark.parametrize('name', list(PLANS))
def test_triton_plans_against_the_equations(monkeypatch, name, affine):
    from ean_mm.models.layers import ean_triton
    shape, g, how, sms = PLANS[name]
    monkeypatch.setattr(ean_triton, 'DEFAULT_SMS', sms)
    p, m = shape[0] * shape[1], shape[2] * shape[3]
    chosen = ean_triton.plan(p, m, sms, **how)
    assert (chosen.kind, chosen.one_sweep, chosen.rows > 1) == {
        'one sweep': ('rows', True, False), 'packed planes': ('rows', True, True),
        'packed 1x1 planes': ('rows', True, True), 'two sweeps': ('rows', False, False),
        'split planes': ('split', False, False)}[name]
    layer = randomized(EAN(shape[1], groups=g, implementation='triton')).to(DEVICE)
    x = (torch.randn(shape) * 3 + 1).to(DEVICE)
    upstream = torch.randn(shape).to(DEVICE)
    aff = (torch.rand(shape[1], device=DEVICE) + 0.5, torch.randn(shape[1], device=DEVICE)) \
        if affine else None
    got = kernel_results(layer, x, upstream, aff, how)
    want = kernel_reference(layer, x, upstream, aff)
    for what, a, b in zip(['y', 'mu', 'rstd', 'd input'] + NAMES[2:], got, want):
        rel = relative_error(a, b)
        assert rel <= (1e-3 if m == 1 else 1e-4), (what, rel)


def test_plans_cover_every_value_and_fill_the_gpu():
    from ean_mm.models.layers.ean_triton import ONE_SWEEP_MAX, plan
    # the configs' shapes at batch 2 per GPU (132 SMs): (N*C, H*W) -> kind
    assert plan(2 * 256, 200 * 336).kind == 'split'  # R50 layer1 at 800x1344
    assert plan(2 * 2048, 25 * 42).one_sweep  # R50 layer4
    assert plan(16 * 2048, 49).rows == 32  # R50 layer4 at 224, batch 16: planes packed
    for planes in (1, 7, 96, 528, 5000):
        for m in (1, 15, ONE_SWEEP_MAX, ONE_SWEEP_MAX + 1, 67200, 1 << 20):
            p = plan(planes, m)
            if m <= ONE_SWEEP_MAX:
                assert p.one_sweep and p.block >= m and p.rows * p.block <= 4096
            elif p.kind == 'split':
                assert p.chunk % p.block == 0 and (p.split - 1) * p.chunk < m <= p.split * p.chunk
                assert planes * p.split <= 4 * 132 * 2  # no more programs than it needs


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('shape', [(0, 8, 4, 4), (2, 8, 0, 5)], ids=['N=0', 'H=0'])
def test_empty_tensors(backend, shape):
    if backend == 'cpp' and not ean_ops.cpp_available():
        pytest.skip('ean_mm._C not built')
    dev = device_for(backend)
    layer = randomized(EAN(8, groups=2, implementation=backend)).to(dev)
    x = torch.randn(shape, device=dev, requires_grad=True)
    y = layer(x)
    assert y.shape == x.shape
    grads = torch.autograd.grad(y.sum(), [x] + params(layer))
    assert grads[0].shape == x.shape
    assert all(torch.equal(g, torch.zeros_like(g)) for g in grads[1:])


def test_auto_gives_float64_on_cuda_to_pytorch_ops_and_triton_refuses_it():
    x64 = torch.zeros(1, 4, 2, 2, dtype=torch.float64)
    assert ean_ops.resolve_backend('auto', torch.device('cuda'), x64) == 'torch'
    assert ean_ops.resolve_backend('auto', torch.device('cuda'), x64.float()) == 'triton'
    with pytest.raises(TypeError, match="takes .*float32.*got torch.float64.*'auto'"):
        EAN(4, groups=2, implementation='triton').double()(x64.to(DEVICE))


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason='needs two GPUs')
def test_launches_on_the_tensors_device():
    # the current device stays 0; the layer and its input live on cuda:1
    layer = randomized(EAN(16, groups=4, implementation='triton')).to('cuda:1')
    x = torch.randn(2, 16, 9, 9, device='cuda:1')
    upstream = torch.randn_like(x)
    torch.cuda.set_device(0)
    got, want = results(layer, x, upstream), reference(layer, x, upstream)
    for name, a, b in zip(NAMES, got, want):
        assert a.device == x.device and relative_error(a, b) <= 1e-4, name


@pytest.mark.parametrize('backend', BACKENDS)
def test_fresh_layer_halves_exactly(backend):
    if backend == 'cpp' and not ean_ops.cpp_available():
        pytest.skip('ean_mm._C not built')
    x = (torch.randn(2, 16, 9, 7) * 10).to(device_for(backend))
    assert torch.equal(EAN(16, groups=4, implementation=backend).to(x.device)(x), 0.5 * x)


@pytest.mark.parametrize('backend', BACKENDS)
def test_channels_last_input(backend):
    if backend == 'cpp' and not ean_ops.cpp_available():
        pytest.skip('ean_mm._C not built')
    dev = device_for(backend)
    layer = randomized(EAN(16, groups=4, implementation=backend)).to(dev)
    x = torch.randn(2, 16, 5, 6).to(dev).to(memory_format=torch.channels_last)
    upstream = torch.randn(2, 16, 5, 6).to(dev)
    for name, a, b in zip(NAMES, results(layer, x, upstream), reference(layer, x, upstream)):
        assert relative_error(a, b) <= 1e-4, name


@pytest.mark.parametrize('backend', BACKENDS)
def test_parameter_gradients_without_input_gradient(backend):
    if backend == 'cpp' and not ean_ops.cpp_available():
        pytest.skip('ean_mm._C not built')
    dev = device_for(backend)
    layer = randomized(EAN(12, groups=3, implementation=backend)).to(dev)
    x = torch.randn(2, 12, 4, 4).to(dev)  # no requires_grad: a first layer's input
    upstream = torch.randn_like(x)
    got = torch.autograd.grad(layer(x), params(layer), upstream)
    for name, a, b in zip(NAMES[2:], got, reference(layer, x, upstream)[2:]):
        assert relative_error(a, b) <= 1e-4, name


@pytest.mark.parametrize('backend', BACKENDS)
def test_layer_keeps_only_its_input_at_full_size(backend):
    if backend == 'cpp' and not ean_ops.cpp_available():
        pytest.skip('ean_mm._C not built')
    dev = device_for(backend)
    layer = randomized(EAN(16, groups=4, implementation=backend)).to(dev)
    x = torch.randn(2, 16, 8, 8, device=dev, requires_grad=True)
    saved = []

    def pack(t):
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer(x)
    assert sum(n == x.numel() for n in saved) == 1  # x itself; no activation-sized copy
    # the rest: mu, rstd per plane, and the C/G-vectors of kernel_vectors' small ops
    assert sum(saved) - x.numel() <= 2 * 2 * 16 + 16 * 4


@needs_cpp
def test_auto_is_the_cpp_kernel_on_cpu_and_warns_once_without_it(monkeypatch):
    assert ean_ops.resolve_backend('auto', torch.device('cpu')) == 'cpp'
    monkeypatch.setattr(ean_ops, '_C', None)
    monkeypatch.setattr(ean_ops, '_warned', False)
    with pytest.warns(RuntimeWarning, match='ean_mm._C is not built.*pip install'):
        assert ean_ops.resolve_backend('auto', torch.device('cpu')) == 'torch'
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        layer = EAN(8, groups=2)
        layer(torch.randn(1, 8, 3, 3))  # runs, on PyTorch ops, without a second warning
    with pytest.raises(RuntimeError, match='needs CUDA tensors'):
        monkeypatch.setenv('TRITON_INTERPRET', '0')
        EAN(8, groups=2, implementation='triton')(torch.randn(1, 8, 3, 3))


# ------------------------------------------------------------------ BatchNorm2d + EAN
def bn_ean(c=16, g=4, impl='auto'):
    bn = torch.nn.BatchNorm2d(c)
    ean = randomized(EAN(c, groups=g, implementation=impl))
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_()
    return bn, ean


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('train', [True, False], ids=['batch statistics', 'frozen (norm_eval)'])
def test_batchnorm_ean_step_equals_the_two_layers(train, backend):
    if backend == 'cpp' and not ean_ops.cpp_available():
        pytest.skip('ean_mm._C not built')
    dev = device_for(backend)
    bn, ean = bn_ean(impl=backend)
    bn2, ean2 = bn_ean(impl=backend)
    with torch.no_grad():
        bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2)
    bn2.load_state_dict(bn.state_dict())
    ean2.load_state_dict(ean.state_dict())
    for m in (bn, ean, bn2, ean2):
        m.to(dev)
    bn.train(train), bn2.train(train)
    x = torch.randn(2, 16, 7, 9, device=dev, requires_grad=True)
    upstream = torch.randn(2, 16, 7, 9, device=dev)
    y = ean.forward_after_norm(bn, x)
    y2 = ean2(bn2(x))
    # training: the norm's own kernel, then EAN's; frozen: the norm folded into EAN's kernel,
    # which the C++ kernel rounds as PyTorch's CPU norm does (the other kernels differ in rounding)
    if train or backend == 'cpp':
        assert torch.equal(y, y2)
    else:
        torch.testing.assert_close(y, y2, rtol=1e-5, atol=1e-6)
    assert torch.equal(bn.running_mean, bn2.running_mean) and \
        torch.equal(bn.num_batches_tracked, bn2.num_batches_tracked)
    got = torch.autograd.grad(y, [x, bn.weight, bn.bias] + params(ean), upstream)
    want = torch.autograd.grad(y2, [x, bn2.weight, bn2.bias] + params(ean2), upstream)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('backend', BACKENDS)
def test_inference_folds_the_frozen_norm_into_one_kernel(backend, monkeypatch):
    if backend == 'cpp' and not ean_ops.cpp_available():
        pytest.skip('ean_mm._C not built')
    dev = device_for(backend)
    bn, ean = bn_ean(impl=backend)
    with torch.no_grad():
        bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2)
    bn.eval().to(dev), ean.to(dev)
    x = torch.randn(2, 16, 7, 9, device=dev) * 2
    with torch.no_grad():
        want = ean(bn(x))
        calls = []
        monkeypatch.setattr(torch, 'native_batch_norm', lambda *a: calls.append(a))
        monkeypatch.setattr(torch.nn.functional, 'batch_norm', lambda *a, **k: calls.append(a))
        got = ean.forward_after_norm(bn, x)
    assert not calls  # the norm did not run on its own
    if backend == 'cpp':  # its fold rounds as PyTorch's CPU norm does
        assert torch.equal(got, want)
    else:
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_reverted_sync_batchnorm_takes_the_joint_step(monkeypatch):
    """mmengine's Runner turns SyncBN (RTMDet's configs) into ``_BatchNormXd`` outside
    distributed runs: EAN after it takes the joint step too, with the same values."""
    from mmengine.model.utils import revert_sync_batchnorm
    bn = revert_sync_batchnorm(torch.nn.SyncBatchNorm(16))
    bn2, ean = bn_ean()
    bn.load_state_dict(bn2.state_dict())
    x = torch.randn(2, 16, 7, 9)
    want = ean(bn2(x))
    monkeypatch.setattr(type(bn), 'forward', lambda *a: pytest.fail('the norm ran on its own'))
    assert torch.equal(ean.forward_after_norm(bn, x), want)


def saved_bytes(fn) -> int:
    """Bytes of the distinct tensors autograd keeps for backward while ``fn`` runs."""
    seen = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_ean_block_keeps_no_more_than_the_plain_block(dtype):
    # EAN-ResNet-50 in training keeps what ResNet-50 keeps, plus per-plane statistics only;
    # under bf16 autocast in bf16 (the EAN step keeps no float32 copy).
    torch.manual_seed(0)
    plain = EANResNet(depth=50, out_indices=(0, )).layer1[0]
    ean_block = EANResNet(depth=50, out_indices=(0, )).layer1[0]
    plain.ean = torch.nn.Identity()
    x = torch.randn(2, 64, 28, 28, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        plain_bytes = saved_bytes(lambda: plain(x))
        ean_bytes = saved_bytes(lambda: ean_block(x))
        out = ean_block(x)
    assert out.dtype == dtype
    planes = 2 * 256  # N x C of the conv3 output
    assert ean_bytes - plain_bytes <= 2 * planes * 4 + 4096, (ean_bytes, plain_bytes)


# ------------------------------------------------------------------ compile and export
def test_torch_compile_keeps_the_custom_ops():
    net = EANResNet(depth=18, ean_groups=32).train()
    x = torch.randn(2, 3, 32, 32)
    compiled = torch.compile(net, backend='aot_eager', fullgraph=False)
    out, want = compiled(x)[-1], net(x)[-1]
    torch.testing.assert_close(out, want)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_torch_export_has_ean_nodes_and_runs():
    net = EANResNet(depth=18, ean_groups=32).eval()
    x = torch.randn(1, 3, 32, 32)
    program = torch.export.export(net, (x, ))
    ops = {str(node.target) for node in program.graph.nodes if node.op == 'call_function'}
    assert 'ean_mm.ean_forward.default' in ops
    torch.testing.assert_close(program.module()(x)[-1], net(x)[-1])


# ------------------------------------------------------------------ K-vectors in one launch
@pytest.mark.parametrize('omega', ['l2', 'l2_mean', 'l1_mean'])
@pytest.mark.parametrize('k', [1, 7, 32])
def test_triton_kernel_vectors_and_their_gradients(omega, k):
    from ean_mm.models.layers.ean_vectors_triton import triton_kernel_vectors
    layer = randomized(EAN(3 * k, groups=3, omega=omega)).to(DEVICE)
    upstream = torch.randn(k, device=DEVICE), torch.randn(k, device=DEVICE)
    got = triton_kernel_vectors(layer.gn.weight, layer.gn.bias, layer.alpha, layer.delta, omega,
                                layer.l2_eps)
    got_grads = torch.autograd.grad(got, params(layer), upstream)
    want = layer.double().kernel_vectors(torch.float64)  # the PyTorch ops, in float64
    want_grads = torch.autograd.grad(want, params(layer), [u.double() for u in upstream])
    for name, a, b in zip(['ag', 'sh0'] + NAMES[2:], list(got) + list(got_grads),
                          list(want) + list(want_grads)):
        assert a.dtype == torch.float32 and relative_error(a, b) <= 1e-5, name


def test_triton_frozen_affine():
    from ean_mm.models.layers.ean_vectors_triton import AFFINE_BLOCK, triton_frozen_affine
    c = AFFINE_BLOCK + 5  # two programs, the second partial
    bn = torch.nn.BatchNorm2d(c).eval()
    with torch.no_grad():
        bn.weight.normal_(), bn.bias.normal_(), bn.running_mean.normal_()
        bn.running_var.uniform_(0.1, 3)
    x = torch.randn(2, c, 3, 3)
    a, b = triton_frozen_affine(*(t.to(DEVICE) for t in (bn.weight, bn.bias, bn.running_mean,
                                                         bn.running_var)), bn.eps)
    with torch.no_grad():
        want = bn.double()(x.double())
    got = a.cpu().double().view(1, c, 1, 1) * x.double() + b.cpu().double().view(1, c, 1, 1)
    assert relative_error(got, want) <= 1e-6
