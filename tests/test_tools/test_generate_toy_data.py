"""tools/misc/generate_toy_data.py writes the same files as mmtransnext.datasets.toy for the
same seed, and other images for another seed."""
import filecmp
import subprocess
import sys

from mmtransnext.datasets.toy import make_all
from tools_testing import ROOT, tool_env


def _same_tree(a, b):
    cmp = filecmp.dircmp(a, b)
    assert not cmp.left_only and not cmp.right_only and not cmp.diff_files
    for sub in cmp.common_dirs:
        _same_tree(a / sub, b / sub)


def test_generator_cli_is_deterministic(tmp_path):
    subprocess.run([sys.executable, ROOT / 'tools/misc/generate_toy_data.py', tmp_path / 'a',
                    '--num-train', '2', '--num-val', '1', '--img-size', '64', '--seed', '3'],
                   check=True, env=tool_env(), cwd=ROOT, capture_output=True)
    for out, seed in (('b', 3), ('c', 4)):
        sizes = dict(img_size=64, num_train=2, num_val=1)
        make_all(str(tmp_path / out), seed=seed, coco=sizes, ade20k=sizes, imagenet=dict(
            img_size=64, num_train_per_class=2, num_val_per_class=1))
    _same_tree(tmp_path / 'a', tmp_path / 'b')
    a = (tmp_path / 'a/ade20k/images/training/ADE_train_00000000.jpg').read_bytes()
    c = (tmp_path / 'c/ade20k/images/training/ADE_train_00000000.jpg').read_bytes()
    assert a != c
