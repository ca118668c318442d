"""What the pool hands each render: its kill switch and its share of the memory budget.

The kill switch is how the event loop stops a libvips render running in a thread.

A libvips call cannot be cancelled from outside, but every image carries a kill flag
that libvips checks while it computes. The pipeline registers the images it creates;
on timeout the executor flips the flag on all of them, the render fails fast with a
libvips error, and its thread is free again.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

import pyvips

from ..errors import RenderTimeout

if TYPE_CHECKING:
    from .budget import MemoryBudget


class RenderGuard:
    def __init__(self, budget: MemoryBudget | None = None) -> None:
        self._lock = threading.Lock()
        self._images: list[pyvips.Image] = []
        self._budget = budget
        self.killed = False

    def reserve(self, cost: int) -> AbstractContextManager[None]:
        """Hold `cost` bytes of the pool's memory budget for the block (no budget: no wait)."""
        return self._budget.reserve(cost, self) if self._budget else nullcontext()

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
