# edgebench's CMake toolchain file for zig cc (PyPI `ziglang`): a fully static, stripped binary
# for one target (aarch64-linux-musl for arm64 phones, x86_64-linux-musl for hosts and x86
# boards). suite/runtimes/build/toolchain.py copies the compiler wrappers beside this file and
# passes EDGEBENCH_TARGET_PROCESSOR (aarch64 | x86_64) and EDGEBENCH_WRAPPERS (their folder).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${EDGEBENCH_TARGET_PROCESSOR})
set(CMAKE_C_COMPILER   ${EDGEBENCH_WRAPPERS}/zig-cc)
set(CMAKE_CXX_COMPILER ${EDGEBENCH_WRAPPERS}/zig-c++)
set(CMAKE_AR     ${EDGEBENCH_WRAPPERS}/zig-ar CACHE FILEPATH "")
set(CMAKE_RANLIB ${EDGEBENCH_WRAPPERS}/zig-ranlib CACHE FILEPATH "")
# static (no bionic or glibc needed on the device), stripped at link time (zig objcopy cannot strip)
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static -s")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
