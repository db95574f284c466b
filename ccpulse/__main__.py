"""`python -m ccpulse`: the `ccpulse` command."""

from .cli import app

if __name__ == "__main__":
    app(prog_name="ccpulse")
