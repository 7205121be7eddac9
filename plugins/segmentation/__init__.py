"""Built-in segmentation plugins."""
