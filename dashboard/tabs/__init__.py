"""One module per tab: each builds its components and wires them to named handlers."""
