"""How long `verify` takes to refuse a bundle with many members: linear, not quadratic.

    python benchmarks/bench_bundle_members.py [--members 6000,60000] [--runs 3]

Writes zips of N empty members whose last member repeats the first (the duplicate is found
only after every name was seen), then times `aisdp-log verify BUNDLE.zip` in-process until
its one-line refusal, and prints the median per size, the time per member and the ratio of
the largest size's time to the smallest's against the ratio of their sizes (linear: about
equal; the quadratic check of 0.2 took 26 s at 60,000 members). Runs with the runtime
dependencies alone; `--quick`: one run of 600 and 6,000 members (CI runs it so the benchmark
cannot rot).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
import zipfile
from pathlib import Path


def write_zip(path: Path, members: int) -> Path:
    warnings.filterwarnings("ignore", "Duplicate name", UserWarning)  # the point of it
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for number in range(members - 1):
            archive.writestr(f"artefacts/EXP-{number // 100:04d}/file-{number}.bin", b"")
        archive.writestr("artefacts/EXP-0000/file-0.bin", b"")  # the duplicate, last
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", default="6000,60000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one run of 600 and 6,000 members")
    args = parser.parse_args()
    if args.quick:
        args.members, args.runs = "600,6000", 1
    from aisdp_log.errors import AisdpLogError
    from aisdp_log.signing.verify import verify

    sizes = [int(n) for n in args.members.split(",")]
    medians = {}
    with tempfile.TemporaryDirectory() as folder:
        for members in sizes:
            bundle = write_zip(Path(folder) / f"b-{members}.zip", members)
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                try:
                    verify(bundle)
                except AisdpLogError as exc:
                    message = str(exc)
                else:
                    raise SystemExit(f"{bundle}: was not refused")
                times.append(time.perf_counter() - start)
            medians[members] = statistics.median(times)
            print(f"{members:>7} members: refused in {medians[members]:.3f} s "
                  f"({medians[members] / members * 1e6:.1f} us per member): {message[-60:]}")
    small, large = min(sizes), max(sizes)
    if small != large:
        print(f"time ratio {medians[large] / medians[small]:.1f} for a size ratio "
              f"{large / small:.1f} (linear: about equal; quadratic: its square)")


if __name__ == "__main__":
    main()
