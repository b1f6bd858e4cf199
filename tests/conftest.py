import subprocess
import sys
from pathlib import Path

import pytest

from sim.runner import SIMULATORS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=SIMULATORS)
def sim(request):
    """Every RTL test runs on both simulators."""
    return request.param


def run_cli(*args, cwd=None):
    """Run ``python -m ...`` in a fresh interpreter, as a user would."""
    return subprocess.run([sys.executable, "-m", *map(str, args)], cwd=cwd or ROOT,
                          capture_output=True, text=True)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one error line, got:\n{proc.stderr}"
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
