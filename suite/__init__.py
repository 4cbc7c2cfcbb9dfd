"""edgebench: device capability benchmarking for on-device AI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("edgebench")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+source"
