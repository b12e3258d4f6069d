"""The built-in degradations, one module each (imported by the registry on first use)."""
