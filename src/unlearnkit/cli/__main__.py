"""``python -m unlearnkit.cli``: the same command line as the ``unlearnkit`` entry point."""

from unlearnkit.cli import main

main()
