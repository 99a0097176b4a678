"""Output paths checked before any work: a stage that cannot write its result must fail first, in one
line, not after hours of translation with a traceback. No heavy imports: the CLI calls this at start."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from schemas.errors import PolyinstructError


def ensure_writable(*outputs: Path | str | None, folders: Iterable[Path | str | None] = ()) -> None:
    """Fail before any work when an output cannot be written: its parent is a file, the folder is
    read-only, or it lies where nothing can be created (/proc). `outputs` are files, `folders` directories.
    Creates the missing parent folders, as the stage would anyway."""
    targets = [(Path(p), Path(p).parent) for p in outputs if p is not None]
    targets += [(Path(p), Path(p)) for p in folders if p is not None]
    for what, folder in targets:
        if what.is_dir() and what != folder:
            raise PolyinstructError(f"{what}: is a folder, but a file is written there; choose a file path")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".polyinstruct-probe-", dir=folder)
            os.close(fd)
            os.unlink(probe)
        except (FileExistsError, NotADirectoryError):
            blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), folder)
            raise PolyinstructError(f"{what}: cannot write there because {blocker} is a file, not a folder;"
                                    " choose another output path") from None
        except OSError as err:
            raise PolyinstructError(f"{what}: cannot write in {folder} ({err.strerror or err}); choose a writable"
                                    " output path") from None
