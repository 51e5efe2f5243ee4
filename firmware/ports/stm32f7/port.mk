PORT_EXTRA_DIRS := stm32_common
