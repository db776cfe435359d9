"""Where the shipped hardware presets and study files live.

In a wheel they are force-included under ``nmhpo/_data/``; in a source checkout (or an editable
install, which does not copy them) they are the top-level ``hardware/`` and ``studies/`` folders.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(kind: str) -> Path:
    """Folder of shipped files of one kind (``"hardware"`` or ``"studies"``)."""
    packaged = _PACKAGE / "_data" / kind
    if packaged.is_dir():
        return packaged
    return _PACKAGE.parent / kind
