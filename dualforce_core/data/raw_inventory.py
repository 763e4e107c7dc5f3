"""What sits in a raw dataset folder: the input of ingestion and of the new-dataset sensor."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RawInventory:
    root: Path
    videos: tuple[Path, ...]
    other_files: tuple[Path, ...]

    @property
    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.videos if p.exists())

    def fingerprint(self) -> str:
        """Changes whenever a video is added, removed, resized or touched: cheap change detection."""
        parts = []
        for path in self.videos:
            try:
                stat = path.stat()
            except OSError:
                continue
            parts.append(f"{path.relative_to(self.root)}:{stat.st_size}:{stat.st_mtime_ns}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16] if parts else "empty"


def scan_raw_folder(root: Path, extensions: Iterable[str]) -> RawInventory:
    """Every file below `root`, split into candidate videos (by extension) and the rest; sorted."""
    wanted = {e.lower() for e in extensions}
    files = sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()) if root.is_dir() else []
    videos = tuple(p for p in files if p.suffix.lower() in wanted)
    others = tuple(p for p in files if p.suffix.lower() not in wanted and p.suffix.lower() != ".json")
    return RawInventory(root, videos, others)
