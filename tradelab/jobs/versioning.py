"""What exactly ran: code version (git commit or content hashes) and data fingerprint.

A run is reproducible when the same notebook, strategy source and bars are
used again. Content hashes identify the first two even outside git (or with
uncommitted edits, where a commit id alone would lie); the git commit is
recorded as well when the files are clean in a repository.
"""

from __future__ import annotations

import hashlib
import inspect
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class CodeVersion:
    """Identity of the code a run executed."""

    code_version: str              # "git:<sha>" when clean in git, else "sha256:<combined>"
    notebook_sha256: str
    strategy_sha256: str | None
    git_commit: str | None


def sha256_file(path: Path | str) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10,
                             check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state(files: list[Path]) -> tuple[str | None, bool]:
    """``(HEAD commit, all files clean and tracked)``; ``(None, False)`` outside git."""
    if not files:
        return None, False
    cwd = files[0].resolve().parent
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return None, False
    paths = [str(f.resolve()) for f in files]
    dirty = _git(["status", "--porcelain", "--", *paths], cwd)
    tracked = _git(["ls-files", "--error-unmatch", "--", *paths], cwd)
    return commit, dirty == "" and tracked is not None


def strategy_file(name: str | None, settings: Any) -> Path | None:
    """The source file of strategy ``name`` as the registry resolves it (``None`` if unknown)."""
    if not name:
        return None
    try:
        from tradelab.strategy.registry import StrategyRegistry

        registry = StrategyRegistry.from_settings(settings)
        origin = registry.origin(name)
        if Path(origin).is_file():
            return Path(origin)
        source = inspect.getsourcefile(registry.get(name))
        return Path(source) if source else None
    except Exception:  # an unknown strategy fails inside the notebook, with its own message
        return None


def code_version(notebook: Path, strategy: Path | None = None) -> CodeVersion:
    """Hash the notebook (and strategy source) and look up the git commit."""
    nb_hash = sha256_file(notebook)
    st_hash = sha256_file(strategy) if strategy is not None else None
    files = [notebook] + ([strategy] if strategy is not None else [])
    commit, clean = git_state(files)
    if commit and clean:
        version = f"git:{commit}"
    else:
        combined = hashlib.sha256(f"{nb_hash}:{st_hash or ''}".encode()).hexdigest()
        version = f"sha256:{combined}"
    return CodeVersion(version, nb_hash, st_hash, commit)


def bars_fingerprint(bars: Any) -> str:
    """A content fingerprint of a bars DataFrame (index, columns and values)."""
    import pandas as pd

    h = hashlib.sha256()
    h.update(",".join(map(str, bars.columns)).encode())
    h.update(pd.util.hash_pandas_object(bars, index=True).to_numpy().tobytes())
    return f"sha256:{h.hexdigest()}"
