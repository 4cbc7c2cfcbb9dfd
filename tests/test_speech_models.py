"""The speech ladder: Whisper cards, their whisper.cpp (ggml) builds, and the synthetic utterance."""

from __future__ import annotations

import dataclasses
import hashlib
import struct
import tomllib
import wave
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from suite.catalog.cards import load_model_cards
from suite.catalog.speech import SpeechCard, get_speech_card, load_speech_cards, speech_cards
from suite.core.errors import EdgebenchError, InsufficientDiskError, ModelBuildError, UnknownNameError

REPO_SPEECH = Path(__file__).resolve().parent.parent / "models" / "speech"
SPEECH_IDS = ["whisper-tiny", "whisper-base", "whisper-small", "whisper-medium", "whisper-large-v3-turbo",
              "whisper-large-v3"]
CARDS = load_speech_cards()


# --- cards ------------------------------------------------------------------------------------------
def test_the_six_whisper_cards_load_smallest_first_and_stay_out_of_the_llm_ladder():
    assert [c.id for c in speech_cards()] == SPEECH_IDS
    assert not set(SPEECH_IDS) & set(load_model_cards())  # models/*.toml never sees models/speech/
    assert all(c.reference and c.architecture == "whisper" and c.license == "MIT" for c in CARDS.values())


@pytest.mark.parametrize("card_id", SPEECH_IDS)
def test_params_from_architecture_equal_the_published_exact_count(card_id):
    card = CARDS[card_id]
    assert card.params() == card.params_published
    assert card.params() == card.encoder_params() + card.decoder_params()


def test_whisper_tiny_counts_by_part():
    # The Hugging Face layout: the encoder slice (embed_positions included) is 8,208,384 parameters.
    tiny = CARDS["whisper-tiny"]
    assert tiny.encoder_params() == 8_208_384
    # the key projection has no bias: one bias vector of d fewer per attention block than q/v/out
    assert tiny.decoder_params() - dataclasses.replace(tiny, decoder_layers=3).decoder_params() \
        == 2 * (4 * 384 * 384 + 3 * 384) + (2 * 384 * 1536 + 1536 + 384) + 3 * 2 * 384


def test_large_v3_and_turbo_differ_from_the_others_where_the_configs_do():
    v3, turbo, medium = CARDS["whisper-large-v3"], CARDS["whisper-large-v3-turbo"], CARDS["whisper-medium"]
    assert (v3.num_mel_bins, v3.vocab_size, medium.num_mel_bins, medium.vocab_size) == (128, 51866, 80, 51865)
    assert turbo.decoder_layers == 4 and turbo.encoder_params() == v3.encoder_params()
    assert all(c.max_source_positions == 1500 and c.max_target_positions == 448 for c in CARDS.values())
    assert all(c.encoder_ffn_dim == c.decoder_ffn_dim == 4 * c.d_model for c in CARDS.values())


def test_cards_say_what_random_weights_mean_and_where_the_numbers_came_from():
    for card in CARDS.values():
        assert "fixed by the scenario" in card.notes
        assert card.config_source == f"https://huggingface.co/{card.hf_repo}/blob/main/config.json"
        assert card.params_published_source


def test_unknown_speech_id_suggests_close_matches():
    with pytest.raises(UnknownNameError, match="did you mean") as info:
        get_speech_card("whisper-tiny.en")
    assert "whisper-tiny" in info.value.context["close"]


def test_card_files_are_plain_toml_named_by_id_and_round_trip():
    for path in REPO_SPEECH.glob("*.toml"):
        data = tomllib.loads(path.read_text())
        assert data["id"] == path.stem
        assert SpeechCard.from_dict(data) == CARDS[path.stem]
        assert SpeechCard.from_dict(CARDS[path.stem].to_dict()) == CARDS[path.stem]


def test_an_unknown_field_is_refused(tmp_path):
    (tmp_path / "whisper-tiny.toml").write_text((REPO_SPEECH / "whisper-tiny.toml").read_text() + "mystery = 1\n")
    with pytest.raises(ValueError, match="mystery"):
        load_speech_cards(tmp_path)


# --- the whisper.cpp (ggml) build -------------------------------------------------------------------
#: sha256 of whisper-tiny's builds, seed 0. The q8_0 and q5_0 files were checked byte for byte against
#: whisper.cpp's own whisper-quantize run on the f16 file (whisper.cpp as vendored in pywhispercpp 1.5.1),
#: and all three load and encode in its whisper-bench. A builder change that alters bytes bumps
#: whisper_ggml.BUILDER_VERSION and these.
TINY_SHA256 = {
    "f16": "ac9faded792fcb3e8c45eeca7319199851532a8a823a96ce83e882a947080223",
    "q8_0": "a678ddc14eeb9b9f2764567dde222b444deaccd56d9640a215d7cd1bb53a2b43",
    "q5_0": "08db18eb6314306acd9cf86fba17cc7d3067f268304960debb1c6c137b19cf7b",
}
GGML_TYPES = {0: "F32", 1: "F16", 6: "Q5_0", 8: "Q8_0"}
BLOCK_BYTES = {"F32": (1, 4), "F16": (1, 2), "Q5_0": (32, 22), "Q8_0": (32, 34)}


@pytest.fixture(scope="module")
def tiny_builds(tmp_path_factory):
    from suite.models import build_speech_model

    root = tmp_path_factory.mktemp("speech")
    return {q: build_speech_model("whisper-tiny", quant=q, out_root=root) for q in ("f16", "q8_0", "q5_0")}


def read_ggml(path: Path) -> dict:
    """A small reader of whisper.cpp's model file, following whisper_model_load (src/whisper.cpp)."""
    data = path.read_bytes()
    o = 0

    def ints(n: int) -> list[int]:
        nonlocal o
        out = list(struct.unpack_from(f"<{n}i", data, o))
        o += 4 * n
        return out

    magic = struct.unpack_from("<I", data, 0)[0]
    o = 4
    hparams = dict(zip(("n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer", "n_text_ctx",
                        "n_text_state", "n_text_head", "n_text_layer", "n_mels", "ftype"), ints(11), strict=True))
    n_mel, n_fft = ints(2)
    filters = np.frombuffer(data, "<f4", n_mel * n_fft, o).reshape(n_mel, n_fft)
    o += filters.nbytes
    (n_tokens,) = ints(1)
    tokens = []
    for _ in range(n_tokens):
        (length,) = ints(1)
        tokens.append(data[o:o + length])
        o += length
    tensors = {}
    while o < len(data):
        n_dims, name_len, ttype = ints(3)
        ne = tuple(ints(n_dims))
        name = data[o:o + name_len].decode()
        o += name_len
        t = GGML_TYPES[ttype]
        block, size = BLOCK_BYTES[t]
        nbytes = int(np.prod(ne)) // block * size
        tensors[name] = {"type": t, "ne": ne, "data": data[o:o + nbytes]}
        o += nbytes
    assert o == len(data), "the file ends inside a tensor"
    return {"magic": magic, "hparams": hparams, "filters": filters, "tokens": tokens, "tensors": tensors}


def expected_tensors(d: int, n_mels: int, n_vocab: int, n_enc: int, n_dec: int, wtype: str) -> dict:
    """name -> (ne, type): what whisper_model_load creates (src/whisper.cpp, ASR_TENSOR_NAMES), and the
    types convert-pt-to-ggml.py / whisper-quantize give them."""
    out = {"encoder.positional_embedding": ((d, 1500), "F32"), "encoder.conv1.weight": ((3, n_mels, d), "F16"),
           "encoder.conv1.bias": ((1, d), "F32"), "encoder.conv2.weight": ((3, d, d), "F16"),
           "encoder.conv2.bias": ((1, d), "F32"), "encoder.ln_post.weight": ((d,), "F32"),
           "encoder.ln_post.bias": ((d,), "F32"), "decoder.positional_embedding": ((d, 448), "F32"),
           "decoder.token_embedding.weight": ((d, n_vocab), wtype), "decoder.ln.weight": ((d,), "F32"),
           "decoder.ln.bias": ((d,), "F32")}

    def block(prefix: str, attns: tuple[str, ...]) -> None:
        for ln in ("mlp_ln", *(f"{a}_ln" for a in attns)):
            out[f"{prefix}.{ln}.weight"] = out[f"{prefix}.{ln}.bias"] = ((d,), "F32")
        out[f"{prefix}.mlp.0.weight"], out[f"{prefix}.mlp.0.bias"] = ((d, 4 * d), wtype), ((4 * d,), "F32")
        out[f"{prefix}.mlp.2.weight"], out[f"{prefix}.mlp.2.bias"] = ((4 * d, d), wtype), ((d,), "F32")
        for a in attns:
            for w in ("query", "key", "value", "out"):
                out[f"{prefix}.{a}.{w}.weight"] = ((d, d), wtype)
            for b in ("query", "value", "out"):  # the key projection has no bias
                out[f"{prefix}.{a}.{b}.bias"] = ((d,), "F32")

    for i in range(n_enc):
        block(f"encoder.blocks.{i}", ("attn",))
    for i in range(n_dec):
        block(f"decoder.blocks.{i}", ("attn", "cross_attn"))
    assert len(out) == 11 + 15 * n_enc + 24 * n_dec  # the loader wants every one of them (n_loaded == size)
    return out


@pytest.mark.parametrize("quant", ["f16", "q8_0", "q5_0"])
def test_the_file_is_what_whisper_cpp_loads(tiny_builds, quant):
    built = tiny_builds[quant]
    assert built.format == "ggml" and built.model_file == built.path / "ggml-model.bin"
    assert built.path.name == f"ggml-{quant}-s0"
    f = read_ggml(built.model_file)
    assert f["magic"] == 0x67676D6C
    ftype = {"f16": 1, "q8_0": 2000 + 7, "q5_0": 2000 + 8}[quant]  # + GGML_QNT_VERSION x 1000 when quantized
    assert f["hparams"] == {"n_vocab": 51865, "n_audio_ctx": 1500, "n_audio_state": 384, "n_audio_head": 6,
                            "n_audio_layer": 4, "n_text_ctx": 448, "n_text_state": 384, "n_text_head": 6,
                            "n_text_layer": 4, "n_mels": 80, "ftype": ftype}
    # the BPE tokens only (ids 0..50256); whisper.cpp names eot (50257) and the specials above them itself
    assert len(f["tokens"]) == 50257 and len(set(f["tokens"])) == 50257
    want = expected_tensors(384, 80, 51865, 4, 4, quant.upper() if quant != "f16" else "F16")
    assert {n: (t["ne"], t["type"]) for n, t in f["tensors"].items()} == want
    assert list(f["tensors"])[:3] == ["encoder.positional_embedding", "encoder.conv1.weight", "encoder.conv1.bias"]
    assert built.model_file.stat().st_size == built.manifest["files"]["ggml-model.bin"]["bytes"] == built.total_bytes
    m = built.manifest
    assert m["weight_bytes"] == sum(len(t["data"]) for t in f["tensors"].values())
    assert m["encoder_weight_bytes"] + m["decoder_weight_bytes"] == m["weight_bytes"]
    assert (m["n_mels"], m["n_vocab"], m["audio_ctx"], m["params"]) == (80, 51865, 1500, 37_760_640)
    if quant == "f16":  # per layer: self q/k/v/o, cross q/out and the MLP in f16; 16 d of f32 biases and norms;
        d = 384  # the whole token embedding (the output projection), one positional row, the final norm
        assert m["decoder_weight_bytes_read_per_token"] == 4 * (14 * d * d * 2 + 16 * d * 4) \
            + 51865 * d * 2 + d * 4 + 2 * d * 4
    assert m["synthetic_weights"] is True and m["options"] == {"format": "ggml", "quant": quant, "seed": 0}


def test_an_english_only_vocabulary_ends_one_token_earlier():
    from suite.models.whisper_ggml import WhisperPlan

    multi = WhisperPlan(CARDS["whisper-tiny"], "f16")
    english = WhisperPlan(dataclasses.replace(CARDS["whisper-tiny"], vocab_size=51864), "f16")
    assert (multi.n_text_tokens, english.n_text_tokens) == (50257, 50256)  # whisper.cpp's eot ids


def test_the_mel_filters_are_whispers():
    # Reference figures from the 80-bin bank inside whisper.cpp's own test model (for-tests-ggml-tiny.bin,
    # OpenAI's mel_filters.npz): librosa's slaney filters for 16 kHz and a 400-point FFT.
    from suite.models.whisper_ggml import mel_filters

    bank = mel_filters(80).astype(np.float64)
    assert bank.shape == (80, 201) and bank.min() == 0.0
    assert bank.sum() == pytest.approx(1.999024092387117, rel=1e-7)
    assert [bank[i].sum() for i in (0, 40, 79)] == pytest.approx(
        [0.02486259490251541, 0.026664861012250185, 0.024925339792389423], rel=1e-7)
    assert bank[79].max() == pytest.approx(0.0031647118739783764, rel=1e-7)
    assert list(np.argmax(bank, axis=1)) == sorted(np.argmax(bank, axis=1))  # centres rise with the index
    assert mel_filters(128).shape == (128, 201)


def test_builds_are_deterministic_and_pinned(tiny_builds, tmp_path):
    from suite.models import build_speech_model

    for quant, built in tiny_builds.items():
        assert built.manifest["files"]["ggml-model.bin"]["sha256"] == TINY_SHA256[quant], quant
    again = build_speech_model("whisper-tiny", out_root=tmp_path)
    assert again.manifest["files"] == tiny_builds["f16"].manifest["files"]
    other = build_speech_model("whisper-tiny", seed=1, out_root=tmp_path)
    assert other.path.name == "ggml-f16-s1"
    assert other.manifest["files"]["ggml-model.bin"]["sha256"] != TINY_SHA256["f16"]
    assert other.total_bytes == again.total_bytes


def _dequantize(block_bytes: bytes, ttype: str) -> np.ndarray:
    """ggml's block formats, read independently of the builder: Q8_0 is an fp16 scale and 32 int8
    (x = d q); Q5_0 an fp16 scale, 32 high bits (uint32), 16 bytes of nibbles (element j in the low
    nibble of byte j, element j + 16 in its high nibble), x = d (q - 16)."""
    if ttype == "Q8_0":
        blocks = np.frombuffer(block_bytes, dtype=[("d", "<f2"), ("qs", "i1", 32)])
        return (blocks["d"].astype(np.float32)[:, None] * blocks["qs"]).reshape(-1)
    blocks = np.frombuffer(block_bytes, dtype=[("d", "<f2"), ("qh", "<u4"), ("qs", "u1", 16)])
    low = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=1).astype(np.int32)
    high = (blocks["qh"][:, None] >> np.arange(32, dtype=np.uint32)) & 1
    return (blocks["d"].astype(np.float32)[:, None] * (low + 16 * high.astype(np.int32) - 16)).reshape(-1)


@pytest.mark.parametrize("quant", ["q8_0", "q5_0"])
def test_quantized_blocks_decode_to_the_source_weights_within_the_quant_step(tiny_builds, quant):
    from suite.models.whisper_ggml import WhisperPlan, tensor_values

    f = read_ggml(tiny_builds[quant].model_file)
    plan = WhisperPlan(CARDS["whisper-tiny"], quant)
    specs = {s.name: s for s in plan.specs}
    for name in ("encoder.blocks.0.attn.query.weight", "decoder.blocks.3.mlp.2.weight",
                 "decoder.token_embedding.weight"):
        source = np.concatenate(list(tensor_values(specs[name], "whisper-tiny", 0)))
        got = _dequantize(f["tensors"][name]["data"], quant.upper())
        assert got.shape == source.shape
        step = np.repeat(np.abs(source.reshape(-1, 32)).max(axis=1) / (127 if quant == "q8_0" else 16), 32)
        # half a step of rounding (q5_0: a whole step for the one value clipped at +16), plus the f16
        # rounding the source goes through first (whisper-quantize quantizes the f16 file)
        bound = step * (0.5 if quant == "q8_0" else 1.0) + np.abs(source) * 2.0**-10 + 1e-9
        assert np.all(np.abs(got - source) <= bound), name
        assert abs(float(source.std()) - 0.02) < 0.002  # Whisper's init_std, so activations stay finite
    norm = f["tensors"]["decoder.blocks.0.mlp_ln.weight"]["data"]
    assert np.all(np.frombuffer(norm, "<f4") == 1.0)
    assert not np.any(np.frombuffer(f["tensors"]["encoder.conv1.bias"]["data"], "<f4"))


def test_the_size_is_known_exactly_before_building(tiny_builds):
    from suite.models import estimate_build
    from suite.models.whisper_ggml import WhisperPlan

    for quant, built in tiny_builds.items():
        assert WhisperPlan(CARDS["whisper-tiny"], quant).file_bytes() == built.total_bytes
        est = estimate_build(CARDS["whisper-tiny"], fmt="ggml", quant=quant, out_root=built.path.parents[1])
        assert est.exact and est.artifact_bytes == built.total_bytes and est.cached
    # large-v3: 1.55 B parameters, f16 matrices and conv kernels, f32 positional tables, biases and norms
    plan = WhisperPlan(CARDS["whisper-large-v3"], "f16")
    f32 = sum(s.n_elements for s in plan.specs if s.ttype == "F32")
    assert plan.weight_bytes() == 2 * (CARDS["whisper-large-v3"].params() - f32) + 4 * f32
    assert 3.0e9 < plan.file_bytes() < 3.2e9


def test_a_second_build_is_a_cache_hit_and_a_truncated_file_is_rebuilt(tmp_path, caplog):
    from suite.models import build_speech_model

    first = build_speech_model("whisper-tiny", out_root=tmp_path)
    mtime = first.model_file.stat().st_mtime_ns
    assert build_speech_model("whisper-tiny", out_root=tmp_path).manifest == first.manifest
    assert first.model_file.stat().st_mtime_ns == mtime
    with open(first.model_file, "r+b") as f:
        f.truncate(1000)
    again = build_speech_model("whisper-tiny", out_root=tmp_path)
    assert "corrupt" in caplog.text
    assert again.manifest["files"] == first.manifest["files"]


def test_insufficient_disk_is_refused_before_writing(tmp_path, monkeypatch):
    from suite.models import artifact as artifact_mod
    from suite.models import build_speech_model

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(artifact_mod.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(InsufficientDiskError) as info:
        build_speech_model("whisper-large-v3", out_root=tmp_path)
    assert info.value.context["needed_bytes"] > 3e9
    assert list(tmp_path.rglob("*")) == []


def test_interrupted_build_leaves_nothing(tmp_path):
    from suite.models import build_speech_model

    def interrupt(done, total):
        if done > total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_speech_model("whisper-tiny", out_root=tmp_path, progress=interrupt)
    assert [p.name for p in tmp_path.rglob("*")] == ["whisper-tiny"]


def test_formats_and_cards_do_not_mix(tmp_path):
    from suite.models import build_model, build_speech_model, find_built

    with pytest.raises(ModelBuildError, match="unknown whisper.cpp quant"):
        build_speech_model("whisper-tiny", quant="q4_0", out_root=tmp_path)
    with pytest.raises(ModelBuildError, match="speech model") as info:
        build_model(CARDS["whisper-tiny"], fmt="gguf", out_root=tmp_path)
    assert "ggml" in info.value.hint
    with pytest.raises(ModelBuildError, match="language model"):
        build_model("tiny", fmt="ggml", out_root=tmp_path)
    with pytest.raises(UnknownNameError):
        build_speech_model("llama-68m", out_root=tmp_path)
    built = build_model("whisper-tiny", fmt="ggml", quant="q8_0", out_root=tmp_path)  # the same builder
    assert built.manifest["files"]["ggml-model.bin"]["sha256"] == TINY_SHA256["q8_0"]
    assert [b.path for b in find_built("whisper-tiny", tmp_path, fmt="ggml")] == [built.path]


# --- the utterance ------------------------------------------------------------------------------------
#: sha256 of the 5 s utterance, seed 0: integer arithmetic only, so a host- or numpy-dependent change fails here
UTTERANCE_5S_SHA256 = "56b312ef37a6c81ed89c9d58bfc7ea4aad1420fdf7f52cfb83a4d2cea9811c2f"


def test_the_utterance_is_a_pinned_16khz_mono_16bit_wav(tmp_path):
    from suite.models.audio import utterance

    u = utterance(5, seed=0, root=tmp_path)
    assert u.path == tmp_path / "utterance-5s-seed0.wav"
    assert u.sha256 == UTTERANCE_5S_SHA256 == hashlib.sha256(u.path.read_bytes()).hexdigest()
    with wave.open(str(u.path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 16000, 80000)
        samples = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64)
    assert (u.seconds, u.sample_rate, u.samples) == (5, 16000, 80000)
    assert u.to_dict() == {"path": str(u.path), "sha256": u.sha256, "seconds": 5, "sample_rate": 16000,
                           "samples": 80000, "seed": 0,
                           "source": "synthetic: seeded waveform, deterministic on any host"}
    # speech-like: peak at -6 dBFS, pauses, most energy under 3 kHz
    assert np.abs(samples).max() == 16384
    assert np.mean(np.abs(samples) < 100) > 0.05
    power = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / 16000)
    assert power[freqs < 3000].sum() > 0.95 * power.sum()


def test_the_utterance_is_cached_rewritten_when_damaged_and_seeded(tmp_path):
    from suite.models.audio import utterance

    first = utterance(5, root=tmp_path)
    mtime = first.path.stat().st_mtime_ns
    assert utterance(5, root=tmp_path) == first and first.path.stat().st_mtime_ns == mtime
    first.path.write_bytes(b"RIFF")
    assert utterance(5, root=tmp_path).sha256 == hashlib.sha256(first.path.read_bytes()).hexdigest() == first.sha256
    other = utterance(5, seed=1, root=tmp_path)
    assert other.sha256 != first.sha256 and other.path.name == "utterance-5s-seed1.wav"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["utterance-5s-seed0.wav", "utterance-5s-seed1.wav"]


def test_the_utterance_defaults_beside_the_models(tmp_path, monkeypatch):
    from suite.models.audio import utterance

    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path))
    assert utterance(1).path == tmp_path / "audio" / "utterance-1s-seed0.wav"


@pytest.mark.parametrize("seconds", [0, 31, 2.5, True])
def test_other_lengths_are_refused(tmp_path, seconds):
    from suite.models.audio import utterance

    with pytest.raises(EdgebenchError, match="utterance length") as info:
        utterance(seconds, root=tmp_path)
    assert "5 or 30" in info.value.hint
    assert list(tmp_path.iterdir()) == []


def test_one_estimate_list_holds_language_and_speech_models(tmp_path):
    from suite.models import estimate_builds

    llm, speech = estimate_builds(["tiny", "whisper-large-v3"], fmt=None, out_root=tmp_path)
    assert (llm.format, llm.quant, speech.format, speech.quant) == ("onnx", "int4", "ggml", "f16")
    assert speech.reserved_bytes == llm.needed_bytes and speech.exact
    assert "whisper-large-v3 (ggml f16): 3.10 GB" in speech.text()
    with pytest.raises(ModelBuildError) as info:
        estimate_builds(["whisper-tiny"], fmt="onnx", out_root=tmp_path)
    assert info.value.exit_code == 2
