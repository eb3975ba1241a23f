#!/usr/bin/python3
"""Validate a JSON document (stdin, or FILE) against a JSON Schema.

usage: /usr/bin/python3 validate_json.py SCHEMA [FILE]

Exit 0 valid, 1 invalid (every error printed with its path), 77 when the
jsonschema module is missing (Debian: python3-jsonschema).
"""
import json
import sys


def main(argv):
    try:
        import jsonschema
    except ImportError:
        print("jsonschema is not installed for %s (apt-get install python3-jsonschema)" % sys.executable)
        return 77
    with open(argv[1]) as f:
        schema = json.load(f)
    doc = json.load(open(argv[2]) if len(argv) > 2 else sys.stdin)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    errors = sorted(cls(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
    for e in errors[:20]:
        print("invalid at /%s: %s" % ("/".join(str(p) for p in e.absolute_path), e.message[:300]))
    if len(errors) > 20:
        print("... %d more errors" % (len(errors) - 20))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
