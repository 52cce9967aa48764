"""Files the tools write whole (checkpoint converters, the ONNX export) get the permissions of
any new file there: ``0o666`` less the umask, not ``tempfile``'s ``0o600``."""
import os
import stat
from contextlib import contextmanager

import pytest
import torch
from conftest import load_tool

from ean_mm.utils import atomic_write


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize('mask', [0o022, 0o002, 0o077])
def test_checkpoint_converter_output_gets_the_umask(mask, tmp_path, capsys):
    from reference_mobilenext import official_state_dict
    src, dst = tmp_path / 'authors.pth', tmp_path / 'out' / 'mobilenext_in1k.pth'
    torch.save(official_state_dict(), src)
    with umask(mask):
        code = load_tool('tools/model_converters/mobilenext_official.py').main(
            [str(src), str(dst)])
    assert code == 0, capsys.readouterr().err
    assert mode(dst) == 0o666 & ~mask
    assert sorted(p.name for p in dst.parent.iterdir()) == ['mobilenext_in1k.pth']


def test_onnx_export_gets_the_umask(tmp_path, monkeypatch):
    # export_onnx's own write path; torch's exporter replaced by a tiny valid program
    onnx = pytest.importorskip('onnx')
    from detection_runs import fake_onnx_export

    from ean_mm.deploy import export_onnx
    fake_onnx_export(monkeypatch)
    out = tmp_path / 'detector.onnx'
    with umask(0o022):
        export_onnx(torch.nn.Identity(), str(out), (4, 4))
    assert mode(out) == 0o644  # was 0o600
    assert onnx.load(str(out)).graph.node[0].op_type == 'Identity'
    assert [p.name for p in tmp_path.iterdir()] == ['detector.onnx']


def test_atomic_write_replaces_whole_or_leaves_the_old_file(tmp_path):
    path = tmp_path / 'f.bin'
    path.write_bytes(b'old')
    with pytest.raises(RuntimeError):
        with atomic_write(str(path)) as f:
            f.write(b'half')
            raise RuntimeError('interrupted')
    assert path.read_bytes() == b'old' and [p.name for p in tmp_path.iterdir()] == ['f.bin']
    with umask(0o027), atomic_write(str(path)) as f:
        f.write(b'new')
    assert path.read_bytes() == b'new' and mode(path) == 0o640
