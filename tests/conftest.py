"""Shared fixtures: the loopback phone (a real ADB device on 127.0.0.1) for Android tests."""

pytest_plugins = ["suite.testing.loopback.pytest_plugin"]
