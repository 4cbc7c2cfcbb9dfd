"""Reference model artefacts: ONNX (int4/int8 MatMulNBits) graphs with seeded random weights."""

from suite.models.artifact import (
    BUILDER_VERSION,
    BuiltModel,
    artifact_dir,
    build_model,
    default_models_dir,
    estimate_bytes,
    find_built,
    list_built,
    read_manifest,
    verify_artifact,
)

__all__ = [
    "BUILDER_VERSION",
    "BuiltModel",
    "artifact_dir",
    "build_model",
    "default_models_dir",
    "estimate_bytes",
    "find_built",
    "list_built",
    "read_manifest",
    "verify_artifact",
]
