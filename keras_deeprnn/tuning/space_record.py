"""What a search records of its space, so a resumed one keeps it."""

import json

# What a search records of itself, so a resumed one keeps its space.
SPACE_FILE = "search_space.json"


def describe_setting(value):
    """A setting JSON cannot hold (an initializer) as its class and config."""
    if hasattr(value, "get_config"):
        return {"class": type(value).__name__, "config": value.get_config()}
    return repr(value)


def check_same_space(path, space):
    """Refuse to resume the search recorded at `path` with another `space`."""
    if not path.exists():
        return
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"The search's record '{path}' cannot be read ({err}); resume it "
                         "with overwrite=True (--overwrite) to start again.") from None
    # A record written before searches named their task was a music search's.
    saved = {"task": "music", "task_settings": {}, **saved}
    changed = [f"{key}: saved {saved.get(key)!r}, now {space[key]!r}" for key in space
               if saved.get(key) != space[key]]
    if changed:
        raise ValueError(
            f"The search in '{path.parent}' was run with another search space, so resuming it "
            "with this one would mix the two in one report. Changed: " + "; ".join(changed)
            + ". Use another --project-name (project_name), the saved settings, or "
            "--overwrite (overwrite=True) to start this search again.")
