#!/bin/sh
# edgebench: zig as a C/C++ compiler or archiver for one target (written by suite/runtimes/build/toolchain.py)
exec "@ZIG@" @TOOL@ @TARGET_ARGS@ "$@"
