"""Shared fixtures: the loopback phone (a real ADB device on 127.0.0.1) for Android tests."""

pytest_plugins = ["loopback_plugin"]
