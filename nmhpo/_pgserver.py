"""A throwaway PostgreSQL server on 127.0.0.1, for nmhpo's tests and benchmarks.

Nothing in nmhpo's runtime needs it: users point [study].storage at their own server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    # Debian/Ubuntu machine without PostgreSQL (CI as root): install the server.
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "postgresql"], check=True, capture_output=True
    )
    found = shutil.which(name) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None
    )
    if found is None:
        raise FileNotFoundError(f"PostgreSQL's {name} is not installed")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres_server(password: str = "secret") -> Iterator[str]:
    """Start a server in a temporary directory; yield its SQLAlchemy URL; stop and delete it.

    As root the server runs as the ``postgres`` user (PostgreSQL refuses root), so the folder
    is made outside root-private temporary directories.
    """
    root = Path(tempfile.mkdtemp(prefix="nmhpo-pg-"))
    data = root / "data"
    port = _free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    try:
        subprocess.run(
            [
                *as_user,
                _binary("initdb"),
                "-D",
                str(data),
                "-U",
                "nmhpo",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *as_user,
                _binary("pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(root / "log"),
                "-w",
                "-o",
                f"-h 127.0.0.1 -p {port} -k {root}",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://nmhpo:{password}@127.0.0.1:{port}/postgres"
    finally:
        if data.exists():
            subprocess.run(
                [*as_user, _binary("pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                capture_output=True,
            )
        shutil.rmtree(root, ignore_errors=True)
