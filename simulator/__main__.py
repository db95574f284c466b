"""`python -m simulator`: post a realistic contact-center day to the ingest, live."""

from __future__ import annotations

import logging

import typer

from services.clock import SystemClock

from .live import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    url: str = typer.Option("http://127.0.0.1:8001", help="ingest base URL"),
    rate: float = typer.Option(1.0, help="new contacts per second"),
    duration: float = typer.Option(0, help="seconds to run; 0 runs until stopped"),
    seed: int = typer.Option(1),
    token: str = typer.Option("", envvar="CCPULSE_INGEST_TOKEN", help="bearer token for ingest"),
    clock_offset: float = typer.Option(
        0.0, envvar="CCPULSE_CLOCK_OFFSET_SECONDS", help="shift of the clock (tests)"
    ),
) -> None:
    logging.basicConfig(level="INFO", format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per post is noise
    accepted = run(url, rate, duration, seed, token, SystemClock(clock_offset))
    typer.echo(f"accepted {accepted} events")


if __name__ == "__main__":
    app()
