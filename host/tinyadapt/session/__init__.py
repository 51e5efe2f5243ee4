"""Sessions: feeding samples to a target (host engine, emulated or real device)."""
