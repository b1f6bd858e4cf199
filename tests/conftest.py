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


def sweep_simulators(default: str):
    """For an exhaustive sweep: ``default`` in every tier, the other simulator in the full
    tier only (``@pytest.mark.parametrize("sim", sweep_simulators("icarus"))``), so that
    the default regression runs each sweep once and CI runs it on both."""
    assert default in SIMULATORS
    return [pytest.param(s, marks=() if s == default else pytest.mark.full)
            for s in SIMULATORS]


def pytest_collection_modifyitems(config, items):
    """Bitstream builds (``slow_build``) take minutes: run them first, so that under
    pytest-xdist they start at once instead of finishing last."""
    items.sort(key=lambda item: item.get_closest_marker("slow_build") is None)


def run_cli(*args, cwd=None, env=None):
    """Run ``python -m ...`` in a fresh interpreter, as a user would (``env``: the whole
    environment, default this one)."""
    return subprocess.run([sys.executable, "-m", *map(str, args)], cwd=cwd or ROOT,
                          capture_output=True, text=True, env=env)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one error line, got:\n{proc.stderr}"
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
