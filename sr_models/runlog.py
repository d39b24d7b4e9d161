"""Training logs of a run: `log.csv` (one row per logged step and split) and TensorBoard events in `tb/`.

`log.csv` columns: `step` (completed iterations), `split` (train | valid), `wall_time` (seconds of
training since the run started, summed over resumed sessions), then the scalars in the order they
first appeared (train rows: the method's scalars averaged over the steps since the previous row, plus
`data_time` and `step_time` in seconds per step and `images_per_s`; valid rows: the method's
validation scalars). A row that lacks a column leaves it empty.

On resume from step S, rows and TensorBoard events after S (written by the killed session after its
last checkpoint) are dropped, so the log reads as one uninterrupted run.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from typing import Dict, List, Optional

from sr_data.files import atomic_write

LOG = "log.csv"
TB = "tb"
FIXED = ["step", "split", "wall_time"]


class RunLog:
    """Appends rows to `run_dir/log.csv` and scalars to TensorBoard (`run_dir/tb`, tag `<split>/<name>`).

    `start_step`: 0 for a new run (an old log.csv / tb folder of a run that never checkpointed is
    replaced), else the resumed step. `tensorboard=False` skips the event files.
    """

    def __init__(self, run_dir: str | os.PathLike, start_step: int = 0, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / LOG
        self.columns: List[str] = list(FIXED)
        rows: List[Dict[str, str]] = []
        if start_step > 0 and self.path.exists():
            rows = self._read_rows(start_step)
        elif start_step == 0 and (self.run_dir / TB).exists():
            shutil.rmtree(self.run_dir / TB)
        self._rewrite(rows)
        self.writer = None
        if tensorboard:
            # tensorboard is optional at run time and slow to import: loaded only when a run asks for it
            from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415

            # purge_step drops the killed session's events from `start_step + 1` on.
            self.writer = SummaryWriter(str(self.run_dir / TB), purge_step=start_step + 1 if start_step > 0 else None)

    def _read_rows(self, upto: int) -> List[Dict[str, str]]:
        kept = []
        with open(self.path, newline="") as f:
            reader = csv.DictReader(f)
            for name in reader.fieldnames or []:
                if name not in self.columns:
                    self.columns.append(name)
            for row in reader:
                try:
                    step = int(row.get("step") or "")
                except ValueError:
                    continue  # a line cut short by a kill
                if step <= upto and None not in row:
                    kept.append(row)
        return kept

    def _rewrite(self, rows: List[Dict[str, str]]) -> None:
        def write(tmp: str) -> None:
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=self.columns, restval="")
                w.writeheader()
                w.writerows(rows)

        atomic_write(self.path, write)

    def log(self, step: int, split: str, wall_time: float, scalars: Dict[str, float]) -> None:
        """Append one row (and the TensorBoard scalars) for `split` at `step`."""
        row = {"step": str(step), "split": split, "wall_time": f"{wall_time:.3f}"}
        row.update({k: repr(float(v)) for k, v in scalars.items()})
        new = [k for k in row if k not in self.columns]
        if new:
            # A new column (e.g. the first validation row): rewrite the file with the wider header.
            with open(self.path, newline="") as f:
                old_rows = list(csv.DictReader(f))
            self.columns.extend(new)
            self._rewrite(old_rows + [row])
        else:
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.columns, restval="").writerow(row)
        if self.writer is not None:
            for k, v in scalars.items():
                self.writer.add_scalar(f"{split}/{k}", float(v), step)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def read_log(run_dir: str | os.PathLike, split: Optional[str] = None) -> List[Dict[str, str]]:
    """Rows of `run_dir/log.csv` (all, or those of one split) as dicts of strings."""
    with open(Path(run_dir) / LOG, newline="") as f:
        rows = list(csv.DictReader(f))
    return [r for r in rows if split is None or r["split"] == split]
