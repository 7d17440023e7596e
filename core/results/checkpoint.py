"""A resumable run's progress: the rows done so far, one JSON line each, kept beside the record being written."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from core.errors import BadInput


class Checkpoint:
    """Rows done so far, one JSON line each, so an interrupted run resumes where it stopped."""

    def __init__(self, path: Path, key: str):
        self.path = path
        self.done: dict[tuple, dict] = {}
        if path.is_file():
            lines = path.read_text().splitlines()
            if lines and json.loads(lines[0]).get("key") == key:
                for line in lines[1:]:
                    try:
                        item = json.loads(line)
                    except json.JSONDecodeError:
                        break  # a line cut by the interruption: that row is done again
                    self.done[(item["phase"], item["image_id"], item["label"])] = item
            else:
                path.unlink()
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"key": key}) + "\n")
        self._fh = path.open("a")

    def add(self, item: dict) -> None:
        self._fh.write(json.dumps(item) + "\n")
        self._fh.flush()

    @contextlib.contextmanager
    def running(self):
        """Work under it: an interruption or failure keeps the rows done so far for the next run."""
        try:
            yield self
        except KeyboardInterrupt:
            self.close(remove=False)
            raise BadInput(f"Interrupted; progress is kept in {self.path}. Run the same command again to resume.") \
                from None
        except BaseException:
            self.close(remove=False)
            raise

    def close(self, remove: bool) -> None:
        self._fh.close()
        if remove:
            self.path.unlink(missing_ok=True)
