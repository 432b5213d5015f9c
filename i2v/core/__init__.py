"""Pure rules and arithmetic of i2v: stdlib only, no I/O, no globals that change (see README.md here)."""
