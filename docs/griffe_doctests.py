"""A griffe extension for the reference: doctest examples become code blocks.

The docstrings follow Keras's style, where an `Example:` is a doctest written
flush with the prose. Markdown would read `>>>` as a quote and `[0, 10]` in
an expected output as a link; fenced as `pycon` they read as a console session.
"""

import griffe


class DoctestBlocks(griffe.Extension):
    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)


def fence_doctests(text):
    """Wrap each run of doctest lines (a `>>>` line up to a blank line) in a fence."""
    lines, out, fenced, i = text.split("\n"), [], False, 0
    while i < len(lines):
        stripped = lines[i].lstrip()
        if stripped.startswith("```"):
            fenced = not fenced
        if not fenced and stripped.startswith(">>>"):
            indent = lines[i][: len(lines[i]) - len(stripped)]
            out.append(f"{indent}```pycon")
            while i < len(lines) and lines[i].strip():
                out.append(lines[i])
                i += 1
            out.append(f"{indent}```")
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)
