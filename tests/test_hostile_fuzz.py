"""A seeded mutation fuzz of every port reader: each mutant a clean port or one refusal.

``tests/hostile_fuzz.py`` does the work, one process per format, all started at
once (they share two cores); each process caps its own address space and reports
one JSON line.  Here every report must show no finding (an exception other than
``PortError``, a message that is not one line naming the file), a process that
ended by itself (a crash would not), a peak memory far below the cap, and no
mutant slow enough to be a hang.  A finding names its mutant: rerun
``python -m tests.hostile_fuzz FORMAT SEED COUNT FOLDER`` to replay it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEED = 24
# Mutants per format: the HDF5 ones cost a confined child each.
COUNTS = {"keras": 100, "keras-h5": 100, "onnx": 200, "torch": 200, "safetensors": 200,
          "tf1": 200, "tf2": 200}
PEAK = 256 << 20  # no mutant of a file of a few KiB may cost this much


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict:
    """{format: its report}: every format's fuzz, run side by side."""
    pytest.importorskip("onnx")
    pytest.importorskip("torch")
    pytest.importorskip("h5py")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    running = {}
    for kind, count in COUNTS.items():
        folder = tmp_path_factory.mktemp(f"fuzz-{kind}")
        running[kind] = subprocess.Popen(
            [sys.executable, "-m", "tests.hostile_fuzz", kind, str(SEED), str(count), folder],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    found = {}
    for kind, process in running.items():
        out, err = process.communicate(timeout=600)
        found[kind] = {"returncode": process.returncode, "stderr": err[-3000:],
                       **(json.loads(out.splitlines()[-1]) if out.strip() else {})}
    return found


@pytest.mark.parametrize("kind", list(COUNTS))
def test_every_mutant_is_a_clean_port_or_one_refusal(reports, kind):
    report = reports[kind]
    assert report["returncode"] == 0, f"{kind}: the fuzz died: {report['stderr']}"
    assert not report["findings"], f"{kind} (seed {SEED}):\n" + "\n".join(report["findings"])
    assert sum(report["counts"].values()) == COUNTS[kind]
    assert report["counts"].get("refused", 0) > COUNTS[kind] // 4, report["counts"]  # it bites
    assert report["peak_bytes"] < PEAK, f"{kind}: {report['peak_bytes'] / 2**20:.0f} MiB"
    # A hang would never end (communicate's timeout fails it); this bounds the slow ones,
    # loose enough for a machine shared with other jobs (a read takes milliseconds).
    assert report["slowest"] < 30, f"{kind}: one mutant took {report['slowest']:.1f} s"
