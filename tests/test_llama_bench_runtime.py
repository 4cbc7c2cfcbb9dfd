"""Runtime `llama-bench` on phones: command lines, big cores, ELF refusal, output parsing.

Command lines are checked against the loopback galaxy-a15 profile (ABI x86_64; cpufreq policy0 =
cpus 0-5 at 2.0 GHz, policy6 = cpus 6-7 at 2.2 GHz). The end-to-end run uses edgebench's own
static x86_64 build of llama-bench (suite.runtimes.build; built on first use and cached, and by
.ci/run before the tests)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from loopback_plugin import phone_ref

from suite.device.elf import ElfError
from suite.runtimes import BurstParams
from suite.runtimes.llama_bench import (
    affinity_mask,
    big_cores,
    bundle_files,
    llama_bench_argv,
    parse_phase_output,
    phase_command,
    phase_spans,
    prepare_command,
    throughput_metrics,
)

PROFILES = Path(__file__).parents[1] / "suite" / "loopback" / "profiles"
FIXTURES = Path(__file__).parent / "fixtures" / "llama-bench"


def cpufreq_text(profile: str) -> str:
    """What `grep . /sys/devices/system/cpu/cpufreq/policy*/*` prints for a loopback profile."""
    pols = json.loads((PROFILES / profile / "profile.json").read_text())["cpus"]["policies"]
    lines = []
    for p in pols:
        d = f"/sys/devices/system/cpu/cpufreq/{p['name']}"
        lines += [f"{d}/related_cpus:{' '.join(map(str, p['cpus']))}", f"{d}/affected_cpus:{' '.join(map(str, p['cpus']))}",
                  f"{d}/cpuinfo_max_freq:{p['max_khz']}", f"{d}/cpuinfo_min_freq:{p['min_khz']}",
                  f"{d}/scaling_max_freq:{p['max_khz']}", f"{d}/scaling_governor:schedutil"]
    return "\n".join(lines) + "\n"


def test_big_cores_of_the_galaxy_a15_profile():
    c = big_cores(cpufreq_text("galaxy-a15"))
    assert c.cpus == (6, 7) and c.max_khz == 2200000 and c.policies == ("policy6",)
    assert c.mask == "c0"  # bits 6 and 7
    assert c.to_dict()["mask"] == "c0"


def test_big_cores_of_three_cluster_profiles_is_the_top_cluster():
    assert big_cores(cpufreq_text("qcom-flagship")).cpus == (7,)
    assert big_cores(cpufreq_text("pixel-tensor")).cpus == (8,)


def test_big_cores_ties_and_fallbacks():
    text = ("/sys/devices/system/cpu/cpufreq/policy0/cpuinfo_max_freq:1800000\n"
            "/sys/devices/system/cpu/cpufreq/policy4/cpuinfo_max_freq:2400000\n"
            "/sys/devices/system/cpu/cpufreq/policy4/related_cpus:4 5\n"
            "/sys/devices/system/cpu/cpufreq/policy6/cpuinfo_max_freq:2400000\n"
            "/sys/devices/system/cpu/cpufreq/policy6/related_cpus:6-7\n")
    assert big_cores(text).cpus == (4, 5, 6, 7)
    assert big_cores(text).policies == ("policy4", "policy6")
    assert big_cores("", n_cpus=4).cpus == (0, 1, 2, 3)
    assert affinity_mask([0]) == "1" and affinity_mask([8, 9]) == "300"


def test_argv_prefill_and_decode_are_separate_invocations():
    pp = llama_bench_argv("/d/bin/llama-bench", "/d/m.gguf", "prefill", 128, reps=3, threads=2)
    tg = llama_bench_argv("/d/bin/llama-bench", "/d/m.gguf", "decode", 32, reps=3, threads=2)
    assert pp == ["/d/bin/llama-bench", "-m", "/d/m.gguf", "-p", "128", "-n", "0", "-r", "3", "-t", "2", "-o", "jsonl"]
    assert tg == ["/d/bin/llama-bench", "-m", "/d/m.gguf", "-p", "0", "-n", "32", "-r", "3", "-t", "2", "-o", "jsonl"]
    with pytest.raises(ValueError):
        llama_bench_argv("b", "m", "both", 1, reps=1, threads=1)


def test_phase_command_for_the_galaxy_a15():
    cores = big_cores(cpufreq_text("galaxy-a15"))
    work = "/data/local/tmp/edgebench"
    inv = phase_command(f"{work}/llama-bench", f"{work}/models/tiny/m.gguf", "prefill", 64, reps=2,
                        threads=len(cores.cpus), mask=cores.mask, nonce="n1")
    assert inv.command == (
        'echo "EDGEBENCH n1 T0 ${EPOCHREALTIME:-$(date +%s.%N)}"; '
        "LD_LIBRARY_PATH=/data/local/tmp/edgebench/llama-bench/lib taskset c0 "
        "/data/local/tmp/edgebench/llama-bench/bin/llama-bench -m /data/local/tmp/edgebench/models/tiny/m.gguf "
        "-p 64 -n 0 -r 2 -t 2 -o jsonl; rc=$?; "
        'echo "EDGEBENCH n1 T1 ${EPOCHREALTIME:-$(date +%s.%N)}"; echo "EDGEBENCH n1 RC $rc"')
    assert inv.env == (("LD_LIBRARY_PATH", "/data/local/tmp/edgebench/llama-bench/lib"),)
    assert inv.affinity_mask == "c0"
    dec = phase_command(f"{work}/llama-bench", f"{work}/m.gguf", "decode", 16, reps=2, threads=2, mask=None, nonce="n2")
    assert "taskset" not in dec.command and "-p 0 -n 16 -r 2 -t 2 -o jsonl" in dec.command


def test_phase_command_writes_llama_bench_s_pid_for_the_sampler():
    inv = phase_command("/w/llama.cpp", "/w/m.gguf", "decode", 8, reps=1, threads=2, mask="c0", nonce="n",
                        pid_file="/w/llama.cpp.pid", extra=("-d", "512"))
    # the pid is written by a `sh -c` that then execs taskset (which execs llama-bench): one pid, foreground
    assert ("LD_LIBRARY_PATH=/w/llama.cpp/lib sh -c 'echo $$ > \"$0\" && exec \"$@\"' /w/llama.cpp.pid "
            "taskset c0 /w/llama.cpp/bin/llama-bench -m /w/m.gguf -p 0 -n 8 -r 1 -t 2 -o jsonl -d 512; rc=$?") \
        in inv.command
    assert prepare_command("/w/llama.cpp", None, "/w/x y.pid").endswith("rm -f '/w/x y.pid'")


def test_phase_command_quotes_every_value():
    inv = phase_command("/data/x y/lb", "/data/m'; rm -rf /;.gguf", "decode", 8, reps=1, threads=1, mask="c0",
                        nonce="n")
    assert "'/data/x y/lb/bin/llama-bench'" in inv.command
    assert "LD_LIBRARY_PATH='/data/x y/lb/lib'" in inv.command
    assert "'/data/m'\"'\"'; rm -rf /;.gguf'" in inv.command


def test_prepare_command():
    assert prepare_command("/data/local/tmp/edgebench/llama-bench") == \
        "chmod 755 /data/local/tmp/edgebench/llama-bench/bin/llama-bench"


def _elf(machine: int) -> bytes:  # ELF64 LE header (layout in tests/test_elf.py)
    return b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHI", 3, machine, 1) + bytes(40)


def test_bundle_files_names(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "lib").mkdir()
    (tmp_path / "bin" / "llama-bench").write_bytes(_elf(183))
    for lib in ("libllama.so", "libggml.so"):
        (tmp_path / "lib" / lib).write_bytes(_elf(183))
    (tmp_path / "lib" / "README").write_text("not a library")
    assert sorted(bundle_files(tmp_path)) == ["llama-bench/bin/llama-bench", "llama-bench/lib/libggml.so",
                                              "llama-bench/lib/libllama.so"]


# --- parsing real llama-bench output -------------------------------------------------------------------

def _real_lines(n_prompt: int, n_gen: int) -> str:
    """A real jsonl result line from the strix-halo capture (build 1c1409e1), with its test swapped."""
    for line in (FIXTURES / "strixhalo_rocm_b6865_llama32-1b_depth-sweep.jsonl").read_text().splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            if (d["n_prompt"], d["n_gen"], d["n_depth"]) == (n_prompt, n_gen, 0):
                return line
    raise AssertionError("fixture line not found")


@pytest.mark.parametrize("phase,n_prompt,n_gen", [("prefill", 512, 0), ("decode", 0, 128)])
def test_parse_phase_output_with_real_jsonl(phase, n_prompt, n_gen):
    line = _real_lines(n_prompt, n_gen)
    d = json.loads(line)
    out = ("EDGEBENCH ab T0 1700000000.250000\n" + line + "\n"
           "EDGEBENCH ab T1 1700000010.750000\nEDGEBENCH ab RC 0\n")
    res = parse_phase_output(phase, out, "ab")
    assert (res.t_start, res.t_end, res.exit_code) == (1700000000.25, 1700000010.75, 0)
    row = res.row()
    assert row.kind == ("pp" if phase == "prefill" else "tg")
    assert row.samples_ts == tuple(d["samples_ts"])
    assert row.build_commit == "1c1409e1"
    spans, warm = phase_spans(res, row)
    assert len(spans) == len(d["samples_ns"])
    assert spans[-1][1] == res.t_end
    assert spans[0][1] - spans[0][0] == pytest.approx(d["samples_ns"][0] / 1e9)
    assert warm == [(res.t_start, spans[0][0])]


def test_metrics_from_samples_ts():
    pp = parse_phase_output("prefill", _real_lines(512, 0), "x").row()
    tg = parse_phase_output("decode", _real_lines(0, 128), "x").row()
    m = throughput_metrics(pp, tg)
    assert m["prefill_tps"]["value"] == pytest.approx(sum(pp.samples_ts) / len(pp.samples_ts))
    assert m["decode_tps"]["n"] == len(tg.samples_ts)
    assert m["decode_tps"]["higher_is_better"] is True


def test_missing_result_is_a_runtime_failure():
    from suite.core.errors import RuntimeFailure

    text = ("EDGEBENCH q T0 1.0\nerror: failed to load model '/data/x.gguf'\nmain: error: failed to load model\n"
            "EDGEBENCH q T1 2.0\nEDGEBENCH q RC 1\n")
    res = parse_phase_output("prefill", text, "q")
    assert res.exit_code == 1
    with pytest.raises(RuntimeFailure, match="no pp result.*exit status 1"):
        res.row()


# --- on the loopback phone ---------------------------------------------------------------------------


def _bundle(root: Path, machine: int) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "lib").mkdir()
    (root / "bin" / "llama-bench").write_bytes(_elf(machine))
    (root / "lib" / "libllama.so").write_bytes(_elf(machine))
    return root


def _request(tmp_path, *, bundle, model_file=None, probe=False):
    from suite.session.local import RunRequest

    return RunRequest(model_id="tiny", runtime="llama-bench", device="phone",
                      params=BurstParams(prompt_tokens=16, gen_tokens=8, reps=2, warmup=1, threads=None),
                      models_dir=tmp_path / "models", results_dir=tmp_path / "results", probe=probe,
                      sample_rate_hz=10.0, runtime_bundle=Path(bundle) if bundle else None, model_file=model_file)


@pytest.mark.loopback
def test_arm64_bundle_refused_on_the_x86_64_loopback_phone_before_any_push(loopback_phone_factory,
                                                                           loopback_adb_server, tmp_path):
    from suite.device import provision
    from suite.device.android import snapshot as snap
    from suite.session.run import run

    phone = loopback_phone_factory("galaxy-a15")
    ref = phone_ref(phone)
    live = ref.live()
    assert live.props["ro.product.cpu.abi"] == "x86_64"
    cores = big_cores(live.texts[snap.CPUFREQ])
    assert cores.cpus == (6, 7) and cores.mask == "c0"  # the live phone's cpufreq = its profile
    with pytest.raises(ElfError, match="built for arm64-v8a, but the device's ABI is x86_64"):
        run(ref, _request(tmp_path, bundle=_bundle(tmp_path / "arm", 183)))
    assert provision.read_manifest(ref.transport()) == {}  # nothing was pushed


@pytest.mark.loopback
@pytest.mark.timeout(3600)  # the first use builds llama-bench (minutes; .ci/run builds it before the tests)
def test_llama_bench_end_to_end_on_the_loopback_phone(loopback_phone_factory, loopback_adb_server, tmp_path):
    """No bundle: edgebench builds llama-bench itself (once, cached) for the phone's ABI and the
    variant its cpuinfo allows, pushes it, runs it; then the same folder as a user's bundle."""
    from suite.core.filehash import local_sha256
    from suite.runtimes.build import llama_cpp
    from suite.session.run import run
    from suite.store import load_results

    phone = loopback_phone_factory("galaxy-a15", charging=False)
    ref = phone_ref(phone)
    said: list[str] = []
    path = run(ref, _request(tmp_path, bundle=None, probe=True), status=said.append)
    rec = json.loads((path / "run.json").read_text())
    assert rec["outcome"] == "completed", rec["errors"]
    rt = rec["runtime"]
    assert rt["name"] == "llama.cpp" and rt["threads"] == 2 and rt["backend"] == "CPU" and rt["version"]
    assert rt["affinity"]["mask"] == "c0" and rt["affinity"]["cpus"] == [6, 7]
    # the sandbox behind the loopback phone has fewer cpus than its profile: taskset c0 is refused
    # there, llama-bench runs unpinned, and the record says so (on a phone the mask applies)
    assert rt["affinity"]["applied"] is False and "taskset c0" in rt["affinity"]["not_applied_because"]
    # where llama-bench could run and its memory are read from its /proc status by the phone's sampling loop
    # (the loopback phone's shells share one pid namespace, as a phone's do); this tiny model's invocations may
    # live between two readings: tests/test_beyond_ram.py asserts the readings on invocations that last
    if rt["affinity"].get("allowed"):
        assert rt["affinity"]["matches_asked"] is False  # taskset c0 was refused: not where it was asked
    assert "-p 16 -n 0 -r 2 -t 2 -o jsonl" in rt["commands"]["prefill"]
    assert "-p 0 -n 8 -r 2 -t 2 -o jsonl" in rt["commands"]["decode"]
    b = rt["bundle"]
    assert b["abi"] == "x86_64" and b["elf"]["bin/llama-bench"] == "x86_64" and b["built_by"] == "edgebench"
    # the loopback phone's cpuinfo is its profile's arm64 capture: no x86 flags, the baseline build
    assert b["variant"] == "x86-64-v2" and "names no x86_64 CPU features" in b["variant_choice"]["evidence"]
    assert b["commit"] == llama_cpp.SOURCE.commit and b["toolchain"]["compiler"].startswith("zig ")
    assert b["sha256"] == local_sha256(Path(b["path"]) / "bin" / "llama-bench")
    assert rt["version"] == llama_cpp.SOURCE.short_commit  # llama-bench's own build_commit
    assert any("x86-64-v2" in m and "names no x86_64 CPU features" in m for m in said)
    roof = rec["roofline"]  # the native probes, built for the same variant, measured the bounds
    assert roof["bandwidth_source"] == "probe" and roof["bandwidth_method"].startswith("on-device: edgebench-membw")
    assert roof["compute_method"].startswith("on-device: edgebench-peak, int8 pmaddubsw")
    m = rec["metrics"]
    assert 0 < m["roofline_fraction/prefill"]["value"] < 1 and "emulated" not in m["roofline_fraction/prefill"]
    assert m["prefill_tps"]["n"] == 2 and m["decode_tps"]["n"] == 2 and m["decode_tps"]["value"] > 0
    assert m["energy_j/prefill"]["value"] > 0 and m["energy_j/decode"]["value"] > 0  # discharging phone
    s = load_results([path]).samples()
    assert {"phase/prefill", "phase/decode", "phase/warmup", "power_w"} <= set(s["channel"])
    assert rec["provisioning"]["pushed"]

    # --runtime-bundle: the same build given as a user's folder, with --model-file; it is cached on the phone
    from suite.models import build_model

    built = build_model("tiny", fmt="gguf", quant="q8_0", seed=0, out_root=tmp_path / "models")
    path2 = run(ref, _request(tmp_path, bundle=b["path"], model_file=built.model_file))
    rec2 = json.loads((path2 / "run.json").read_text())
    assert rec2["outcome"] == "completed", rec2["errors"]
    assert rec2["runtime"]["bundle"]["built_by"] == "user"
    assert rec2["runtime"]["bundle"]["sha256"] == b["sha256"]  # the binary in the pooling key, whoever built it
    assert rec2["model"]["synthetic_weights"] is False and rec2["model"]["quant"] == "q8_0"
    assert rec2["model"]["sha256"] == built.manifest["files"]["model.gguf"]["sha256"]
    assert not any(n.startswith("llama.cpp/") for n in rec2["provisioning"]["pushed"])


@pytest.mark.loopback
@pytest.mark.timeout(3600)  # the first use builds the arm64 llama-bench (minutes; .ci/run builds it first)
def test_a_stock_arm64_phone_runs_edgebench_s_own_build_under_emulation(loopback_phone_factory,
                                                                       loopback_adb_server, tmp_path):
    """An arm64 phone without Python (its binaries run under qemu-aarch64): no runtime named, so
    llama-bench, edgebench's own build, for the variant the profile's cpuinfo allows; simulated and
    emulated, never a speed claim."""
    from suite.session.run import default_runtime, run

    phone = loopback_phone_factory("galaxy-a15", abi="arm64-v8a", charging=False)
    ref = phone_ref(phone)
    name, why = default_runtime(ref)
    assert name == "llama.cpp" and "has no Python with onnxruntime_genai" in why
    path = run(ref, _request(tmp_path, bundle=None, probe=True))
    rec = json.loads((path / "run.json").read_text())
    assert rec["outcome"] == "completed", rec["errors"]
    assert rec["device"]["simulated"] is True
    b = rec["runtime"]["bundle"]
    assert b["abi"] == "arm64-v8a" and b["elf"]["bin/llama-bench"] == "arm64-v8a" and b["built_by"] == "edgebench"
    # the galaxy-a15 profile's A76/A55 Features list asimddp and asimdhp, not i8mm
    assert b["variant"] == "dotprod" and b["variant_choice"]["evidence"].startswith("cpus 6,7 report asimddp")
    assert "qemu-aarch64" in b["emulated"] and "never a speed claim" in b["emulated"]
    m = rec["metrics"]
    assert m["prefill_tps"]["n"] == 2 and m["decode_tps"]["n"] == 2
    roof = rec["roofline"]  # the native probes, built for dotprod, ran on the phone's cores (under qemu)
    assert roof["bandwidth_source"] == "probe" and roof["compute_method"].startswith("on-device: edgebench-peak, "
                                                                                      "int8 sdot")
    assert roof["compute_detail"]["all_cores"]["threads"] == 8  # the profile's 8 cores, once
    for name in ("roofline_fraction/decode", "roofline_fraction/prefill"):  # whatever its value: labelled
        assert m[name]["emulated"] == b["emulated"]
    assert not [e for e in rec["errors"] if e["type"] == "RooflineError"]


def test_bundle_symlinks_are_recreated_not_pushed(tmp_path):
    from suite.runtimes.llama_bench import bundle_links

    (tmp_path / "bin").mkdir()
    (tmp_path / "lib").mkdir()
    (tmp_path / "bin" / "llama-bench").write_bytes(_elf(62))
    (tmp_path / "lib" / "libllama.so.0.5.0").write_bytes(_elf(62))
    (tmp_path / "lib" / "libllama.so.0").symlink_to("libllama.so.0.5.0")
    (tmp_path / "lib" / "libllama.so").symlink_to("libllama.so.0")
    assert sorted(bundle_files(tmp_path)) == ["llama-bench/bin/llama-bench", "llama-bench/lib/libllama.so.0.5.0"]
    links = bundle_links(tmp_path)
    assert links == {"lib/libllama.so": "libllama.so.0.5.0", "lib/libllama.so.0": "libllama.so.0.5.0"}
    assert prepare_command("/w/lb", links) == (
        "chmod 755 /w/lb/bin/llama-bench && ln -sf libllama.so.0.5.0 /w/lb/lib/libllama.so"
        " && ln -sf libllama.so.0.5.0 /w/lb/lib/libllama.so.0")
    (tmp_path / "lib" / "libout.so").symlink_to("/bin/true")
    with pytest.raises(ElfError, match="links outside"):
        bundle_links(tmp_path)


def test_check_affinity_falls_back_to_unpinned_with_the_reason():
    from suite.runtimes.llama_bench import check_affinity
    from suite.transport.base import ShellResult

    class T:
        def __init__(self, rc, err=""):
            self.rc, self.err, self.cmds = rc, err, []

        def shell(self, cmd, timeout_s=60.0):
            self.cmds.append(cmd)
            return ShellResult(cmd, self.rc, "", self.err, 0.0)

    cores = big_cores(cpufreq_text("galaxy-a15"))
    ok = T(0)
    assert check_affinity(ok, cores) == ("c0", None) and ok.cmds == ["taskset c0 true"]
    mask, why = check_affinity(T(1, "taskset: failed to set pid 2's affinity: Invalid argument"), cores)
    assert mask is None and "Invalid argument" in why


# Captured from a real llama-bench (llama.cpp 0c1e570, the copy vendored in llama-cpp-python 0.3.36,
# built for x86_64 with -DLLAMA_BUILD_TOOLS=ON) on this host, on the tiny card's Q4_0 GGUF, with
# exactly the argv the adapter builds: `-p 16 -n 0 -r 2 -t 1 -o jsonl`, then `-p 0 -n 8 -r 2 -t 1 -o jsonl`.
REAL_PP = '{"build_commit": "0c1e570", "build_number": 1, "cpu_info": "AMD EPYC", "gpu_info": "", "backends": "CPU", "model_filename": "/tmp/lbmodels/tiny/gguf-q4_0-s0/model.gguf", "model_type": "llama ?B Q4_0", "model_size": 69376, "model_n_params": 106816, "n_batch": 2048, "n_ubatch": 512, "n_threads": 1, "cpu_mask": "0x0", "cpu_strict": false, "poll": 50, "type_k": "f16", "type_v": "f16", "n_gpu_layers": -1, "n_cpu_moe": 0, "split_mode": "layer", "main_gpu": 0, "no_kv_offload": false, "flash_attn": -1, "devices": "auto", "tensor_split": "0.00", "tensor_buft_overrides": "none", "load_mode": "auto", "lazy_mode": "auto", "embeddings": false, "no_op_offload": 0, "no_host": false, "repack": true, "fit_target": 0, "fit_min_ctx": 0, "n_prompt": 16, "n_gen": 0, "n_depth": 0, "test_time": "2026-11-24T22:57:06Z", "avg_ns": 405886, "stddev_ns": 21223, "avg_ts": 39473.897845, "stddev_ts": 2064.024374, "samples_ns": [ 420893, 390879 ],"samples_ts": [ 38014.4, 40933.4 ]}'
REAL_TG = '{"build_commit": "0c1e570", "build_number": 1, "cpu_info": "AMD EPYC", "gpu_info": "", "backends": "CPU", "model_filename": "/tmp/lbmodels/tiny/gguf-q4_0-s0/model.gguf", "model_type": "llama ?B Q4_0", "model_size": 69376, "model_n_params": 106816, "n_batch": 2048, "n_ubatch": 512, "n_threads": 1, "cpu_mask": "0x0", "cpu_strict": false, "poll": 50, "type_k": "f16", "type_v": "f16", "n_gpu_layers": -1, "n_cpu_moe": 0, "split_mode": "layer", "main_gpu": 0, "no_kv_offload": false, "flash_attn": -1, "devices": "auto", "tensor_split": "0.00", "tensor_buft_overrides": "none", "load_mode": "auto", "lazy_mode": "auto", "embeddings": false, "no_op_offload": 0, "no_host": false, "repack": true, "fit_target": 0, "fit_min_ctx": 0, "n_prompt": 0, "n_gen": 8, "n_depth": 0, "test_time": "2026-11-24T22:57:06Z", "avg_ns": 340704, "stddev_ns": 38829, "avg_ts": 23634.179428, "stddev_ts": 2692.947680, "samples_ns": [ 368155, 313254 ],"samples_ts": [ 21730, 25538.4 ]}'


def test_parse_real_output_of_this_llama_bench():
    import json as _json

    from suite.catalog.cards import get_model_card

    pp = parse_phase_output("prefill", "EDGEBENCH r T0 10.0\n" + REAL_PP + "\nEDGEBENCH r T1 11.5\nEDGEBENCH r RC 0\n", "r")
    tg = parse_phase_output("decode", "EDGEBENCH s T0 12.0\n" + REAL_TG + "\nEDGEBENCH s T1 13.0\nEDGEBENCH s RC 0\n", "s")
    assert not pp.problems and not tg.problems
    prow, trow = pp.row(), tg.row()
    assert (prow.kind, prow.n_prompt, prow.n_gen) == ("pp", 16, 0)
    assert (trow.kind, trow.n_prompt, trow.n_gen) == ("tg", 0, 8)
    d = _json.loads(REAL_TG)
    assert trow.samples_ts == tuple(d["samples_ts"]) and trow.samples_ns == tuple(d["samples_ns"])
    assert prow.threads == 1 and prow.quant == "Q4_0" and prow.build_commit == "0c1e570"
    assert prow.params == get_model_card("tiny").params()  # llama.cpp's count = the card's
    m = throughput_metrics(prow, trow)
    assert m["decode_tps"]["n"] == 2
    assert m["decode_tps"]["value"] == pytest.approx(sum(d["samples_ts"]) / 2)
    spans, warm = phase_spans(tg, trow)
    assert spans[-1][1] == 13.0 and warm[0][0] == 12.0
    assert sum(b - a for a, b in spans) == pytest.approx(sum(d["samples_ns"]) / 1e9)


@pytest.mark.loopback
@pytest.mark.timeout(3600)  # the first use builds the armv8.0 llama-bench too (.ci/run builds it first)
def test_a_variant_the_cpu_cannot_run_falls_back_once_and_says_so(loopback_phone_factory, loopback_adb_server,
                                                                  tmp_path):
    """The profile's cpuinfo lists dot product, but the emulated CPU is a Cortex-A53 (Armv8.0): the
    dotprod build dies of SIGILL (exit 132), and the armv8.0 build runs instead, once, recorded."""
    from suite.session.run import run

    phone = loopback_phone_factory("galaxy-a15", abi="arm64-v8a", qemu_cpu="cortex-a53", charging=False)
    said: list[str] = []
    path = run(phone_ref(phone), _request(tmp_path, bundle=None, probe=True), status=said.append)
    rec = json.loads((path / "run.json").read_text())
    assert rec["outcome"] == "completed", rec["errors"]
    b = rec["runtime"]["bundle"]
    assert b["variant"] == "armv8.0" and b["fallback"]["from"] == "dotprod" and "SIGILL" in b["fallback"]["why"]
    assert "falling back to armv8.0" in b["variant_choice"]["evidence"]
    # the dotprod probes died first, before any measured run: the fallback's binary and probes are pushed
    assert "probe" in b["fallback"]["why"]
    assert set(b["fallback"]["pushed"]) == {"llama.cpp/bin/llama-bench", "probes/bin/edgebench-membw",
                                            "probes/bin/edgebench-peak", "probes/bin/edgebench-storage"}
    assert any("the dotprod build was killed by SIGILL" in m and "trying armv8.0 once" in m for m in said)
    assert rec["metrics"]["decode_tps"]["n"] == 2
    # the armv8.0 probes measured the roofline: smlal, the instruction that build runs
    assert rec["roofline"]["compute_method"].startswith("on-device: edgebench-peak, int8 smlal")


@pytest.mark.loopback
@pytest.mark.timeout(3600)
def test_sustained_on_a_stock_arm64_phone_is_one_llama_bench_per_window(loopback_phone_factory,
                                                                       loopback_adb_server, tmp_path):
    """The sustained scenario with edgebench's own llama-bench: every window is one decode invocation
    between device-clock markers, watched as it ends; then --duration ends the run itself."""
    from suite.scenarios.sustained import run_sustained

    phone = loopback_phone_factory("galaxy-a15", abi="arm64-v8a", charging=False)
    path = run_sustained(phone_ref(phone), _request(tmp_path, bundle=None), windows=3, window_tokens=8,
                         min_window_s=0)
    rec = json.loads((path / "run.json").read_text())
    assert rec["outcome"] == "completed", rec["errors"]
    assert rec["scenario"]["name"] == "sustained" and rec["scenario"]["params"]["windows_done"] == 3
    assert "-p 0 -n 8 -r 1 -t 2 -o jsonl" in rec["runtime"]["commands"]["window"]
    th = rec["thermal"]
    assert len(th["window_tps"]) == 3 and all(v > 0 for _, v in th["window_tps"])
    m = rec["metrics"]
    assert m["decode_tps"]["n"] == 3 and "stability_pct" in m
    # a window's throughput is llama-bench's timing of it (its samples_ts, printed to 2 decimals)
    assert [v for _, v in th["window_tps"]] == pytest.approx(m["decode_tps"]["samples"], rel=1e-4)
    assert rec["unavailable"]["prefill_tps"].startswith("sustained windows on llama-bench decode only")
    # a duration: the window that ends past it is the last, and the run is completed, not interrupted
    path2 = run_sustained(phone_ref(phone), _request(tmp_path, bundle=None), duration_s=0.5, window_tokens=8)
    rec2 = json.loads((path2 / "run.json").read_text())
    assert rec2["outcome"] == "completed" and rec2["errors"] == [] and rec2["scenario"]["stopped"]["by"] == "duration"
    assert rec2["scenario"]["params"]["windows_done"] >= 1


@pytest.mark.loopback
@pytest.mark.timeout(3600)
def test_the_run_command_on_a_stock_arm64_phone_says_what_it_chose_and_what_it_measured(
        loopback_phone_factory, loopback_adb_server, tmp_path):
    """`edgebench run --device SERIAL --model tiny`, nothing else: the CLI says it runs llama.cpp (llama-bench)
    because the phone has no Python, and labels the result simulated and emulated."""
    import os
    import subprocess
    import sys

    phone = loopback_phone_factory("galaxy-a15", abi="arm64-v8a", charging=False)
    r = subprocess.run([sys.executable, "-m", "suite.cli.main", "run", "--device", phone.serial, "--adb",
                        f"127.0.0.1:{phone.server.port}", "--model", "tiny", "--reps", "2", "--prompt-tokens", "16",
                        "--gen-tokens", "8", "--idle", "0", "-r", str(tmp_path / "results")],
                       capture_output=True, text=True, timeout=3000, env=os.environ | {"COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    assert "has no Python with onnxruntime_genai: running llama.cpp through llama-bench" in r.stderr
    assert "(llama.cpp 0c1e57098) -> completed" in r.stdout
    assert "simulated:" in r.stdout and "emulated: qemu-aarch64" in r.stdout and "never a speed claim" in r.stdout


def _host_baseline():
    """(ABI, baseline variant) of edgebench's build for this host's CPU."""
    import platform

    from suite.runtimes.build.variants import VARIANTS, normalize_abi

    abi = normalize_abi(platform.machine())
    return abi, next(v.name for v in VARIANTS[abi].values() if v.lower is None)


@pytest.mark.timeout(3600)  # the first use builds the baseline llama-bench (.ci/run builds it first)
def test_llama_cpp_on_this_host_runs_its_benchmark_binary_at_a_filled_context(tmp_path):
    """`--runtime llama.cpp` (asked for by its alias) on this host: the same binary, invocations,
    native probes and record as on a phone, through the local transport (nothing pushed), on the
    host's realtime clock; `--depth` goes to llama-bench as `-d` and into the decode roofline."""
    from suite.analysis.roofline import decode_bytes_per_token, mean_decode_context
    from suite.runtimes.build import llama_cpp
    from suite.session.local import RunRequest
    from suite.session.run import run
    from suite.store import load_results

    abi, variant = _host_baseline()
    built = llama_cpp.ensure_built(abi, variant)  # given as a user's bundle: CI builds only the baseline
    # llama-68m: invocations long enough (a second or two) for the 20 Hz sampler to see llama-bench's memory
    req = RunRequest(model_id="llama-68m", runtime="llama-bench", device="local",
                     params=BurstParams(prompt_tokens=64, gen_tokens=32, reps=2, warmup=1, threads=2, depth=64),
                     models_dir=tmp_path / "models", results_dir=tmp_path / "results", probe=True,
                     sample_rate_hz=20.0, runtime_bundle=built.path)
    path = run(None, req)
    rec = json.loads((path / "run.json").read_text())
    assert rec["outcome"] == "completed", rec["errors"]
    rt = rec["runtime"]
    assert rt["name"] == "llama.cpp" and rt["version"] == llama_cpp.SOURCE.short_commit and rt["threads"] == 2
    assert rt["bundle"]["built_by"] == "user" and rt["bundle"]["sha256"] == built.manifest["sha256"]
    assert "-p 64 -n 0 -r 2 -t 2 -o jsonl -ngl 0 -dev none -d 64" in rt["commands"]["prefill"]
    assert "-p 0 -n 32 -r 2 -t 2 -o jsonl -ngl 0 -dev none -d 64" in rt["commands"]["decode"]
    # the CPU, asked for by default and used: llama-bench's own "devices" field said none
    assert rt["backend"] == "CPU" and rt["backend_requested"] == "cpu" and rt["backends"] == ["CPU"]
    # where llama-bench could run, read from its /proc status while it ran: the cores it was pinned to
    aff = rt["affinity"]
    assert aff["applied"] and aff["matches_asked"] is True and aff["allowed"], aff
    assert rec["device"]["transport"] == "local" and "provisioning" not in rec  # run where it was built
    assert rec["scenario"]["params"]["depth"] == 64
    m, model = rec["metrics"], rec["model"]
    assert m["prefill_tps"]["n"] == 2 and m["decode_tps"]["n"] == 2 and m["decode_tps"]["value"] > 0
    # llama-bench's own memory, followed through the pid file each invocation writes (never edgebench's)
    assert 0.5 * model["bytes"] < m["peak_rss_bytes"]["value"] < 100 * 2**20  # not edgebench's (hundreds of MiB)
    assert rt["commands"]["decode"].startswith('echo "EDGEBENCH') and " sh -c " in rt["commands"]["decode"]
    roof = rec["roofline"]
    assert roof["bandwidth_method"].startswith("on-device: edgebench-membw")
    # decode at depth 64: llama-bench's tg test reads the KV cache from position 64 to 64 + 32
    assert roof["decode_bytes_per_token"] == pytest.approx(decode_bytes_per_token(
        model["weight_bytes_read_per_token"], model["kv_bytes_per_position"], mean_decode_context(64, 33)))
    s = load_results([path]).samples()
    phases = s[s["channel"].str.startswith("phase/")]
    # the phase markers (llama-bench's device clock) and the sampler share one clock: they interleave
    assert {"phase/prefill", "phase/decode"} <= set(phases["channel"])
    assert 0 <= phases["t_s"].min() and phases["t_s"].max() <= s["t_s"].max() + 1.0


def test_the_own_build_for_this_host_is_chosen_from_its_cpuinfo():
    from suite.device.live import host_live
    from suite.runtimes import get_runtime
    from suite.runtimes.build.variants import choose_variant, cpu_features
    from suite.transport.local import LocalTransport

    live = host_live(LocalTransport())
    abi, _ = _host_baseline()
    assert live.props["ro.product.cpu.abi"] == abi
    best = choose_variant(abi, cpu_features(Path("/proc/cpuinfo").read_text())).variant.name
    assert f" {abi}/{best} " in get_runtime("llama.cpp").own_version(live)


def test_depth_is_refused_where_a_runtime_has_no_filled_context_mode(tmp_path):
    from suite.core.errors import EdgebenchError
    from suite.session.local import RunRequest
    from suite.session.run import check_request

    req = RunRequest(model_id="tiny", runtime="ort-genai", params=BurstParams(depth=512))
    with pytest.raises(EdgebenchError, match="--depth measures at a filled context") as info:
        check_request(req, None)
    assert info.value.exit_code == 2 and "llama.cpp" in info.value.hint
    assert BurstParams().to_dict() == BurstParams(depth=0).to_dict() and "depth" not in BurstParams().to_dict()
    assert BurstParams(depth=512).to_dict()["depth"] == 512
