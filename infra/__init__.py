"""CDK constructs, one per concern, composed by `stack.py`."""
