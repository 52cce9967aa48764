"""Every command quoted in README.md and docs/ names files, configs, make targets and flags that
exist: each ``python tools/X.py ...`` (also behind tools/dist_*.sh, tools/slurm_*.sh and
``mim train`` / ``mim test``) is parsed by that tool's own argparse parser, ``mim`` commands by
openmim's click commands, ``--cfg-options`` keys are looked up in the config they change, and
local links point at files and headings that exist."""
import argparse
import importlib.util
import re
import shlex
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from unittest import mock

import pytest
from conftest import ROOT, load_tool

#: Hand-written pages. docs/benchmark/ holds the benchmark's own reports, records of past runs
#: (their commands stay as they were run); of that folder only its README is checked.
PAGES = [ROOT / 'README.md'] + sorted((ROOT / 'docs').glob('*.md')) + [
    ROOT / 'docs' / 'benchmark' / 'README.md']
SHELL_FENCES = {'', 'bash', 'sh', 'shell', 'console'}
COMMAND_WORDS = {'python', 'bash', 'make', 'mim', 'source', 'torchrun', 'pip'}
#: Script -> (tool, how its positional arguments map onto the tool's command line).
SCRIPTS = {
    'tools/dist_train.sh': ('tools/train.py', lambda a: [a[0]] + a[2:]),
    'tools/dist_test.sh': ('tools/test.py', lambda a: [a[0], a[1]] + a[3:]),
    'tools/slurm_train.sh': ('tools/train.py',
                             lambda a: [a[2], '--work-dir', a[3], '--launcher', 'slurm'] + a[4:]),
    'tools/slurm_test.sh': ('tools/test.py', lambda a: [a[2], a[3], '--launcher', 'slurm'] + a[4:]),
}
REPO_DIRS = ('tools/', 'configs/', 'docs/', 'tests/', 'ean_mm/')


class _Captured(Exception):
    def __init__(self, parser):
        super().__init__('parser')
        self.parser = parser


def _capture(self, *args, **kwargs):
    raise _Captured(self)


_PARSERS: Dict[str, argparse.ArgumentParser] = {}


def tool_parser(path: Path) -> argparse.ArgumentParser:
    """The argparse parser the program at ``path`` builds: its ``main()`` runs until it asks the
    parser for the command line."""
    key = str(path)
    if key not in _PARSERS:
        if path.is_relative_to(ROOT):
            module = load_tool(str(path.relative_to(ROOT)))
        else:  # another package's tool (mmdet's tools/train.py for `mim train mmdet`)
            spec = importlib.util.spec_from_file_location(f'ext_{path.parent.name}_{path.stem}',
                                                          path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        with mock.patch.object(argparse.ArgumentParser, 'parse_args', _capture), \
                mock.patch.object(argparse.ArgumentParser, 'parse_known_args', _capture), \
                mock.patch.object(sys, 'argv', [str(path)]):
            try:
                module.main()
            except _Captured as c:
                _PARSERS[key] = c.parser
            else:
                raise AssertionError(f'{path}: main() never parsed its arguments')
    return _PARSERS[key]


def parse_with(parser: argparse.ArgumentParser, args: List[str]) -> Tuple[Optional[str], object]:
    """``(error, namespace)`` of ``args``; ``--help`` counts as accepted."""
    errors = []
    with mock.patch.object(argparse.ArgumentParser, 'error',
                           lambda self, msg: (errors.append(msg), sys.exit(2))), \
            mock.patch.object(argparse.ArgumentParser, 'print_help', lambda self, file=None: None):
        try:
            return None, parser.parse_args(args)
        except SystemExit as e:
            return (None if e.code in (0, None) else (errors[-1] if errors else str(e))), None


# ------------------------------------------------------------------------------ extraction
def code_blocks(text: str) -> List[Tuple[str, int]]:
    """Command lines of the shell-like fenced blocks: ``(line, line number)``, continuations
    joined, prompts and comments left to shlex."""
    out = []
    for m in re.finditer(r'^```(\w*)\n(.*?)^```', text, re.S | re.M):
        if m.group(1) not in SHELL_FENCES:
            continue
        start = text[:m.start(2)].count('\n') + 1
        pending, first = '', None
        for i, line in enumerate(m.group(2).splitlines()):
            if first is None:
                first = start + i
            if line.rstrip().endswith('\\'):
                pending += line.rstrip()[:-1] + ' '
                continue
            out.append((pending + line, first))
            pending, first = '', None
    return out


def inline_commands(text: str) -> List[Tuple[str, int]]:
    """Inline code spans that are whole commands (``python tools/X.py ...``, ``bash tools/...``,
    ``make ...``, ``python -m mim ...``); spans with ``...`` in them are prose about a command."""
    out = []
    for m in re.finditer(r'`([^`\n]+)`', text):
        span = m.group(1).strip()
        if '...' not in span and re.match(r'(python (-m mim |tools/)|bash tools/|make )', span):
            out.append((span, text[:m.start()].count('\n') + 1))
    return out


def commands(line: str) -> List[List[str]]:
    """Simple commands of a shell line, env assignments and placeholder brackets removed."""
    try:
        words = shlex.split(line.lstrip('$ '), comments=True)
    except ValueError:
        return []
    out, cur = [], []
    for w in words + [';']:
        if w in ('&&', '||', '|', ';') or w.startswith(('>', '<', '2>')):
            if cur:
                out.append(cur)
            cur = [] if not w.startswith(('>', '<', '2>')) else None
            if cur is None:  # redirect: the rest of this command is its target
                break
            continue
        if cur is None:
            continue
        # Optional arguments written as [--flag VALUE]; pip's extras (.[deploy]) stay.
        w = w[1:] if w.startswith('[') else w
        w = w[:-1] if w.endswith(']') and '[' not in w else w
        if w in ('', '...'):
            continue
        cur.append(w)
    result = []
    for cmd in out:
        while cmd and re.match(r'^[A-Z_][A-Z0-9_]*=', cmd[0]):
            cmd = cmd[1:]
        if cmd and cmd[0] in ('.venv/bin/python', 'python3'):
            cmd = ['python'] + cmd[1:]
        if cmd[:3] == ['python', '-m', 'mim']:
            cmd = ['mim'] + cmd[3:]
        if cmd and cmd[0] in COMMAND_WORDS:
            result.append(cmd)
    return result


def all_commands() -> List[Tuple[str, List[str]]]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding='utf-8')
        spans = code_blocks(text)
        if page.parent == ROOT or page.parent == ROOT / 'docs':
            spans += inline_commands(text)
        for line, lineno in spans:
            for cmd in commands(line):
                found.append((f'{page.relative_to(ROOT)}:{lineno}', cmd))
    return found


# ------------------------------------------------------------------------------ checks
_CONFIGS: Dict[str, object] = {}


def check_cfg_options(config: str, args: List[str]) -> List[str]:
    """Each ``--cfg-options`` key's parent exists in ``config``."""
    from mmengine.config import Config
    if '--cfg-options' not in args or not (ROOT / config).is_file():
        return []
    if config not in _CONFIGS:
        _CONFIGS[config] = Config.fromfile(str(ROOT / config))
    cfg, errors = _CONFIGS[config], []
    for kv in args[args.index('--cfg-options') + 1:]:
        if kv.startswith('-'):
            break
        key = kv.split('=', 1)[0]
        node = cfg
        for part in key.split('.')[:-1]:
            if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif hasattr(node, 'get') and node.get(part) is not None:
                node = node[part]
            else:
                errors.append(f'--cfg-options {key}: {config} has no {part!r} there')
                break
    return errors


def check_paths(cmd: List[str]) -> List[str]:
    errors = []
    for w in cmd:
        value = w.split('=', 1)[-1]
        if value.startswith(REPO_DIRS) and not re.search(r'[{}*<>]', value):
            if not (ROOT / value).exists():
                errors.append(f'{value} does not exist')
    return errors


def check_tool(tool: str, args: List[str]) -> List[str]:
    path = ROOT / tool
    if not path.is_file():
        return [f'{tool} does not exist']
    error, _ = parse_with(tool_parser(path), args)
    errors = [f'{tool} {" ".join(args)}: {error}'] if error else []
    config = next((a for a in args if a.startswith('configs/') and a.endswith('.py')), None)
    if config:
        errors += check_cfg_options(config, args)
    return errors


def check_mim(args: List[str]) -> List[str]:
    import click
    if not args:
        return ['mim without a command']
    sub = args[0]
    try:
        command = importlib.import_module(f'mim.commands.{sub}').cli
    except ImportError:
        return [f'mim has no command {sub!r}']
    try:
        ctx = command.make_context(sub, list(args[1:]), resilient_parsing=False)
    except click.ClickException as err:
        return [f'mim {sub}: {err.format_message()}']
    if sub not in ('train', 'test'):
        return []
    p = ctx.params
    package, config = p['package'], p['config']
    if package == 'ean_mm':
        tool = ROOT / 'tools' / f'{sub}.py'
    else:
        from mim.utils import get_installed_path
        tool = Path(get_installed_path(package)) / '.mim' / 'tools' / f'{sub}.py'
    tool_args = [config] + ([p['checkpoint']] if sub == 'test' else []) + [
        '--launcher', p['launcher']] + list(p['other_args'])
    error, _ = parse_with(tool_parser(tool), tool_args)
    errors = [f'{package} {sub}.py {" ".join(tool_args)}: {error}'] if error else []
    return errors + check_cfg_options(config, tool_args)


def makefile_targets() -> set:
    text = (ROOT / 'Makefile').read_text()
    return set(re.findall(r'^([A-Za-z][\w-]*):', text, re.M))


def setup_extras() -> set:
    text = (ROOT / 'setup.py').read_text()
    block = text[text.index('extras_require'):]
    return set(re.findall(r"'(\w+)': \[", block[:block.index('},') + 2]))


def check_command(cmd: List[str]) -> List[str]:
    word, args = cmd[0], cmd[1:]
    errors = check_paths(cmd)
    if word == 'make':
        errors += [f'make: no target {t!r}' for t in args if t not in makefile_targets()]
    elif word == 'bash':
        script = args[0]
        if not (ROOT / script).is_file():
            errors.append(f'{script} does not exist')
        elif script in SCRIPTS:
            tool, to_tool = SCRIPTS[script]
            errors += check_tool(tool, to_tool(args[1:]))
    elif word == 'mim':
        errors += check_mim(args)
    elif word == 'pip':
        for extra in re.findall(r'\.\[([\w,]+)\]', ' '.join(args)):
            errors += [f'setup.py has no extra [{e}]' for e in extra.split(',')
                       if e not in setup_extras()]
    elif word == 'python':
        if args[:2] == ['-m', 'pytest']:
            pass  # paths checked above
        elif args and args[0] == '-m':
            errors.append(f'unchecked module command {" ".join(cmd)}')
        elif args:
            errors += check_tool(args[0], args[1:])
    return errors


# ------------------------------------------------------------------------------ links
def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r'[^\w\- ]', '', heading.strip().lower())
    return text.replace(' ', '-')


def check_links(page: Path) -> List[str]:
    text = page.read_text(encoding='utf-8')
    errors = []
    for target in re.findall(r'\]\(([^)\s]+)\)', text):
        if re.match(r'[a-z]+://', target) or target.startswith('mailto:'):
            continue
        file, _, anchor = target.partition('#')
        path = (page.parent / file).resolve() if file else page
        if not path.exists():
            errors.append(f'{page.relative_to(ROOT)}: link {target}: no such file')
        elif anchor and path.suffix == '.md':
            anchors = {slug(h) for h in re.findall(r'^#+ (.*)$', path.read_text(), re.M)}
            if anchor not in anchors:
                errors.append(f'{page.relative_to(ROOT)}: link {target}: no such heading')
    return errors


# ------------------------------------------------------------------------------ tests
def test_every_quoted_command_exists():
    found = all_commands()
    failures = [f'{where}: {" ".join(cmd)}: {e}'
                for where, cmd in found for e in check_command(cmd)]
    assert not failures, '\n'.join(failures)
    # The pages quote the tools a user runs; a parser that found none would pass vacuously.
    names = {c[1] if c[0] in ('python', 'bash') and len(c) > 1 else c[0] for _, c in found}
    for expected in ('make', 'mim', 'tools/train.py', 'tools/test.py', 'tools/dist_train.sh',
                     'tools/slurm_train.sh', 'tools/slurm_test.sh',
                     'tools/deployment/export_onnx.py', 'tools/deployment/onnx_infer.py',
                     'tools/analysis/gradcam.py', 'tools/analysis/benchmark.py',
                     'tools/analysis/param_table.py',
                     'tools/model_converters/mobilenext_official.py'):
        assert expected in names, f'no command of {expected} found in the pages'
    assert len(found) > 50


def test_readme_first_screen():
    text = (ROOT / 'README.md').read_text(encoding='utf-8')
    lines = text.splitlines()
    assert len(lines) <= 250
    first = '\n'.join(lines[:15])
    assert 'make demo' in first and 'make test' in first and 'AAAI 2024' in first
    assert '![demo detections](docs/demo_detections.png)' in text
    assert (ROOT / 'docs' / 'demo_detections.png').stat().st_size > 0
    # Accuracy columns are the paper's, marked so.
    assert re.search(r'Top-1 % \(paper\)', text) and re.search(r'mAP % \(paper\)', text)


def test_links_exist():
    failures = [e for page in PAGES for e in check_links(page)]
    assert not failures, '\n'.join(failures)


@pytest.mark.parametrize('line, error', [
    ('python tools/train.py configs/faster_rcnn_ean_r50_coco.py --no-such-flag',
     'unrecognized arguments: --no-such-flag'),
    ('python tools/test.py configs/faster_rcnn_ean_r50_coco.py', 'required: checkpoint'),
    ('bash tools/slurm_train.sh p job configs/nope.py work', 'configs/nope.py does not exist'),
    ('GPUS=2 bash tools/slurm_test.sh p job configs/faster_rcnn_ean_r50_coco.py c.pth --bogus',
     'unrecognized arguments: --bogus'),
    ('python tools/train.py configs/faster_rcnn_ean_r50_coco.py --cfg-options model.nope.x=1',
     "has no 'nope'"),
    ('python -m mim train ean_mm configs/faster_rcnn_ean_r50_coco.py --launcher slurmm',
     "Invalid value for '-l' / '--launcher'"),
    ('mim test ean_mm configs/faster_rcnn_ean_r50_coco.py --checkpoint c.pth --out x.txt --nope',
     'unrecognized arguments: --nope'),
    ('make nothing', "no target 'nothing'"),
    ('pip install -e ".[nonextra]"', 'no extra [nonextra]'),
    ('python tools/analysis/gradcam.py det configs/ssdlite320_ean_mobilenext_coco.py c.pth',
     'required'),
])
def test_checker_reports_what_does_not_exist(line, error):
    cmd, = commands(line)
    errors = check_command(cmd)
    assert any(error in e for e in errors), errors


def test_checker_reads_blocks_and_links(tmp_path):
    page = tmp_path / 'page.md'
    page.write_text('# Title\n\n```bash\npython tools/train.py \\\n    configs/x.py  # note\n'
                    'make test && make demo\n```\n\n```python\npython = 1\n```\n'
                    '[ok](#title) [bad](#nope) [gone](missing.md)\n')
    blocks = code_blocks(page.read_text())
    assert [commands(b) for b, _ in blocks] == [
        [['python', 'tools/train.py', 'configs/x.py']], [['make', 'test'], ['make', 'demo']]]
    with mock.patch(f'{__name__}.ROOT', tmp_path):
        errors = check_links(page)
    assert len(errors) == 2 and 'nope' in errors[0] and 'missing.md' in errors[1]
