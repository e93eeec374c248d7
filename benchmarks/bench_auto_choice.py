"""How good is the automatic proxy choice? Replayed on a finished proxy study.

Draws ``--pilots`` seeded random pilots of ``m`` architectures from the study's trained rows,
chooses the proxy or ensemble with the best pilot tau (:func:`hpsearch.scoring.select_proxy`, the
rule of :func:`hpsearch.scoring.choose_proxy`: judged on the validation LDOS RMSE, and only a proxy
that beats params), and measures the choice's top-5 regret (lowest error among its 5 best-scored
architectures over the lowest error) on the rows the pilot did not see, and on all rows. Studies
written before the LDOS RMSE was recorded are replayed on their band-energy error. Prints a table
and writes JSON.

    .venv/bin/python benchmarks/bench_auto_choice.py results/proxy_study/proxy_study.json [--m 12]
"""

from __future__ import annotations

import argparse
import collections
import json
import math
from pathlib import Path

import numpy as np

from hpsearch.scoring.auto import choice_scores, select_proxy
from hpsearch.scoring.calibration import calibrate, ensemble_name, rank_average, top_k_regret


from _outputs import output_paths

def _error_key(rows: list[dict]) -> str:
    """The error the auto choice judges on: the validation LDOS RMSE (band energy in older studies)."""
    return "val_ldos_rmse" if rows and "val_ldos_rmse" in rows[0] else "val_error_mev_per_atom"


def _calibrations(rows: list[dict], names: list[str], ensembles: list[list[str]]) -> list:
    errors = [r[_error_key(rows)] for r in rows]
    acts = [r["activation"] for r in rows]
    params = [r["n_params"] for r in rows]
    table = {n: [r["scores"][n] for r in rows] for n in names}
    out = [calibrate(n, table[n], errors, acts, params, n_bootstrap=10) for n in names]
    out += [calibrate(ensemble_name(e), rank_average(table, e), errors, acts, params, n_bootstrap=10)
            for e in ensembles]
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; ``--out`` (a folder, or a .json file) is checked before any work and becomes the JSON path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--m", type=int, default=12)
    parser.add_argument("--pilots", type=int, default=50)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("results/bench_auto_choice.json"))
    args = parser.parse_args(argv)
    args.folder, args.out = output_paths(Path(args.out), "bench_auto_choice.json")
    return args


def main() -> None:
    args = parse_args()
    study = json.loads(args.study.read_text())
    key = _error_key(study["rows"])
    rows = [r for r in study["rows"] if math.isfinite(r[key])]
    names = list(rows[0]["scores"])  # every scored proxy: params and both NASWOT signs included
    ensembles = [list(e) for e in study["config"]["ensembles"] if set(e) <= set(names)]  # as the study did
    rng = np.random.default_rng(0)
    held, whole, chosen, seconds = [], [], collections.Counter(), []
    for _ in range(args.pilots):
        pilot_idx = rng.choice(len(rows), size=args.m, replace=False)
        pilot = [rows[i] for i in pilot_idx]
        rest = [r for i, r in enumerate(rows) if i not in set(pilot_idx)]
        choice = select_proxy(_calibrations(pilot, names, ensembles)).name
        chosen[choice] += 1
        seconds.append(sum(r["train_seconds"] for r in pilot))
        for target, part in ((held, rest), (whole, rows)):
            if not part:
                continue
            scores = choice_scores(choice, {n: [r["scores"][n] for r in part] for n in names})
            errors = np.array([r[key] for r in part])
            target.append(top_k_regret(scores, errors, min(args.k, len(part))))
    print(f"{args.pilots} pilots of m = {args.m} from {len(rows)} trained architectures; top-{args.k} regret "
          f"of the chosen proxy ({key})")
    print("| rows ranked | median | mean | 90th percentile | max | share <= 1.2 |")
    print("|---|---|---|---|---|---|")
    for label, values in (("held out (not in the pilot)", held), ("all", whole)):
        if not values:
            continue
        v = np.array(values)
        print(f"| {label} | {np.median(v):.3f} | {v.mean():.3f} | {np.quantile(v, 0.9):.3f} | {v.max():.3f} | "
              f"{np.mean(v <= 1.2):.2f} |")
    print("choices:", ", ".join(f"{k} x{v}" for k, v in chosen.most_common()))
    print(f"pilot training: {np.median(seconds):.0f} s (median over pilots)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"m": args.m, "pilots": args.pilots, "k": args.k, "regret_held_out": held,
                                    "regret_all": whole, "choices": dict(chosen),
                                    "pilot_training_seconds": seconds}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
