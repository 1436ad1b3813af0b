"""The `ticktape` subcommands: each module registers its parser and its handler."""
