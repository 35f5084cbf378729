"""Memoising a pure function of a frame of runs for as long as that frame lives.

The report asks several claims and the theory for the same per-run measurements of one frame
(thousands of rows read one by one); `per_frame` computes them once. The frame is recognised by
identity (held by a weak reference, so a frame that is gone is never matched by a new one at the same
address) and by its length; the other arguments must be hashable. Each caller gets its own copy of the
frames returned. Callers must not change the frame of runs in place and expect a new answer: the lab's
readers never do.
"""

from __future__ import annotations

import functools
import weakref


def per_frame(fn):
    """`fn(frame, *args)` computed once per live frame and arguments (the last frame only)."""
    last: dict = {}

    @functools.wraps(fn)
    def wrapper(frame, *args, **kwargs):
        key = (id(frame), len(frame), args, tuple(sorted(kwargs.items())))
        hit = last.get(key)
        if hit is not None and hit[0]() is frame:
            return _copy(hit[1])
        value = fn(frame, *args, **kwargs)
        if len(last) > 8:
            last.clear()
        last[key] = (weakref.ref(frame), value)
        return _copy(value)

    wrapper.cache_clear = last.clear
    return wrapper


def _copy(value):
    """A copy of every frame in `value` (a frame or a tuple of values): callers may change what they get."""
    if isinstance(value, tuple):
        return tuple(_copy(v) for v in value)
    return value.copy() if hasattr(value, "copy") and hasattr(value, "columns") else value
