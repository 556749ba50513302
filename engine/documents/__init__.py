"""Documents: YAML loading, schema validation, path and reference checks -> ``models``.

    load_plan(path) -> Plan          everything loaded and cross-checked
    validate_file(path) -> str       one document by its kind; returns the kind
    parse_signature(text, pos)       a function case's C prototype -> Signature
    cached.load_plan(path) -> Plan   the same as load_plan, kept against stat data

Every problem is a DocumentError carrying the position of the node at fault. The names are
imported on first use, so that ``engine.documents.cached`` can answer a no-op run without
importing ruamel.yaml and jsonschema.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "DocumentError": "engine.documents.errors",
    "load_cases_file": "engine.documents.load",
    "load_plan": "engine.documents.load",
    "load_project_file": "engine.documents.load",
    "validate_file": "engine.documents.load",
    "parse_signature": "engine.documents.signature",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'engine.documents' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
