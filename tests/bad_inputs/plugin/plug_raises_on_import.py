"""Fails while it is imported."""

from __future__ import annotations

raise RuntimeError("plugin needs a GPU at import time")
