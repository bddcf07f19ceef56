"""Where the local stack keeps things: state in a git-ignored folder, downloads in the user cache."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The source checkout (libs/accord/devstack/ is three levels below it)."""
    return Path(__file__).resolve().parents[3]


def default_home() -> Path:
    """State of the running stack: $ACCORD_HOME, else .accord/ in the checkout (git-ignored)."""
    env = os.environ.get("ACCORD_HOME")
    return Path(env).resolve() if env else repo_root() / ".accord"


def cache_dir() -> Path:
    """Downloads kept across stacks and checkouts (the Kafka jars): $ACCORD_CACHE_DIR or ~/.cache/accord."""
    env = os.environ.get("ACCORD_CACHE_DIR")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "accord"
    base.mkdir(parents=True, exist_ok=True)
    return base
