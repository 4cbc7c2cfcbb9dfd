"""Runtimes `executorch` (llama_main) and `genie` (genie-t2t-run) (issue 16): vendor tools from the user's bundle
on a phone. No such binary can run here (an ExecuTorch export needs torch; Genie is Qualcomm's SDK and the phone's
DSP), so there is no end-to-end test: the command lines, the model files' reading (a .pte's delegates, a Genie
config's files), the placement of the tools' own timings (on real captured output) and the request checks are
tested as pure functions; docs/engines.md says so."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from suite.core.errors import EdgebenchError
from suite.core.measure import BurstParams
from suite.device.elf import ElfError, check_bundle_abi
from suite.models.user_file import GENIE_FORMAT, ModelFileError, artefact_from_file, detect_format, pte_delegates
from suite.runtimes import NATIVE, backends, get_runtime
from suite.runtimes.executorch_bench import BASE_FLAGS, help_flags, invocation, llama_main_argv
from suite.runtimes.genie_bench import GenieRuntime, run_config
from suite.runtimes.genie_bench import invocation as genie_invocation
from suite.runtimes.native import read_markers
from suite.runtimes.one_shot import OneShotRuntime, prompt_text, repetition, spans_of
from suite.runtimes.outputs import TOOL_PARSERS

FIX = Path(__file__).parent / "fixtures" / "runtimes"
S26 = "executorch_llama_main_galaxy-s26-sm8850_v1.5.1-qwen3-0.6b-short-chat_stdout.txt"
XIAOMI = "genie-t2t-run_xiaomi15-sd8elite_qairt2.36-profile-json-PROVENANCE-INCOMPLETE.txt"


def test_both_are_native_runtimes_of_the_user_s_artefact_which_says_where_it_runs():
    et, genie = get_runtime("executorch"), get_runtime("genie")
    assert et.kind == NATIVE and et.formats == ("pte",) and et.inputs == ("tokenizer",)
    assert genie.kind == NATIVE and genie.formats == (GENIE_FORMAT,) and not getattr(genie, "inputs", ())
    for rt in (et, genie):
        assert backends(rt) == ("cpu", "gpu", "npu") and rt.backend_from_artefact and not rt.compute_probed


# --- ExecuTorch ---------------------------------------------------------------------------------

GFLAGS_HELP = """main: Warning: SetUsageMessage() never called

  Flags from /executorch/examples/models/llama/main.cpp:
    -cpu_threads (Number of CPU threads for inference.) type: int32
      default: -1
    -max_new_tokens (Maximum number of tokens to generate.) type: int32
      default: 128
    -model_path (Model serialized in flatbuffer format.) type: string
      default: "llama2.pte"
    -prompt (Prompt.) type: string default: "The answer to the ultimate question is"
    -seq_len (Total number of tokens to generate (prompt + output).) type: int32 default: 128
    -temperature (Temperature; Default is 0.8f.) type: double default: 0.80000001192092896
    -tokenizer_path (Tokenizer stuff.) type: string default: "tokenizer.bin"
"""


def test_llama_main_s_flags_come_from_its_help_and_only_known_ones_are_passed():
    flags = help_flags(GFLAGS_HELP)
    assert {"max_new_tokens", "cpu_threads"} <= flags
    assert help_flags("Usage: llama_main --model_path <model.pte> ...") == BASE_FLAGS  # no gflags help: the base set
    p = BurstParams(prompt_tokens=64, gen_tokens=32, reps=2, warmup=1)
    newer = llama_main_argv("/b/llama_main", "/m/q.pte", "/t/tokenizer.json", p, flags, threads=4)
    assert newer[:3] == ["/b/llama_main", "--model_path=/m/q.pte", "--tokenizer_path=/t/tokenizer.json"]
    assert newer[3] == "--prompt=" + " ".join(["the"] * 63)  # 63 words + the BOS the runner adds
    assert newer[4:] == ["--temperature=0", "--seq_len=160", "--max_new_tokens=32", "--cpu_threads=4"]
    # an older runner: no --max_new_tokens (seq_len counts prompt + generated), no --cpu_threads
    assert llama_main_argv("/b/llama_main", "/m/q.pte", "/t/t.model", p, BASE_FLAGS, threads=4)[4:] == [
        "--temperature=0", "--seq_len=96"]
    inv = invocation("/data/local/tmp/edgebench/executorch", "llama_main", "/m/my model.pte", "/t/tok.json", p,
                     flags, pid_file="/data/local/tmp/edgebench/executorch.pid")
    assert "'--model_path=/m/my model.pte'" in inv.command and " sh -c " in inv.command
    assert "LD_LIBRARY_PATH=/data/local/tmp/edgebench/executorch:/data/local/tmp/edgebench/executorch/lib" in inv.command
    # a QNN program's Hexagon libraries come from the bundle first
    assert "ADSP_LIBRARY_PATH='/data/local/tmp/edgebench/executorch;/data/local/tmp/edgebench/executorch/lib;" \
           "/vendor/dsp/cdsp;" in inv.command


def test_the_observer_s_wall_clock_stamps_place_the_phases_exactly():
    # the S26 capture's observer line: inference 1791379687.045 -> prompt eval end 687.102 -> end 688.122 (epoch s)
    run = TOOL_PARSERS.get("executorch").parse((FIX / S26).read_text())[-1]
    assert run.form == "PyTorchObserver" and run.counts == {"prompt_tokens": 19, "gen_tokens": 127}
    assert run.clock["inference_start"] == pytest.approx(1791379687.045)
    assert run.clock["prefill_end"] == pytest.approx(1791379687.102)
    assert run.clock["load_start"] == pytest.approx(1791379686.222)
    # an invocation whose markers (the device's $EPOCHREALTIME) enclose them: placed where the tool says
    a, pre, b, exact = spans_of(run, 1791379685.9, 1791379688.3)
    assert exact and (a, pre, b) == pytest.approx((1791379687.045, 1791379687.102, 1791379688.122))
    rep = repetition(run, (a, pre, b), warmup=False)
    assert rep.prefill_s == pytest.approx(0.057, abs=1e-6) and rep.t_first_token == pre
    # edgebench's decode rate: the 126 tokens after the first over the decode time (the tool prints 127 / s)
    assert len(rep.token_times) == 126 and rep.token_times[-1] == pytest.approx(b)
    assert len(rep.decode_latencies_s) / sum(rep.decode_latencies_s) == pytest.approx(126 / 1.020, rel=1e-6)
    # markers on another clock (a device whose wall clock the tool does not share): packed at the end
    a, pre, b, exact = spans_of(run, 100.0, 110.0)
    assert not exact and b == 110.0 and b - pre == pytest.approx(1.020, abs=1e-6) and pre - a == pytest.approx(0.057, abs=1e-6)


def test_the_last_run_of_the_preferred_form_is_the_invocation_s():
    class Tool(OneShotRuntime):
        tool, forms = "executorch", ("PyTorchObserver", "stats")

    stdout = (FIX / S26).read_text()
    stderr = (FIX / S26.replace("_stdout", "_stderr")).read_text()
    got = Tool().pick(TOOL_PARSERS.get("executorch").parse(stdout + "\n" + stderr))
    assert got.form == "PyTorchObserver" and got.counts["gen_tokens"] == 127
    assert Tool().pick(TOOL_PARSERS.get("executorch").parse(stderr)).form == "stats"  # a build without the observer
    assert Tool().pick([]) is None


def _pte(path: Path, delegates: list[str], *, in_segment: str | None = None) -> Path:
    """An ExecuTorch program's byte layout (exir/_serialize/_program.py): root offset, the ET12 file identifier,
    the eh00 extended header (length, program size, segment base offset), the flatbuffer, then the segments."""
    body = b"\x00" * 40 + b"".join(d.encode() + b"\x00\x00" for d in delegates) + b"\x00" * 40
    program_size = 32 + len(body)
    segment_base = (program_size + 15) // 16 * 16
    head = struct.pack("<I", 32) + b"ET12" + b"eh00" + struct.pack("<I", 24) + struct.pack("<QQ", program_size,
                                                                                           segment_base)
    data = (head + body).ljust(segment_base, b"\x00") + (in_segment or "weights").encode() * 4
    path.write_bytes(data)
    return path


def test_a_pte_program_is_recognised_and_its_delegates_say_where_it_runs(tmp_path):
    xnn = _pte(tmp_path / "xnn.pte", ["XnnpackBackend"])
    assert detect_format(xnn) == "pte" and pte_delegates(xnn) == ["XnnpackBackend"]
    card, built = artefact_from_file(xnn)
    assert built.format == "pte" and built.manifest["backend"] == "cpu" and card.params() is None
    assert built.manifest["model_sha256"] and built.model_file == xnn
    qnn = _pte(tmp_path / "qnn.pte", ["QnnBackend", "XnnpackBackend"])
    assert artefact_from_file(qnn)[1].manifest["backend"] == "npu"  # the NPU's part decides
    # a delegate's name inside the segments (weights, delegate blobs) is not a delegate of the program
    assert pte_delegates(_pte(tmp_path / "seg.pte", [], in_segment="VulkanBackend")) == []
    assert artefact_from_file(tmp_path / "seg.pte")[1].manifest["backend"] == "cpu"  # portable kernels


def test_the_backend_asked_must_be_the_one_the_model_was_built_for(tmp_path):
    from suite.session.local import RunRequest
    from suite.session.run import artefact_backend

    et = get_runtime("executorch")
    qnn = artefact_from_file(_pte(tmp_path / "qnn.pte", ["QnnBackend"]))[1]
    req = RunRequest(model_id="qnn", runtime="executorch", params=BurstParams())
    assert artefact_backend(req, et, qnn).params.backend == "npu"  # the default cpu gives way to the model's
    assert artefact_backend(RunRequest(model_id="q", params=BurstParams(backend="npu")), et, qnn).params.backend == "npu"
    with pytest.raises(EdgebenchError, match=r"--backend gpu: .*qnn.pte was built for the NPU \(QnnBackend\)"):
        artefact_backend(RunRequest(model_id="q", params=BurstParams(backend="gpu")), et, qnn)
    # runtimes whose backend is a flag keep the asked one
    assert artefact_backend(req, get_runtime("llama.cpp"), qnn) is req


def test_the_tokenizer_is_required_by_executorch_and_refused_elsewhere(tmp_path):
    from suite.session.local import RunRequest
    from suite.session.run import check_request

    bundle = tmp_path / "b"
    bundle.mkdir()
    tok = tmp_path / "tokenizer.json"
    tok.write_text("{}")
    with pytest.raises(EdgebenchError, match="the executorch runtime needs --tokenizer FILE"):
        check_request(RunRequest(model_id="m", runtime="executorch", runtime_bundle=bundle), None)
    assert check_request(RunRequest(model_id="m", runtime="executorch", runtime_bundle=bundle,
                                    inputs={"tokenizer": tok}), None).name == "executorch"
    with pytest.raises(EdgebenchError, match="no tokenizer file at"):
        check_request(RunRequest(model_id="m", runtime="executorch", runtime_bundle=bundle,
                                 inputs={"tokenizer": tmp_path / "none.json"}), None)
    with pytest.raises(EdgebenchError, match="--tokenizer is for the executorch runtime; llama.cpp takes no such"):
        check_request(RunRequest(model_id="m", runtime="llama.cpp", inputs={"tokenizer": tok}), None)


@pytest.mark.timeout(3600)  # the first use builds them
def test_a_hexagon_library_may_sit_in_an_arm64_bundle_but_an_x86_library_may_not(tmp_path):
    from suite.runtimes.build import llama_cpp

    arm = llama_cpp.ensure_built("arm64-v8a", "armv8.0").path / "bin" / "llama-bench"
    x86 = llama_cpp.ensure_built("x86_64", "x86-64-v2").path / "bin" / "llama-bench"
    bundle = tmp_path / "genie"
    bundle.mkdir()
    shutil.copyfile(arm, bundle / "genie-t2t-run")
    shutil.copyfile(arm, bundle / "libGenie.so")
    skel = bytearray(arm.read_bytes()[:64])
    skel[4], skel[18:20] = 1, struct.pack("<H", 164)  # an ELF32 for EM_QDSP6, as libQnnHtpV79Skel.so is
    (bundle / "libQnnHtpV79Skel.so").write_bytes(bytes(skel))
    rt = get_runtime("genie")
    assert rt.check_bundle(bundle, "arm64-v8a") == {"genie-t2t-run": "arm64-v8a", "libGenie.so": "arm64-v8a",
                                                    "libQnnHtpV79Skel.so": "hexagon"}
    assert set(rt.bundle_files(bundle)) == {"genie-t2t-run", "libGenie.so", "libQnnHtpV79Skel.so"}
    shutil.copyfile(x86, bundle / "libQnnHtp.so")
    with pytest.raises(ElfError, match="libQnnHtp.so in the bundle .* is built for x86_64"):
        check_bundle_abi(bundle, "arm64-v8a", "genie-t2t-run", flat=True)
    (bundle / "genie-t2t-run").unlink()
    with pytest.raises(ElfError, match="no genie-t2t-run in the bundle"):
        rt.check_bundle(bundle, "arm64-v8a")


# --- Genie --------------------------------------------------------------------------------------


def _genie_model(root: Path, *, outside: Path | None = None) -> Path:
    """A Genie model folder as QAIRT's tutorials lay it out: the config, its context binaries, tokenizer and the
    HTP extensions config (file contents are stand-ins: edgebench pushes them, it never reads them)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("llama_part_1_of_2.bin", "llama_part_2_of_2.bin", "tokenizer.json"):
        (root / name).write_bytes(name.encode())
    (root / "htp_backend_ext_config.json").write_text(json.dumps({"devices": [{"soc_model": 69, "dsp_arch": "v79"}]}))
    bins = ["llama_part_1_of_2.bin", str(outside) if outside else "./llama_part_2_of_2.bin"]
    config = {"dialog": {"version": 1, "type": "basic", "max-num-tokens": 200,
                         "context": {"version": 1, "size": 4096, "n-vocab": 128256, "bos-token": -1,
                                     "eos-token": [128001, 128009]},
                         "stop-sequence": ["</s>"],
                         "tokenizer": {"version": 1, "path": "tokenizer.json"},
                         "engine": {"version": 1, "n-threads": 3,
                                    "backend": {"version": 1, "type": "QnnHtp",
                                                "QnnHtp": {"version": 1, "kv-update-method": "SMART_MASK"},
                                                "extensions": "htp_backend_ext_config.json"},
                                    "model": {"version": 1, "type": "binary",
                                              "binary": {"version": 1, "ctx-bins": bins}}}}}
    path = root / "genie_config.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def test_a_genie_config_is_the_model_with_every_file_it_names(tmp_path):
    other = tmp_path / "elsewhere" / "llama_part_2_of_2.bin"
    other.parent.mkdir()
    other.write_bytes(b"part two")
    config = _genie_model(tmp_path / "llama-3.2-1b", outside=other)
    assert detect_format(config) == GENIE_FORMAT
    card, built = artefact_from_file(config)
    assert card.id == "llama-3.2-1b" and card.max_position_embeddings == 4096 and card.vocab_size == 128256
    assert built.manifest["backend"] == "npu" and built.manifest["dialog_type"] == "basic"
    # a file outside the config's folder is pushed under _ext/, and the config pushed names it there
    assert built.manifest["genie_paths"] == {"htp_backend_ext_config.json": "htp_backend_ext_config.json",
                                             "llama_part_1_of_2.bin": "llama_part_1_of_2.bin",
                                             str(other): "_ext/0-llama_part_2_of_2.bin",
                                             "tokenizer.json": "tokenizer.json"}
    assert set(built.manifest["files"]) == {"genie_config.json", "htp_backend_ext_config.json",
                                            "llama_part_1_of_2.bin", "_ext/0-llama_part_2_of_2.bin", "tokenizer.json"}
    digest = built.manifest["model_sha256"]
    other.write_bytes(b"part two, retrained")  # any named file changes the model's digest
    assert artefact_from_file(config)[1].manifest["model_sha256"] != digest


def test_a_missing_file_the_config_names_is_refused_with_its_key(tmp_path):
    config = _genie_model(tmp_path / "m")
    (tmp_path / "m" / "llama_part_1_of_2.bin").unlink()
    with pytest.raises(ModelFileError, match=r"names 'llama_part_1_of_2.bin' \('ctx-bins'\), which is not there"):
        artefact_from_file(config)


def test_the_config_pushed_names_the_pushed_files_and_the_run_s_token_count(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path / "cache"))
    config = _genie_model(tmp_path / "m")
    original = json.loads(config.read_text())
    pushed, overrides = run_config(original, {"./llama_part_2_of_2.bin": "llama_part_2_of_2.bin"}, 48)
    assert pushed["dialog"]["max-num-tokens"] == 48 and original["dialog"]["max-num-tokens"] == 200
    assert pushed["dialog"]["engine"]["model"]["binary"]["ctx-bins"] == ["llama_part_1_of_2.bin",
                                                                        "llama_part_2_of_2.bin"]
    assert overrides == {"dialog.max-num-tokens": {"was": 200, "now": 48},
                         "paths": {"./llama_part_2_of_2.bin": "llama_part_2_of_2.bin"}}
    assert pushed["dialog"]["stop-sequence"] == ["</s>"]  # a string that is no file stays
    _, built = artefact_from_file(config)
    files = GenieRuntime().model_files(built, BurstParams(gen_tokens=48))
    first, *rest = files
    assert first.startswith("edgebench-") and first.endswith(".json")  # edgebench's copy runs
    assert sorted(rest) == ["htp_backend_ext_config.json", "llama_part_1_of_2.bin", "llama_part_2_of_2.bin",
                            "tokenizer.json"]
    assert json.loads(files[first].read_text())["dialog"]["max-num-tokens"] == 48
    assert GenieRuntime().model_files(built, BurstParams(gen_tokens=48)) == files  # the same copy, cached


def test_genie_runs_in_the_config_s_folder_and_prints_its_profile():
    p = BurstParams(prompt_tokens=5, gen_tokens=8)
    inv = genie_invocation("/w/genie", "genie-t2t-run", "/w/models/m/abc/edgebench-1.json", p, pid_file="/w/g.pid")
    assert inv.argv == ("/w/genie/genie-t2t-run", "-c", "edgebench-1.json", "--prompt", "the the the the",
                        "--profile", "edgebench-profile.json")
    assert "cd /w/models/m/abc && LD_LIBRARY_PATH=/w/genie:/w/genie/lib ADSP_LIBRARY_PATH=" in inv.command
    assert inv.command.endswith("cat /w/models/m/abc/edgebench-profile.json 2>/dev/null; "
                                "rm -f /w/models/m/abc/edgebench-profile.json")
    assert prompt_text(1) == "the"


def test_the_profile_s_query_is_packed_at_the_end_of_its_invocation():
    # the Xiaomi 15 profile: ttft 531665 us, token-generation-time 5191579 us, 823 prompt / 200 generated tokens
    text = (FIX / XIAOMI).read_text()
    marked = read_markers(f"EDGEBENCH n T0 1000.0\nEDGEBENCH n T1 1008.0\nEDGEBENCH n RC 0\n{text}", "n")
    (run,) = [r for r in TOOL_PARSERS.get("genie").parse(marked.text) if r.form == "profile-json"]
    assert run.clock["inference_start"] == pytest.approx(391863.466531)  # its own clock: not the device's
    a, pre, b, exact = spans_of(run, marked.t_start, marked.t_end)
    assert not exact and b == 1008.0
    assert pre - a == pytest.approx(0.531665) and b - pre == pytest.approx(5.191579)
    rep = repetition(run, (a, pre, b), warmup=False)
    assert len(rep.token_times) == 199 and rep.ttft_s == pytest.approx(0.531665)
