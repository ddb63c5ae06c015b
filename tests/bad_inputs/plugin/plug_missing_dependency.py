"""Imports a package that is not installed."""

from __future__ import annotations

import nowhere_to_be_found  # noqa: F401
