"""The device-side runner, run as a device would: a zipapp in a fresh Python process."""

import json
import subprocess
import sys

import pytest

from suite.models import build_model
from suite.runtimes.remote import RunnerEvents, build_runner, read_events, runner_bytes


def test_runner_zip_is_deterministic_and_excludes_test_support():
    import io
    import zipfile

    a, b = runner_bytes(), runner_bytes()
    assert a == b
    names = zipfile.ZipFile(io.BytesIO(a)).namelist()
    assert "__main__.py" in names and "suite/runtimes/runner.py" in names and "suite/runtimes/ort_genai.py" in names
    assert not any(n.startswith(("suite/loopback/", "suite/report/")) for n in names)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_model("tiny", out_root=tmp_path_factory.mktemp("models"))


def run_runner(tmp_path, *args):
    pyz = build_runner(tmp_path)
    # cwd "/" and -I: nothing but the zip provides `suite`, as on a phone
    return subprocess.run([sys.executable, "-I", str(pyz), *args], capture_output=True, text=True, cwd="/",
                          timeout=300)


def test_runner_reports_repetitions_on_the_realtime_clock(tiny, tmp_path):
    import time

    before = time.time()
    proc = run_runner(tmp_path, "burst", "--runtime", "ort-genai", "--model", str(tiny.path), "--prompt-tokens", "8",
                      "--gen-tokens", "4", "--reps", "2", "--warmup", "1", "--threads", "1")
    after = time.time()
    assert proc.returncode == 0, proc.stderr
    ev = read_events(iter(proc.stdout.splitlines()), RunnerEvents())
    assert ev.done and ev.error is None and ev.noise == []
    assert [r.warmup for r in ev.reps] == [True, False, False]
    for r in ev.reps:
        assert before <= r.t_start < r.t_prefill_end <= r.t_first_token <= r.token_times[-1] <= after
        assert len(r.token_times) == 3
    assert ev.info["name"] == "ort-genai" and ev.info["threads"] == 1 and ev.load_s > 0


#: What a phone's Python (Termux, a board's distribution) may lack: the host's packages.
HOST_ONLY = ("psutil", "pandas", "pyarrow", "scipy", "adbutils", "matplotlib", "rich", "typer", "jinja2", "ulid")


def test_runner_imports_nothing_a_phone_python_may_lack(tmp_path):
    """The runner's modules (its burst and probe commands, the Python runtimes) import numpy and the
    stdlib only at import time: the host's packages are blocked here as a phone would lack them."""
    pyz = build_runner(tmp_path)
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            f"        if name.split('.')[0] in {HOST_ONLY!r}:\n"
            "            raise ImportError('blocked on a phone: ' + name)\n"
            "sys.meta_path.insert(0, Block())\n"
            f"sys.path.insert(0, {str(pyz)!r})\n"
            "import suite.runtimes.runner, suite.sensors.probe\n"
            "from suite.runtimes import get_runtime\n"
            "print([get_runtime(n).name for n in ('ort-genai', 'llama-cpp-python')])\n")
    r = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, cwd="/", timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "['ort-genai', 'llama-cpp-python']"


def test_runner_reports_errors_as_events(tmp_path):
    proc = run_runner(tmp_path, "burst", "--runtime", "ort-genai", "--model", "/no/such/model")
    assert proc.returncode == 1
    last = json.loads(proc.stdout.splitlines()[-1])
    assert last["event"] == "error" and "genai_config.json" in last["message"]


def test_events_parser_keeps_going_past_noise():
    lines = ["warning: something", '{"event": "start", "pid": 7, "offset_s": 1.5}', "{broken json",
             '{"event": "error", "type": "X", "message": "m"}']
    ev = read_events(iter(lines), RunnerEvents())
    assert ev.pid == 7 and ev.error["type"] == "X" and len(ev.noise) == 2
