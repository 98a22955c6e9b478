"""Helpers that test modules in different folders share.

``tests/`` is on ``sys.path`` (the folder of the top ``conftest.py``), so any test module or
conftest imports this module by name; the folders' own conftest modules cannot import each
other, being all named ``conftest``.
"""

from __future__ import annotations

import socket
import subprocess
import sys

# dbt reads its saved parse from this file instead of its target folder's: set by
# tests/conftest.py to the project's parse made once per test process. A test whose dbt
# renders another profile (a DuckLake) or builds a copy of the project unsets it, so that
# dbt keeps its own (each command would parse the whole project otherwise, or reuse the
# seeds' paths of the repository's project).
PARSE_SEED_VARIABLE = "DBT_PARTIAL_PARSE_FILE_PATH"


def free_port() -> int:
    """A loopback TCP port free right now (for servers that need one up front)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mailbox:
    """An aiosmtpd handler that keeps every message it receives (recipients, raw bytes)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


def run_slw(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """``slw <args>`` in a process of its own with ``env``, as a user runs it (this
    interpreter's ``python -m social_leadership``); its output captured, never raising."""
    return subprocess.run(
        [sys.executable, "-m", "social_leadership", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
