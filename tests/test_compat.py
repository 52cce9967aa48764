"""Tests of ``ean_mm.checkpoint.safe_globals`` (safe checkpoint loading) and ``CompatSSDHead``.

Checkpoint part: a real MMEngine ``Runner`` trains a toy model for a few CPU iterations and saves
checkpoints; they are then resumed / tested from with torch's default ``weights_only=True``
loading. The torch allow-list is process-wide state, so every test that depends on it starts
from a known allow-list (fixtures ``no_safe_globals`` / ``allowed``) and restores the previous
one afterwards.

SSD part: mmdet 3.3.0's SSDLite-MobileNetV2 detector, built from its config, on two 128x128 images.
"""
import copy
import os.path as osp
import pickle
import shutil
import uuid
import zipfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import mmdet
import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine import Config
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import CheckpointLoader, Runner, load_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint
from mmengine.structures import InstanceData
from torch.utils.data import Dataset

from ean_mm.checkpoint import allow_mmengine_checkpoint_globals, mmengine_checkpoint_safe_globals
from ean_mm.models.dense_heads import CompatSSDHead

# --------------------------------------------------------------------------------------------
# Allow-list state
# --------------------------------------------------------------------------------------------

#: The checkpoint tests are about torch >= 2.6, whose ``torch.load`` defaults to weights_only.
needs_weights_only_default = pytest.mark.skipif(
    torch.torch_version.TorchVersion(torch.__version__) < (2, 6),
    reason='torch < 2.6 does not load with weights_only=True by default')


@pytest.fixture
def no_safe_globals() -> Iterator[None]:
    """Torch's default allow-list only (as without ``ean_mm``); the previous one is restored."""
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        yield
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(saved)


@pytest.fixture
def allowed(no_safe_globals: None) -> List[str]:
    """Torch's default allow-list plus exactly ``allow_mmengine_checkpoint_globals``'s entries."""
    return allow_mmengine_checkpoint_globals()


# --------------------------------------------------------------------------------------------
# A toy MMEngine training run
# --------------------------------------------------------------------------------------------

TRAIN_ITERS = 4
NUMPY_MULTIARRAY = 'numpy._core.multiarray' if int(np.__version__.split('.')[0]) >= 2 \
    else 'numpy.core.multiarray'
#: The globals (beyond torch's defaults) in an MMEngine 0.10.7 Runner checkpoint.
MMENGINE_CHECKPOINT_GLOBALS = {
    'mmengine.logging.history_buffer.HistoryBuffer',
    'numpy.ndarray',
    'numpy.dtype',
    f'{NUMPY_MULTIARRAY}._reconstruct',
    f'{NUMPY_MULTIARRAY}.scalar',
    'builtins.getattr',
}


class ToyModel(BaseModel):
    """Linear regression behind a BatchNorm (so the state has buffers too)."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(2)
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor, mode: str = 'tensor') -> Any:
        out = self.linear(self.bn(inputs)).squeeze(-1)
        if mode == 'loss':
            return dict(loss=((out - targets)**2).mean())
        if mode == 'predict':
            return [dict(pred=p, target=t) for p, t in zip(out, targets)]
        return out


class ToyDataset(Dataset):
    """16 samples of ``y = x0 + x1``."""

    metainfo = dict(classes=('toy', ))

    def __init__(self) -> None:
        self.inputs = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
        self.targets = self.inputs.sum(1)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, idx: int) -> Dict[str, torch.Tensor]:
        return dict(inputs=self.inputs[idx], targets=self.targets[idx])


class ToyMetric(BaseMetric):
    """Mean squared error, returned as a numpy scalar as many metrics do."""

    default_prefix = 'toy'

    def process(self, data_batch: Any, data_samples: List[dict]) -> None:
        self.results.extend(float((s['pred'] - s['target'])**2) for s in data_samples)

    def compute_metrics(self, results: list) -> Dict[str, np.float64]:
        return dict(mse=np.float64(np.mean(results)))


class StateAtTrainStart(Hook):
    """Records what the runner holds when training starts, i.e. right after resuming."""

    def __init__(self) -> None:
        self.state: Dict[str, Any] = {}

    def before_train(self, runner: Runner) -> None:
        self.state = dict(
            iter=runner.iter,
            optimizer=copy.deepcopy(runner.optim_wrapper.optimizer.state_dict()),
            scheduler_steps=[(s.last_step, s._global_step) for s in runner.param_schedulers],
            loss_history=copy.deepcopy(runner.message_hub.get_scalar('train/loss').data),
            best_score=runner.message_hub.get_info('best_score'),
            weights=copy.deepcopy(runner.model.state_dict()))


def _loader(shuffle: bool) -> dict:
    return dict(
        dataset=ToyDataset(),
        sampler=dict(type='DefaultSampler', shuffle=shuffle),
        collate_fn=dict(type='default_collate'),
        batch_size=4,
        num_workers=0)


def _train_runner(work_dir: str, max_iters: int, resume: bool = False,
                  hooks: Optional[List[Hook]] = None) -> Runner:
    """A Runner with everything that ends up in a checkpoint: optimizer and scheduler states,
    validation with ``save_best`` (numpy ``best_score``), ``EMAHook``."""
    return Runner(
        model=ToyModel(),
        work_dir=work_dir,
        experiment_name=f'toy_{uuid.uuid4().hex}',  # own MessageHub / logger per Runner
        train_dataloader=_loader(shuffle=True),
        val_dataloader=_loader(shuffle=False),
        val_evaluator=dict(type=ToyMetric),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=2),
        val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
            dict(type='MultiStepLR', milestones=[3], by_epoch=False),
        ],
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook', interval=2, by_epoch=False, save_best='toy/mse',
                rule='less')),
        custom_hooks=[dict(type='EMAHook')] + list(hooks or []),
        resume=resume,
        randomness=dict(seed=0),
        log_level='WARNING',
        default_scope='mmengine')


@pytest.fixture(scope='module')
def trained_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Work dir of a finished ``TRAIN_ITERS``-iteration run (``iter_2.pth``, ``iter_4.pth``).

    The checkpoints are the real Runner's; the entries the tests read (``meta['iter']``,
    ``state_dict``, ``message_hub``, ``optimizer``, ``param_schedulers``) are those of
    open-mmlab/mmengine ``mmengine/runner/runner.py`` @ 0050ff70b73e047defe9db0c3bb01555038596b7
    ``Runner.save_checkpoint``; ``ema_state_dict`` (``module.<key>``, swapped with
    ``state_dict``) is ``mmengine/hooks/ema_hook.py`` @ 4b9d59059f21110d8c90306c901d2819c02e4298
    ``before_save_checkpoint``; ``HistoryBuffer`` pickles its statistics methods
    (``builtins.getattr``) by ``mmengine/logging/history_buffer.py`` @
    c9d8c463745a01ea0db79339b994613089bf7da8 ``__getstate__`` (installed 0.10.7: same layout)."""
    work_dir = str(tmp_path_factory.mktemp('toy_run'))
    _train_runner(work_dir, TRAIN_ITERS).train()
    assert osp.isfile(osp.join(work_dir, f'iter_{TRAIN_ITERS}.pth'))
    return work_dir


@pytest.fixture(scope='module')
def checkpoint(trained_dir: str) -> str:
    return osp.join(trained_dir, f'iter_{TRAIN_ITERS}.pth')


def _resumable_work_dir(checkpoint: str, work_dir: Path) -> str:
    """A fresh work dir from which ``Runner(resume=True)`` resumes ``checkpoint`` (the one named
    in its ``last_checkpoint`` file), leaving the module's training run untouched. File name and
    content (the checkpoint's path): open-mmlab/mmengine ``mmengine/runner/checkpoint.py`` @
    989bb497c5f3b1ece3031f377a117029eb671110 ``find_latest_checkpoint``."""
    (work_dir / 'last_checkpoint').write_text(shutil.copy(checkpoint, work_dir))
    return str(work_dir)


# --------------------------------------------------------------------------------------------
# Checkpoint tests
# --------------------------------------------------------------------------------------------


@needs_weights_only_default
def test_checkpoint_globals_are_exactly_the_allow_listed_ones(no_safe_globals: None,
                                                              checkpoint: str) -> None:
    # (reports the globals that are neither torch defaults nor currently allow-listed)
    found = set(torch.serialization.get_unsafe_globals_in_checkpoint(checkpoint))
    assert found == MMENGINE_CHECKPOINT_GLOBALS
    assert found <= set(allow_mmengine_checkpoint_globals())


@needs_weights_only_default
def test_default_weights_only_load_fails_without_allow_list(no_safe_globals: None,
                                                            checkpoint: str,
                                                            tmp_path: Path) -> None:
    with pytest.raises(pickle.UnpicklingError, match='Weights only load failed'):
        _load_checkpoint(checkpoint, map_location='cpu')
    runner = _train_runner(_resumable_work_dir(checkpoint, tmp_path), TRAIN_ITERS + 2,
                           resume=True)
    with pytest.raises(pickle.UnpicklingError, match='Weights only load failed'):
        runner.train()


@needs_weights_only_default
def test_resume_restores_iteration_optimizer_and_message_hub(allowed: List[str], checkpoint: str,
                                                             tmp_path: Path) -> None:
    saved = torch.load(checkpoint, map_location='cpu')  # default weights_only=True
    probe = StateAtTrainStart()
    work_dir = _resumable_work_dir(checkpoint, tmp_path)
    runner = _train_runner(work_dir, TRAIN_ITERS + 2, resume=True, hooks=[probe])
    runner.train()

    state = probe.state
    assert state['iter'] == TRAIN_ITERS == saved['meta']['iter']
    adam_steps = [float(s['step']) for s in state['optimizer']['state'].values()]
    assert adam_steps and all(step == TRAIN_ITERS for step in adam_steps)
    assert state['optimizer']['param_groups'][0]['lr'] == \
        saved['optimizer']['param_groups'][0]['lr']
    assert state['scheduler_steps'] == [(s['last_step'], s['_global_step'])
                                        for s in saved['param_schedulers']]
    assert state['scheduler_steps'][-1][1] == TRAIN_ITERS
    saved_loss = saved['message_hub']['log_scalars']['train/loss']
    assert isinstance(saved_loss, HistoryBuffer)
    assert len(state['loss_history'][0]) == TRAIN_ITERS
    np.testing.assert_array_equal(state['loss_history'][0], saved_loss.data[0])
    assert isinstance(state['best_score'], np.floating)
    assert state['best_score'] == saved['message_hub']['runtime_info']['best_score']
    # EMAHook saves the averaged weights as `state_dict` and the trained ones under
    # `ema_state_dict['module.<key>']`; resuming swaps them back.
    for key, value in saved['state_dict'].items():
        trained = saved['ema_state_dict'].get(f'module.{key}', value)
        torch.testing.assert_close(state['weights'][key], trained)
    # and training went on from there
    assert runner.iter == TRAIN_ITERS + 2
    assert osp.isfile(osp.join(work_dir, f'iter_{TRAIN_ITERS + 2}.pth'))


@needs_weights_only_default
def test_test_and_load_checkpoint_from_checkpoint(allowed: List[str], checkpoint: str,
                                                  tmp_path: Path) -> None:
    saved = torch.load(checkpoint, map_location='cpu')

    runner = Runner(
        model=ToyModel(),
        work_dir=str(tmp_path),
        experiment_name=f'toy_test_{uuid.uuid4().hex}',
        test_dataloader=_loader(shuffle=False),
        test_evaluator=dict(type=ToyMetric),
        test_cfg=dict(),
        load_from=checkpoint,
        log_level='WARNING',
        default_scope='mmengine')
    metrics = runner.test()
    assert np.isfinite(metrics['toy/mse'])
    for key, value in saved['state_dict'].items():
        torch.testing.assert_close(runner.model.state_dict()[key], value)

    model = ToyModel()
    loaded = load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    assert loaded['meta']['iter'] == TRAIN_ITERS
    torch.testing.assert_close(model.linear.weight, saved['state_dict']['linear.weight'])
    assert CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')['meta']['iter'] \
        == TRAIN_ITERS


def _payload_call(*args: Any) -> None:
    """What a malicious checkpoint would run; records that it ran."""
    _payload_call.calls.append(args)  # type: ignore[attr-defined]


_payload_call.calls = []  # type: ignore[attr-defined]


class _Payload:
    """Unpickles by calling :func:`_payload_call` (the shape of a code-execution exploit)."""

    def __reduce__(self) -> tuple:
        return (_payload_call, ('pwned', ))


class _PlainObject:
    """An ordinary class that nobody allow-listed."""

    def __init__(self) -> None:
        self.value = 1


class _GetattrAbuse:
    """Pickles as ``getattr(HistoryBuffer, 'register_statistics')``: a getattr that is not one of
    the statistics MMEngine pickles."""

    def __reduce__(self) -> tuple:
        return (getattr, (HistoryBuffer, 'register_statistics'))


@needs_weights_only_default
@pytest.mark.parametrize(
    'payload, message', [
        (_Payload(), 'Unsupported global'),
        (_PlainObject(), 'Unsupported global'),
        (_GetattrAbuse(), 'register_statistics'),
        (np.array([1, 'a', None], dtype=object), 'ObjectDType'),
    ],
    ids=['reduce-call', 'plain-class', 'getattr', 'object-array'])
def test_non_allow_listed_content_is_still_rejected(allowed: List[str], checkpoint: str,
                                                    tmp_path: Path, payload: object,
                                                    message: str) -> None:
    ckpt = torch.load(checkpoint, map_location='cpu')
    ckpt['meta']['payload'] = payload
    path = str(tmp_path / 'tampered.pth')
    torch.save(ckpt, path)
    _payload_call.calls.clear()  # type: ignore[attr-defined]
    with pytest.raises(pickle.UnpicklingError, match=message):
        _load_checkpoint(path, map_location='cpu')
    assert _payload_call.calls == []  # type: ignore[attr-defined]


@needs_weights_only_default
def test_numpy1_checkpoint_paths_load(allowed: List[str], checkpoint: str, tmp_path: Path) -> None:
    """A checkpoint written under numpy 1 names ``numpy.core.multiarray``, one under numpy 2
    ``numpy._core.multiarray``; both load whatever numpy is installed."""
    saved = torch.load(checkpoint, map_location='cpu')
    for old, new in ((b'numpy._core.multiarray', b'numpy.core.multiarray'),
                     (b'numpy.core.multiarray', b'numpy._core.multiarray')):
        path = str(tmp_path / f'{new.decode()}.pth')
        with zipfile.ZipFile(checkpoint) as src, zipfile.ZipFile(path, 'w') as dst:
            for info in src.infolist():
                data = src.read(info.filename)
                if info.filename.endswith('/data.pkl'):
                    data = data.replace(old, new)
                    assert new + b'\n_reconstruct\n' in data and old not in data
                dst.writestr(info.filename, data)
        loaded = _load_checkpoint(path, map_location='cpu')
        np.testing.assert_array_equal(loaded['message_hub']['log_scalars']['train/loss'].data[0],
                                      saved['message_hub']['log_scalars']['train/loss'].data[0])
        assert loaded['message_hub']['runtime_info']['best_score'] == \
            saved['message_hub']['runtime_info']['best_score']


@needs_weights_only_default
def test_allow_list_is_idempotent(allowed: List[str]) -> None:
    before = torch.serialization.get_safe_globals()
    assert allow_mmengine_checkpoint_globals() == allowed
    assert len(torch.serialization.get_safe_globals()) == len(before)
    assert len(mmengine_checkpoint_safe_globals()) == len(allowed)
    # 'builtins.getattr' is bound to the restricted stand-in, never to the real getattr
    assert 'builtins.getattr' in allowed
    assert all((e[0] if isinstance(e, tuple) else e) is not getattr
               for e in torch.serialization.get_safe_globals())


# --------------------------------------------------------------------------------------------
# SSDHead / CompatSSDHead
# --------------------------------------------------------------------------------------------

SSDLITE_CONFIG = 'ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py'
IMG_SIZE = 128


@pytest.fixture(scope='module')
def ssdlite_cfg() -> Config:
    """mmdet's SSDLite-MobileNetV2 config (``mmdet::ssd/...``); mmdet registered, default scope
    mmdet. Read from the installed mmdet 3.3.0 ``.mim/configs/ssd/`` (the file is the package's
    own, not a copy)."""
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    # `Config.fromfile` does not resolve `mmdet::` itself (only `_base_` and mmengine.hub do);
    # the package's `.mim/configs` is the folder that prefix stands for.
    cfg = Config.fromfile(osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', SSDLITE_CONFIG))
    assert cfg.model.bbox_head.type == 'SSDHead'
    cfg.model.test_cfg.score_thr = 0.0  # an untrained head scores about 1/81 everywhere
    return cfg


def _build_detector(cfg: Config, head_type: str) -> nn.Module:
    from mmdet.registry import MODELS
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.bbox_head.type = head_type
    torch.manual_seed(0)
    return MODELS.build(model_cfg)


def _batch(model: nn.Module, training: bool) -> dict:
    from mmdet.structures import DetDataSample
    images = [torch.randint(0, 256, (3, IMG_SIZE, IMG_SIZE), dtype=torch.uint8,
                            generator=torch.Generator().manual_seed(i)) for i in range(2)]
    samples = []
    for i in range(2):
        sample = DetDataSample(metainfo=dict(
            img_id=i, img_shape=(IMG_SIZE, IMG_SIZE), ori_shape=(IMG_SIZE, IMG_SIZE),
            scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[10.0, 12.0, 70.0, 90.0], [60.0, 50.0, 120.0, 110.0]]),
            labels=torch.tensor([3, 17]))
        samples.append(sample)
    return model.data_preprocessor(dict(inputs=images, data_samples=samples), training)


def test_stock_ssd_head_predict_raises(ssdlite_cfg: Config) -> None:
    """The upstream bug (mmdet #11063 / #11780), so this test file can fail."""
    model = _build_detector(ssdlite_cfg, 'SSDHead').eval()
    data = _batch(model, training=False)
    with torch.no_grad(), pytest.raises(AttributeError, match="no attribute 'loss_cls'"):
        model.predict(data['inputs'], data['data_samples'])


def test_compat_ssd_head_predicts(ssdlite_cfg: Config) -> None:
    model = _build_detector(ssdlite_cfg, 'ean_mm.CompatSSDHead').eval()
    assert isinstance(model.bbox_head, CompatSSDHead)
    assert model.bbox_head.use_sigmoid_cls is False
    assert model.bbox_head.loss_cls.use_sigmoid is False
    data = _batch(model, training=False)
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
    from mmdet.structures import DetDataSample
    assert len(results) == 2
    max_per_img = ssdlite_cfg.model.test_cfg.max_per_img
    for result in results:
        assert isinstance(result, DetDataSample)
        pred = result.pred_instances
        num = len(pred)
        assert 0 < num <= max_per_img
        assert pred.bboxes.shape == (num, 4)
        assert pred.scores.shape == (num, ) and pred.labels.shape == (num, )
        assert ((pred.scores >= 0) & (pred.scores <= 1)).all()
        assert ((pred.labels >= 0) & (pred.labels < model.bbox_head.num_classes)).all()
        assert ((pred.bboxes >= 0) & (pred.bboxes <= IMG_SIZE)).all()


def test_compat_ssd_head_matches_stock_head(ssdlite_cfg: Config) -> None:
    """Same checkpoint keys, same losses, and the same predictions as the stock head once the one
    missing attribute is supplied: the fix changes nothing else."""
    compat = _build_detector(ssdlite_cfg, 'ean_mm.CompatSSDHead')
    stock = _build_detector(ssdlite_cfg, 'SSDHead')
    stock.load_state_dict(compat.state_dict(), strict=True)  # checkpoints are interchangeable
    assert compat.state_dict().keys() == stock.state_dict().keys()

    compat.train()
    stock.train()
    data = _batch(compat, training=True)
    compat_losses = compat.loss(data['inputs'], data['data_samples'])
    stock_losses = stock.loss(data['inputs'], data['data_samples'])
    assert set(compat_losses) == {'loss_cls', 'loss_bbox'}
    for key in compat_losses:
        torch.testing.assert_close(torch.stack(compat_losses[key]), torch.stack(stock_losses[key]))
    total = sum(torch.stack(v).sum() for v in compat_losses.values())
    assert torch.isfinite(total)
    total.backward()
    grad = compat.bbox_head.cls_convs[0][-1].weight.grad
    assert grad is not None and grad.abs().sum() > 0

    compat.eval()
    stock.eval()
    stock.bbox_head.loss_cls = None  # the precise cause: only this attribute is missing
    data = _batch(compat, training=False)
    with torch.no_grad():
        compat_pred = compat.predict(data['inputs'], data['data_samples'])
        stock_pred = stock.predict(data['inputs'], data['data_samples'])
    for a, b in zip(compat_pred, stock_pred):
        for field in ('bboxes', 'scores', 'labels'):
            torch.testing.assert_close(a.pred_instances[field], b.pred_instances[field])
