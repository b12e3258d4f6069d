"""The built-in metrics, one module each (imported by the registry on first use)."""
