"""glibc malloc tuning (sr_models/allocator.py): applied by `prsr`, switchable off, recorded with a run."""

import json
import os
import platform
import subprocess
import sys

import pytest

from sr_models.allocator import TOP_PAD, TRIM_THRESHOLD, allocator_record
from sr_models.environment import environment_record

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
PROBE = (
    "import json; from prsr.cli import main; from sr_models.allocator import allocator_record;"
    "main(['compare', '/nonexistent/a', '/nonexistent/b']); print(json.dumps(allocator_record()))"
)


def _probe(**env) -> dict:
    clean = {k: v for k, v in os.environ.items() if not (k.startswith("MALLOC_") or k == "PRSR_MALLOC_TUNING")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_prsr_tunes_glibc_and_the_settings_are_recorded():
    assert _probe() == {"trim_threshold": TRIM_THRESHOLD, "top_pad": TOP_PAD}


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_switched_off_or_hand_tuned_leaves_glibc_alone():
    assert _probe(PRSR_MALLOC_TUNING="0") == {}
    assert _probe(MALLOC_TOP_PAD_="1048576") == {}


def test_environment_record_names_the_allocator_settings():
    assert environment_record("cpu")["allocator"] == allocator_record()
