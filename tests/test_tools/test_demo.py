"""tools/demo.py: its training run is reproducible (same seed, same weights bit for bit;
another seed, other weights) and free of upstream warning noise, and its closing note on
the position-bias modes follows the numbers."""
import re
import sys

import torch

from tools_testing import ROOT, load_tool, run, tool_env
from mmtransnext.checkpoint.safe_load import enable_safe_load
from mmtransnext.cli.upstream_warnings import UPSTREAM_WARNINGS


def _train(demo, work_dir, seed, data_root):
    """The demo's own training command, 4 iterations on the small toy set, 1 thread."""
    cmd = demo.train_args(str(work_dir), 4, seed) + [
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}', 'train_cfg.val_interval=1000']
    proc = run([sys.executable] + cmd,
               env=demo.demo_env(1, base=tool_env()))
    enable_safe_load()
    state = torch.load(work_dir / 'iter_4.pth', map_location='cpu',
                       weights_only=True)['state_dict']
    return state, proc.stdout


def test_demo_training_is_reproducible(tmp_path, ade64):
    demo = load_tool('demo')
    first, out = _train(demo, tmp_path / 'a', 0, ade64)
    second, _ = _train(demo, tmp_path / 'b', 0, ade64)
    other, _ = _train(demo, tmp_path / 'c', 1, ade64)
    assert first.keys() == second.keys() == other.keys()
    different = [k for k in first if not torch.equal(first[k], second[k])]
    assert not different, f'two runs with seed 0 differ in {different[:5]}'
    assert any(not torch.equal(first[k], other[k]) for k in first), 'seed 1 changed nothing'
    # the entry point filtered the upstream warnings that such a run raises
    noise = [m for _, m, _ in UPSTREAM_WARNINGS if re.search(m, out, re.I)]
    assert not noise, out[-3000:]


def test_modes_note_follows_the_numbers():
    demo = load_tool('demo')
    same = [('single scale', 'interpolate', 80.0, 97.0),
            ('single scale', 'extrapolate', 80.0, 97.0),
            ('ms + flip', 'interpolate', 78.0, 96.0), ('ms + flip', 'extrapolate', 78.0, 96.0)]
    assert demo.modes_identical(same)
    changed = same[:3] + [('ms + flip', 'extrapolate', 78.1, 96.0)]
    assert not demo.modes_identical(changed)
    # the note points at the sweep tool and a README section: both exist
    assert (ROOT / 'tools/analysis_tools/ms_sweep.py').is_file()
    assert '\n## Configs, results and commands\n' in (ROOT / 'README.md').read_text()
    assert 'ms_sweep.py' in demo.MODES_NOTE and 'Configs, results and commands' in demo.MODES_NOTE
