"""Built-in behavior plugins."""
