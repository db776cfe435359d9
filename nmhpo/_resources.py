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


def home_dir() -> Path:
    """Where a shipped study (``load_config("quickstart")``) keeps its database, trained
    networks and reports: ``$NMHPO_HOME``, else ``$XDG_DATA_HOME/nmhpo``, else
    ``~/.local/share/nmhpo``.

    One folder whatever the working directory: a notebook opened from another folder, the
    CLI and a script all find the same study. Never inside the package (site-packages may be
    read-only and is replaced on upgrade).
    """
    import os

    explicit = os.environ.get("NMHPO_HOME")
    if explicit:
        return Path(explicit).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data).expanduser() / "nmhpo"
