"""Work around a crash between usearch and onnxruntime wheels on Linux.

usearch's compiled module links libstdc++ statically and exports its STB_GNU_UNIQUE symbols (the
`std::locale::id` of each facet, among others). Unique symbols bind process-wide to their first
definition, so a libstdc++.so.6 loaded *after* usearch (onnxruntime's pybind module pulls it in) adopts
usearch's copies and crashes in its locale set-up: `import usearch.index; import onnxruntime` is a
segfault (usearch 2.17-2.26 with onnxruntime 1.32). Loading the shared libstdc++ first, globally, makes
usearch bind to it instead, which is the order that works.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys


def preload_libstdcxx() -> None:
    if not sys.platform.startswith("linux"):
        return
    # Without a shared libstdc++ on the system, nothing can load one after usearch either.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libstdc++.so.6", mode=ctypes.RTLD_GLOBAL)
