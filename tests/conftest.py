"""Shared fixtures and helpers: the repository root, tools loaded by path or run as a user would."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Dict, Optional

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def load_tool(path: str) -> ModuleType:
    """The program ``tools/...`` as a module (its ``__main__`` block does not run)."""
    name = 'tool_' + Path(path).stem
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the file runs
        spec.loader.exec_module(module)
    return sys.modules[name]


def run_tool(*args: str, env: Optional[Dict[str, str]] = None, check: bool = True,
             timeout: int = 600) -> subprocess.CompletedProcess:
    """``python <args>`` from the repository root; with ``check``, a failure shows the output."""
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})), timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} exited {proc.returncode}\n{proc.stdout[-4000:]}\n'
                             f'{proc.stderr[-4000:]}')
    return proc
