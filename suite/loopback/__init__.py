"""The loopback phone: an ADB device on 127.0.0.1 whose heat and memory limits act for real.

See docs/loopback.md. Entry points: `LoopbackPhone` (context manager),
`AdbServer` (a private adb server several phones can share),
`requirements_problems()` (why this host cannot run one).
"""

from .phone import AdbServer, LoopbackPhone, LoopbackUnavailable, adb_path, requirements_problems
from .profile import list_profiles, load_profile

__all__ = ["AdbServer", "LoopbackPhone", "LoopbackUnavailable", "adb_path",
           "requirements_problems", "list_profiles", "load_profile"]
