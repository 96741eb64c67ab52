"""Serving the model: what fits on a GPU, a tuned vLLM command line, and a serving benchmark."""
