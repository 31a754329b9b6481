"""Checkpoint -> quantized ONNX towers + manifest. Needs the `build` extra (torch, transformers, onnx).

Never imported by the runtime and never packed into a Lambda layer.
"""


class BuildRefused(Exception):
    """The build cannot go on; the message is the one-line reason shown to the user."""
