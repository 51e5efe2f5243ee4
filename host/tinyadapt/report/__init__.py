"""Reports: per-layer tables, JSON documents and plots."""
