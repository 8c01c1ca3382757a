"""The committed SDL: `python -m app.graphql.sdl` writes the code's schema to schema.graphql at the repository root.

tests/unit/test_schema_snapshot.py fails when the two differ, so a change to the API shows up in review as a
change to that file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from app.config import REPO_ROOT
from app.graphql.schema import build_schema

SDL_FILE = REPO_ROOT / "schema.graphql"
REGENERATE = ".venv/bin/python -m app.graphql.sdl"


def sdl() -> str:
    """The schema as SDL, as strawberry prints it, with a final newline."""
    return str(build_schema()) + "\n"


def write(path: Path = SDL_FILE) -> bool:
    """Write the SDL to `path`; True when the file changed."""
    text = sdl()
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def main() -> int:
    changed = write()
    print(f"{SDL_FILE.name}: {'updated' if changed else 'already current'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
