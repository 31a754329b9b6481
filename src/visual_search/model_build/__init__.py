"""Checkpoint -> quantized ONNX towers + manifest. Needs the `build` extra (torch, transformers, onnx).

Never packed into a Lambda layer. The runtime imports only this module (no torch), for BuildRefused,
and the build itself only when it builds the default model (visual_search.embedding.default_model).
"""


class BuildRefused(Exception):
    """The build cannot go on; the message is the one-line reason shown to the user."""
