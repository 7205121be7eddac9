"""An example third-party removalx plugin package."""
