"""A render's kill switch: how the event loop stops a libvips render running in a thread.

A libvips call cannot be cancelled from outside, but every image carries a kill flag
that libvips checks while it computes. The pipeline registers the images it creates;
on timeout the executor flips the flag on all of them, the render fails fast with a
libvips error, and its thread is free again.
"""

from __future__ import annotations

import threading

import pyvips

from ..errors import RenderTimeout


class RenderGuard:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._images: list[pyvips.Image] = []
        self.killed = False

    def track(self, image: pyvips.Image) -> pyvips.Image:
        """Register `image` so a later kill reaches it; returns it for chaining."""
        with self._lock:
            self._images.append(image)
            if self.killed:
                image.set_kill(True)
        return image

    def kill(self) -> None:
        with self._lock:
            self.killed = True
            for image in self._images:
                image.set_kill(True)

    def check(self) -> None:
        """Raise between pipeline steps once the deadline has passed."""
        if self.killed:
            raise RenderTimeout("the render took longer than its deadline")
