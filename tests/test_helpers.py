"""The one-home helpers (DESIGN.md, "Where helpers live"): eval mode restores the module's mode, the default
device is what the conventions say, and no package keeps a private copy of them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from sr_data.device import default_device
from sr_models import distributed
from sr_models.modes import eval_mode

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["sr_data", "metrics", "sr_models", "baselines", "study_app", "analysis", "prsr"]


def test_eval_mode_restores_train_mode_also_after_an_error():
    net = nn.Sequential(nn.BatchNorm2d(2)).train()
    with eval_mode(net) as inside:
        assert inside is net and not net.training and not net[0].training
    assert net.training and net[0].training
    with pytest.raises(RuntimeError), eval_mode(net):
        raise RuntimeError("boom")
    assert net.training
    net.eval()
    with eval_mode(net):
        pass
    assert not net.training  # a module in eval mode stays there


def test_default_device_is_cuda_when_present_else_cpu_and_reexported():
    assert distributed.default_device is default_device
    if torch.cuda.is_available():
        assert default_device().type == "cuda" and default_device(3).index == 3 % torch.cuda.device_count()
    else:
        assert default_device() == torch.device("cpu") == default_device(1)


@pytest.mark.parametrize(
    "pattern, what",
    [
        (r'torch\.device\("cuda" if torch\.cuda\.is_available\(\)', "an inline default device"),
        (r"was_training = .*\.training", "an inline eval-mode switch"),
        (r"/ \(?\w* ?\*? ?math\.log\(2(\.0)?\)", "an inline nats -> bits conversion"),
        (r"os\.replace\(tmp", "an inline atomic write"),
    ],
)
def test_no_private_copy_of_a_helper_in_the_helper_owners_files(pattern, what):
    homes = {"sr_data/device.py", "sr_data/files.py", "sr_models/modes.py", "metrics/likelihood.py"}
    # the pair cache fills memory-mapped arrays in place and renames them, meta.json last (its own protocol)
    homes.add("sr_data/cache.py")
    found = [
        f"{rel}:{n}"
        for pkg in PACKAGES
        for path in sorted((ROOT / pkg).rglob("*.py"))
        if (rel := str(path.relative_to(ROOT))) not in homes
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(pattern, line)
    ]
    assert not found, f"{what} outside its home:\n" + "\n".join(found)
