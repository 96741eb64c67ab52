"""The demo: a bundled example repository, the scripted policy that plays the model on it, and the runners."""
