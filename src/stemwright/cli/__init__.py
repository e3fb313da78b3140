"""Command line interface: ``stemwright COMMAND ...``; one module per command, imported only when used."""
