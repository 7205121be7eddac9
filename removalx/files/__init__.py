"""Files, the lowest wing above :mod:`removalx.errors`: writing and reading without surprises.

Atomic writes (:mod:`~removalx.files.atomic`), weights-only tensor files
(:mod:`~removalx.files.torchfile`), the attribution file format
(:mod:`~removalx.files.attribution_file`) and checked output folders
(:mod:`~removalx.files.outputs`). Nothing here imports the engine.
"""
