"""schema.graphql at the repository root is the code's schema, printed: a change to the API shows in review."""

from __future__ import annotations

import difflib

from app.graphql.sdl import REGENERATE, SDL_FILE, sdl


def test_committed_schema_graphql_is_the_schema_the_code_serves() -> None:
    committed = SDL_FILE.read_text(encoding="utf-8") if SDL_FILE.exists() else ""
    current = sdl()

    diff = "".join(
        difflib.unified_diff(
            committed.splitlines(keepends=True),
            current.splitlines(keepends=True),
            fromfile="schema.graphql (committed)",
            tofile="schema from the code",
            n=1,
        )
    )
    assert committed == current, (
        f"{SDL_FILE.name} is out of date with app/graphql. Regenerate it with `{REGENERATE}` and commit it "
        f"(and check the change keeps shared/API.md):\n{diff[:4000]}"
    )
