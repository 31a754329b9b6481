"""Checkpoint -> quantized ONNX towers + manifest. Needs the `build` extra (torch, transformers, onnx).

Never packed into a Lambda layer. The runtime imports only this module (for BuildRefused) and
`default_model` (finding or fetching the default model), neither of which imports torch; the build itself
only when it builds the default model.
"""


class BuildRefused(Exception):
    """The build cannot go on; the message is the one-line reason shown to the user."""
