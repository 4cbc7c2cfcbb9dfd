"""Reference model artefacts with seeded random weights: ONNX (int4/int8 MatMulNBits graphs for
onnxruntime-genai), GGUF (Q4_0/Q8_0 for llama.cpp) and LiteRT-LM (.litertlm, int8/f32 TFLite graphs);
`build_model(card, fmt="onnx"|"gguf"|"litertlm", quant=...)`; `estimate_build(...)` says its bytes, the
room on the disk and the push time first. Speech cards (Whisper) build as whisper.cpp's ggml file:
`build_speech_model(card, quant="f16"|"q8_0"|"q5_0")`; `utterance(seconds)` is their input audio."""

from suite.models.artifact import (
    BUILDER_VERSION,
    DEFAULT_QUANT,
    FORMATS,
    BuiltModel,
    artifact_dir,
    build_model,
    build_speech_model,
    default_models_dir,
    estimate_bytes,
    find_built,
    list_built,
    read_manifest,
    verify_artifact,
)
from suite.models.audio import Utterance, utterance
from suite.models.estimate import BuildEstimate, artifact_bytes, estimate_build, estimate_builds, refuse_if_short

__all__ = [
    "BUILDER_VERSION",
    "DEFAULT_QUANT",
    "FORMATS",
    "BuildEstimate",
    "BuiltModel",
    "Utterance",
    "artifact_bytes",
    "artifact_dir",
    "build_model",
    "build_speech_model",
    "default_models_dir",
    "estimate_build",
    "estimate_builds",
    "estimate_bytes",
    "find_built",
    "list_built",
    "read_manifest",
    "refuse_if_short",
    "utterance",
    "verify_artifact",
]
