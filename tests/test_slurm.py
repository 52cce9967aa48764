"""tools/slurm_train.sh, tools/slurm_test.sh and ``mim train ean_mm ... --launcher slurm`` under
stand-in ``srun`` / ``scontrol`` (written here onto PATH): srun starts its tasks as local
processes with the SLURM_* variables a Slurm step gives them and mmengine 0.10.7's Slurm launcher
reads (``mmengine/dist/utils.py`` ``_init_dist_slurm``: SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID,
SLURM_NODELIST, the first host from ``scontrol show hostname``), so two tasks really train and
test on this CPU-only machine (gloo)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
from conftest import ROOT
from detection_runs import METRIC, last_iteration, small_run_options

from ean_mm.utils import InputError
from ean_mm.utils.config import slurm_env

CONFIG = 'configs/ssdlite320_ean_mobilenext_voc.py'

# A Slurm step in miniature. Options as srun takes them (those the scripts and mim pass, any
# other --name=value from SRUN_ARGS); the tasks get the variables of a real step. Nodes are
# loopback addresses (127.0.0.1, 127.0.0.2, ...) so that the first node's name is a reachable
# master address; --ntasks-per-node tasks per node. Everything srun saw is appended to
# $FAKE_SLURM_LOG as JSON lines; FAKE_SRUN_DRY=1 records without starting the tasks.
SRUN = r'''#!PYTHON
import json, os, subprocess, sys
argv = sys.argv[1:]
opts, i = {}, 0
while i < len(argv) and argv[i].startswith('-'):
    arg = argv[i]
    if arg in ('-p', '--partition', '-J', '-n', '-N'):
        opts[arg], i = argv[i + 1], i + 2
    elif '=' in arg:
        key, value = arg.split('=', 1)
        opts[key], i = value, i + 1
    else:
        opts[arg], i = True, i + 1
command = argv[i:]
ntasks = int(opts.get('--ntasks', opts.get('-n', 1)))
per_node = int(opts.get('--ntasks-per-node', ntasks))
nnodes = -(-ntasks // per_node)
nodes = f'127.0.0.[1-{nnodes}]' if nnodes > 1 else '127.0.0.1'
log = open(os.environ['FAKE_SLURM_LOG'], 'a')
print(json.dumps(dict(tool='srun', options=opts, command=command)), file=log, flush=True)
if os.environ.get('FAKE_SRUN_DRY') == '1':
    sys.exit(0)
tasks = []
for rank in range(ntasks):
    env = dict(os.environ, SLURM_PROCID=str(rank), SLURM_NTASKS=str(ntasks),
               SLURM_LOCALID=str(rank % per_node), SLURM_NODEID=str(rank // per_node),
               SLURM_NODELIST=nodes, SLURM_STEP_NODELIST=nodes, SLURM_NNODES=str(nnodes),
               SLURM_NTASKS_PER_NODE=str(per_node), SLURM_JOB_ID='4242',
               SLURM_JOB_NAME=str(opts.get('--job-name', opts.get('-J', ''))),
               SLURM_CPUS_PER_TASK=str(opts.get('--cpus-per-task', 1)))
    tasks.append(subprocess.Popen(command, env=env))
codes = [None] * ntasks
while None in codes:
    for rank, task in enumerate(tasks):
        if codes[rank] is None:
            try:
                codes[rank] = task.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
            if codes[rank] != 0 and opts.get('--kill-on-bad-exit') == '1':
                for other in tasks:
                    if other.poll() is None:
                        other.kill()
for rank, code in enumerate(codes):
    print(json.dumps(dict(tool='task', rank=rank, returncode=code)), file=log, flush=True)
sys.exit(max(abs(c) for c in codes))
'''

# `scontrol show hostname LIST`: one host per line, a LIST like 127.0.0.[1-2] expanded.
SCONTROL = r'''#!PYTHON
import json, os, re, sys
assert sys.argv[1:3] == ['show', 'hostname'], sys.argv
hosts = []
for item in sys.argv[3].split(','):
    m = re.fullmatch(r'(.*)\[(\d+)-(\d+)\]', item)
    hosts += [f'{m[1]}{k}' for k in range(int(m[2]), int(m[3]) + 1)] if m else [item]
with open(os.environ['FAKE_SLURM_LOG'], 'a') as log:
    print(json.dumps(dict(tool='scontrol', args=sys.argv[1:], hosts=hosts)), file=log)
print('\n'.join(hosts))
'''


@pytest.fixture
def fake_slurm(tmp_path) -> Dict:
    """PATH with the stand-ins first (the venv's python and mim next), the log they write."""
    bin_dir = tmp_path / 'slurm_bin'
    bin_dir.mkdir()
    for name, text in (('srun', SRUN), ('scontrol', SCONTROL)):
        path = bin_dir / name
        path.write_text(text.replace('PYTHON', sys.executable, 1))
        path.chmod(0o755)
    log = tmp_path / 'slurm.jsonl'
    env = {k: v for k, v in os.environ.items() if not k.startswith(('SLURM_', 'MASTER_'))}
    env.update(PATH=os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent),
                                     env.get('PATH', '')]),
               FAKE_SLURM_LOG=str(log), PYTHON=sys.executable, OMP_NUM_THREADS='1')
    return dict(env=env, log=log)


def records(log: Path, tool: str) -> List[dict]:
    if not log.exists():
        return []
    return [r for r in map(json.loads, log.read_text().splitlines()) if r['tool'] == tool]


def run(cmd: List[str], env: dict, timeout: int = 300) -> str:
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    return out


def free_port() -> str:
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def test_scripts_pass_mmdets_srun_options(fake_slurm, tmp_path):
    # The interface of mmdet's scripts: positional PARTITION JOB_NAME CONFIG WORK_DIR|CHECKPOINT,
    # GPUS / GPUS_PER_NODE / CPUS_PER_TASK / SRUN_ARGS into srun, extra arguments to the tool.
    env = dict(fake_slurm['env'], FAKE_SRUN_DRY='1', GPUS='16', GPUS_PER_NODE='8',
               CPUS_PER_TASK='3', SRUN_ARGS='--quotatype=auto --time=1:00:00')
    run(['bash', 'tools/slurm_train.sh', 'gpu', 'ean_job', CONFIG, 'work_dirs/x',
         '--cfg-options', 'train_cfg.max_iters=5'], env)
    run(['bash', 'tools/slurm_test.sh', 'gpu', 'ean_test', CONFIG, 'ckpt.pth', '--out', 'r.pkl'],
        dict(env, GPUS='2', GPUS_PER_NODE='2', SRUN_ARGS=''))
    run(['bash', 'tools/slurm_train.sh', 'dev', 'defaults', CONFIG, 'w'],
        {k: v for k, v in env.items() if k not in ('GPUS', 'GPUS_PER_NODE', 'CPUS_PER_TASK',
                                                   'SRUN_ARGS')})
    train, test, defaults = records(fake_slurm['log'], 'srun')
    assert train['options'] == {
        '-p': 'gpu', '--job-name': 'ean_job', '--gres': 'gpu:8', '--ntasks': '16',
        '--ntasks-per-node': '8', '--cpus-per-task': '3', '--kill-on-bad-exit': '1',
        '--quotatype': 'auto', '--time': '1:00:00'}
    assert train['command'] == [sys.executable, '-u', str(ROOT / 'tools/train.py'), CONFIG,
                                '--work-dir=work_dirs/x', '--launcher=slurm',
                                '--cfg-options', 'train_cfg.max_iters=5']
    assert test['options']['--ntasks'] == '2' and test['options']['--job-name'] == 'ean_test'
    assert test['command'] == [sys.executable, '-u', str(ROOT / 'tools/test.py'), CONFIG,
                               'ckpt.pth', '--launcher=slurm', '--out', 'r.pkl']
    # mmdet's defaults: 8 GPUs on one node, 5 CPUs per task.
    assert {k: defaults['options'][k] for k in ('--gres', '--ntasks', '--ntasks-per-node',
                                                '--cpus-per-task')} == {
        '--gres': 'gpu:8', '--ntasks': '8', '--ntasks-per-node': '8', '--cpus-per-task': '5'}


def test_slurm_env_as_mmengine_derives_it(fake_slurm, monkeypatch):
    monkeypatch.setenv('PATH', fake_slurm['env']['PATH'])
    monkeypatch.setenv('FAKE_SLURM_LOG', str(fake_slurm['log']))
    step = dict(SLURM_PROCID='3', SLURM_NTASKS='4', SLURM_LOCALID='1',
                SLURM_NODELIST='127.0.0.[1-2]')
    assert slurm_env(step) == dict(RANK='3', WORLD_SIZE='4', LOCAL_RANK='1',
                                   MASTER_ADDR='127.0.0.1', MASTER_PORT='29500')
    assert records(fake_slurm['log'], 'scontrol')[0]['args'] == [
        'show', 'hostname', '127.0.0.[1-2]']
    # MASTER_ADDR / MASTER_PORT of the environment win; scontrol is not asked then.
    env = slurm_env(dict(step, MASTER_ADDR='10.0.0.7', MASTER_PORT='12345'))
    assert (env['MASTER_ADDR'], env['MASTER_PORT']) == ('10.0.0.7', '12345')
    assert len(records(fake_slurm['log'], 'scontrol')) == 1
    with pytest.raises(InputError, match='SLURM_PROCID, SLURM_NTASKS not set'):
        slurm_env(dict(SLURM_NODELIST='n1'))
    monkeypatch.setenv('PATH', '/nonexistent')
    with pytest.raises(InputError, match='scontrol show hostname n1.*set MASTER_ADDR'):
        slurm_env(dict(step, SLURM_NODELIST='n1'))


@pytest.mark.slow
def test_two_tasks_train_then_test(fake_slurm, detection_data, tmp_path):
    """Training as two tasks on two "nodes" (one task each: LOCAL_RANK 0 on both), then testing
    its checkpoint as two tasks on one node, through the scripts as a user calls them."""
    opts = small_run_options(CONFIG, detection_data['voc'], validate=False)
    work = tmp_path / 'work'
    env = dict(fake_slurm['env'], GPUS='2', GPUS_PER_NODE='1', CPUS_PER_TASK='1',
               MASTER_PORT=free_port())
    log = run(['bash', 'tools/slurm_train.sh', 'cpu', 'ean_train', CONFIG, str(work),
               '--cfg-options', *opts], env)
    assert 'nccl -> gloo' in log and 'Distributed training: True' in log, log[-3000:]
    assert 'GPU number: 2' in log, log[-3000:]  # mmengine's name for the world size
    assert last_iteration(work / 'iter_1.pth') == 1
    tasks = records(fake_slurm['log'], 'task')
    assert [(t['rank'], t['returncode']) for t in tasks] == [(0, 0), (1, 0)]
    # mmengine's way to the master address: the first host of SLURM_NODELIST.
    assert records(fake_slurm['log'], 'scontrol')[0]['hosts'] == ['127.0.0.1', '127.0.0.2']

    env.update(GPUS_PER_NODE='2', MASTER_PORT=free_port())
    log = run(['bash', 'tools/slurm_test.sh', 'cpu', 'ean_test', CONFIG,
               str(work / 'iter_1.pth'), '--work-dir', str(tmp_path / 'test'),
               '--cfg-options', *opts], env)
    assert re.search(METRIC['voc'], log), log[-3000:]
    assert 'Distributed training: True' in log and 'GPU number: 2' in log, log[-3000:]
    assert [t['returncode'] for t in records(fake_slurm['log'], 'task')] == [0, 0, 0, 0]


@pytest.mark.slow
def test_mim_train_launcher_slurm(fake_slurm, detection_data, tmp_path):
    """``python -m mim train ean_mm CONFIG --launcher slurm`` from the repository root: openmim
    builds the srun line and runs ean_mm's tools/train.py (found through ean_mm/.mim/tools) as
    two tasks."""
    opts = small_run_options(CONFIG, detection_data['voc'], validate=False)
    work = tmp_path / 'work'
    log = run([sys.executable, '-m', 'mim', 'train', 'ean_mm', CONFIG, '--gpus', '2',
               '--gpus-per-node', '2',
               '--partition', 'cpu', '--cpus-per-task', '1', '--launcher', 'slurm',
               '--port', free_port(), '--work-dir', str(work), '--cfg-options', *opts],
              fake_slurm['env'])
    srun, = records(fake_slurm['log'], 'srun')
    assert srun['options']['-p'] == 'cpu' and srun['options']['--ntasks'] == '2'
    assert Path(srun['command'][2]).resolve() == ROOT / 'tools' / 'train.py'
    assert 'Distributed training: True' in log and 'GPU number: 2' in log, log[-3000:]
    assert last_iteration(work / 'iter_1.pth') == 1


def test_dist_scripts_pass_multinode_variables(tmp_path):
    # docs/distributed.md's two-node torchrun lines: what tools/dist_*.sh hand to torchrun (a
    # stand-in interpreter records its arguments instead of starting torchrun).
    record = tmp_path / 'argv.json'
    fake = tmp_path / 'python'
    fake.write_text(f'#!{sys.executable}\nimport json, sys\n'
                    f'json.dump(sys.argv[1:], open({str(record)!r}, "w"))\n')
    fake.chmod(0o755)
    env = dict(os.environ, PYTHON=str(fake), NNODES='2', NODE_RANK='1', MASTER_ADDR='10.1.1.1',
               PORT='29512')
    run(['bash', 'tools/dist_train.sh', CONFIG, '8', '--auto-scale-lr'], env)
    assert json.loads(record.read_text()) == [
        '-m', 'torch.distributed.run', '--nnodes=2', '--node_rank=1', '--master_addr=10.1.1.1',
        '--master_port=29512', '--nproc_per_node=8', 'tools/train.py', CONFIG,
        '--launcher', 'pytorch', '--auto-scale-lr']
    run(['bash', 'tools/dist_test.sh', CONFIG, 'c.pth', '4'], env)
    argv = json.loads(record.read_text())
    assert argv[2:7] == ['--nnodes=2', '--node_rank=1', '--master_addr=10.1.1.1',
                         '--master_port=29512', '--nproc_per_node=4']
    assert argv[7:] == ['tools/test.py', CONFIG, 'c.pth', '--launcher', 'pytorch']
