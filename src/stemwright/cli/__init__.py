"""Command line interface: ``stemdeck COMMAND ...``; one module per command, imported only when used."""
