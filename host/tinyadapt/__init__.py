"""tinyadapt: run int8 neural networks on microcontrollers (fine-tuning and adaptation are in development)."""

__version__ = "0.1.0"
