"""The bundled sample: 8 years of synthetic daily BTC/ETH/SOL spot and perps (see ``sample/README.md``).

``load_sample()`` reads ``sample/sample_1d.parquet`` shipped inside the package; it never touches the
network. Regenerate the file from `SAMPLE_SPEC` with ``python -m eternal_engine.data.sample --write``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from eternal_engine.data.loaders import from_parquet
from eternal_engine.data.market import MarketData

SAMPLE_PATH = Path(__file__).with_name("sample") / "sample_1d.parquet"
# Seed 265: bull 2017, bear into 2019, a 2020-21 bull of ~5x, a 2021 crash of -86 % from the peak, recovery
# to a new high in 2024; clear trends both ways for the 50/200-SMA demo (details in sample/README.md).
SAMPLE_SPEC = dict(years=8.0, freq="1D", seed=265, symbols=("BTC", "ETH", "SOL"), start="2017-01-01")


def load_sample() -> MarketData:
    """The bundled sample as `MarketData`: 2922 daily bars from 2017-01-01 of BTC/ETH/SOL spot and perps."""
    return from_parquet(SAMPLE_PATH, freq="1D")


def generate_sample() -> MarketData:
    """Regenerate the sample from `SAMPLE_SPEC` (identical to `load_sample` up to float rounding)."""
    from eternal_engine.data.synth import synthetic

    return synthetic(**SAMPLE_SPEC)


def write_sample(path=SAMPLE_PATH) -> Path:
    """Write the sample Parquet file (long format) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    generate_sample().to_parquet(path)
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m eternal_engine.data.sample", description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"regenerate {SAMPLE_PATH.name} from SAMPLE_SPEC")
    parser.add_argument("--path", default=str(SAMPLE_PATH), help="output file (default: the bundled one)")
    args = parser.parse_args(argv)
    if not args.write:
        print(load_sample())
        return
    out = write_sample(args.path)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
