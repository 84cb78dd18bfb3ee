"""The engine: Keras graph surgery (graph.py) and the compiled CAM computation (gradcam.py)."""
