"""Built-in removal plugins."""
