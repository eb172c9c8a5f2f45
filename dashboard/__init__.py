"""Image-classifier dashboard: compare torchvision and Hugging Face classifiers in the browser.

Importing this package is cheap on purpose: torch, torchvision, transformers and gradio load
only when a model or the app is first needed.
"""

__version__ = "0.1.0"
