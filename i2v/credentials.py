"""Where the login comes from, without a password on any command line.

`--auth USER:PASSWORD` is readable by every local user through `ps`; `--auth-file PATH` (env I2V_AUTH_FILE) names
a file holding one `user:password` line, refused when group or others may read it (as ssh does with its keys);
`I2V_AUTH` in the environment is private to the process too. start_app.sh and restart.sh pass auth only through
the file or the environment (i2v.control).
"""
from __future__ import annotations

import stat
from pathlib import Path

from i2v.serving import ServingError


def read_auth_file(path: str | Path) -> str:
    """The `user:password` line of an auth file; ServingError when it is missing, shared or not one line."""
    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ServingError("auth_file_unreadable", path=str(path), reason=exc.__class__.__name__) from None
    if not stat.S_ISREG(mode):
        raise ServingError("auth_file_not_regular", path=str(path))
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ServingError("auth_file_shared", path=str(path), mode=f"{stat.S_IMODE(mode):03o}")
    lines = [line.strip() for line in content.splitlines() if line.strip()]
    if len(lines) != 1:
        raise ServingError("auth_file_not_one_line", path=str(path))
    return lines[0]


def auth_text(auth: str | None, auth_file: str | None) -> str | None:
    """The login as `user:password` text from --auth/I2V_AUTH or --auth-file/I2V_AUTH_FILE (one of them)."""
    if auth and auth_file:
        raise ServingError("auth_both_given")
    return read_auth_file(auth_file) if auth_file else auth
