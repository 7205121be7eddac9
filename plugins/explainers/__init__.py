"""Built-in explainers plugins."""
