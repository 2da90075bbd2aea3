"""The dataset as LLaMA-Factory gets it: the normalised rows as one JSON array, and the
``dataset_info.json`` entry that tells LLaMA-Factory which format and columns they have: nothing else.
"""

from __future__ import annotations

import json
from typing import Any


def dataset_info_entry(name: str, fmt: str, rows: list[dict]) -> dict:
    """The ``dataset_info.json`` entry LLaMA-Factory needs for ``<name>.json`` in its dataset dir."""
    entry: dict[str, Any] = {"file_name": f"{name}.json", "formatting": fmt}
    if fmt == "alpaca":
        cols = {"prompt": "instruction", "query": "input", "response": "output"}
        if rows and "system" in rows[0]:
            cols["system"] = "system"
        if rows and "history" in rows[0]:
            cols["history"] = "history"
        entry["columns"] = cols
    else:
        entry["columns"] = {"messages": "conversations"}
        entry["tags"] = {
            "role_tag": "from",
            "content_tag": "value",
            "user_tag": "human",
            "assistant_tag": "gpt",
            "system_tag": "system",
        }
    return entry


def dumps_rows(rows: list[dict]) -> str:
    """The normalised dataset as uploaded: a JSON array, UTF-8, one row per line."""
    if not rows:
        return "[]\n"
    return "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n]\n"
