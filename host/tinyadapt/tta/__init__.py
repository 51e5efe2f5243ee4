"""Early-exit test-time adaptation (TinyTTA, docs/TTA.md): shifted streams, preparing a model
with exit heads, and adaptation sessions."""
