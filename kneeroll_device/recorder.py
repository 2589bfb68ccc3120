"""The raw samples just before a session, and their hand-over to the session's spool.

Between sessions only the last ``lead_s`` seconds stay in memory: a session's
recording starts a little before it, so that a replay starts from the same
state. When a session starts, that lead goes to its RecordingSpool (spool.py),
and so does every block after it until the session ends; the spool writes them
to disk as the session runs, so memory never holds more than the lead and a few
seconds.
"""

from __future__ import annotations

import numpy as np

from .pipeline.framing import forward_mask
from .samples import ForceBlock, ImuBlock


class Recorder:
    def __init__(self, lead_s: float = 30.0):
        self.lead_s = lead_s
        self.imu: list[ImuBlock] = []
        self.force: list[ForceBlock] = []
        self.controls: list[tuple[float, str]] = []
        self.spool = None  # the session's RecordingSpool while a session runs
        self._last = {"imu": -np.inf, "force": -np.inf}

    @property
    def in_session(self) -> bool:
        return self.spool is not None

    def _forward(self, source: str, t: np.ndarray) -> np.ndarray:
        # keep exactly the samples the pipeline uses, so a replay is the live run
        keep = forward_mask(t, self._last[source])
        if keep.any():
            self._last[source] = float(t[keep][-1])
        return keep

    def add_imu(self, block: ImuBlock) -> None:
        if len(block):
            keep = self._forward("imu", block.t)
            gyro = None if block.gyro is None else block.gyro[keep]
            kept = ImuBlock(block.t[keep], block.accel[keep], gyro)
            self.imu.append(kept)
            if self.spool is not None:
                self.spool.add_imu(kept)
            self.trim(block.t[-1] - self.lead_s)

    def add_force(self, block: ForceBlock) -> None:
        if len(block):
            keep = self._forward("force", block.t)
            kept = ForceBlock(block.t[keep], block.force[keep])
            self.force.append(kept)
            if self.spool is not None:
                self.spool.add_force(kept)
            self.trim(block.t[-1] - self.lead_s)

    def add_control(self, t: float, kind: str) -> None:
        self.controls.append((t, kind))
        if self.spool is not None:
            self.spool.add_control(t, kind)

    def start(self) -> float:
        """Where a session's recording begins: the lead's first whole second."""
        firsts = [blocks[0].t[0] for blocks in (self.imu, self.force) if blocks and len(blocks[0])]
        # whole seconds: a replay then cuts the same 0.1 s frames as the live run did
        return float(np.floor(min(firsts))) if firsts else 0.0

    def attach(self, spool) -> None:
        """The session's spool takes the lead now and every block from here on."""
        for block in self.imu:
            spool.add_imu(block)
        for block in self.force:
            spool.add_force(block)
        for t, kind in self.controls:
            spool.add_control(t, kind)
        self.spool = spool

    def detach(self):
        """The session ended: its spool, which takes no more blocks."""
        spool, self.spool = self.spool, None
        return spool

    def trim(self, keep_from: float) -> None:
        self.imu = [b for b in self.imu if len(b) and b.t[-1] >= keep_from]
        self.force = [b for b in self.force if len(b) and b.t[-1] >= keep_from]
        self.controls = [c for c in self.controls if c[0] >= keep_from]
