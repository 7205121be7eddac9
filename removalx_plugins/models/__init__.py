"""Model adapters: plugins of the ``model`` stage (``torchvision``, ``python``)."""
