"""Progress of a bulk run: a bar redrawn in place on a terminal, one line per change otherwise (the
Ray job's logs)."""

from __future__ import annotations

from typing import TextIO

from callcov.models import RescoreRun

WIDTH = 30


class Progress:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()

    def line(self, text: str) -> None:
        self.stream.write(("\n" if self.tty else "") + text + "\n")
        self.stream.flush()

    def update(self, run: RescoreRun, done: int, failed: int, in_flight: int) -> None:
        finished = done + failed
        total = max(run.selected, finished, 1)
        text = f"{finished}/{run.selected} re-scored ({done} done, {failed} failed, {in_flight} in flight)"
        if self.tty:
            filled = round(WIDTH * finished / total)
            self.stream.write(f"\r[{'#' * filled}{'.' * (WIDTH - filled)}] {text}")
        else:
            self.stream.write(f"rescore run {run.id}: {text}\n")
        self.stream.flush()

    def done(self, run: RescoreRun, done: int, failed: int, in_flight: int) -> None:
        del in_flight
        self.line(
            f"rescore run {run.id} completed: {done} re-scored, {failed} failed (GET /api/v1/rescore-runs/{run.id})"
        )
