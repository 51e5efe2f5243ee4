"""Planners: memory (arena offsets), and later patches and sparse updates."""
