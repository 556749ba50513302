"""Documents: YAML loading, schema validation, path and reference checks -> ``models``.

    load_plan(path) -> Plan          everything loaded and cross-checked
    validate_file(path) -> str       one document by its kind; returns the kind
    parse_signature(text, pos)       a function case's C prototype -> Signature

Every problem is a DocumentError carrying the position of the node at fault.
"""

from engine.documents.errors import DocumentError
from engine.documents.load import load_cases_file, load_plan, load_project_file, validate_file
from engine.documents.signature import parse_signature

__all__ = ["DocumentError", "load_cases_file", "load_plan", "load_project_file",
           "parse_signature", "validate_file"]
