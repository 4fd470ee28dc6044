"""Meridian command line; filled in by the foundation work."""

def main() -> int:
    raise SystemExit("not yet")
