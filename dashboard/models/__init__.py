"""Model registry, backends and the shared model cache."""
