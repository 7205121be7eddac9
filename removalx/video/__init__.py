"""Video: reading, checking and writing clips (beside :mod:`removalx.models`, above the engine).

:mod:`~removalx.video.io` reads videos and GIFs and writes GIF, MP4 and PNG frames;
:mod:`~removalx.video.mp4` encodes H.264 with PyAV; :mod:`~removalx.video.layouts` splits
batches of clips; :mod:`~removalx.video.filters` blurs frames.
"""
