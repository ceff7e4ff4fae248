"""Output formats, one module per format, registered in one table."""
