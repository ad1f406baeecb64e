#!/usr/bin/env python
"""Markdown tables of the replication study (``docs/results.md``) from its files.

Reads the trial tables of ``spikedyn run tune`` and the merged file of
``spikedyn run continual-comparison`` and prints

* per tuned variant: trials, the best trial's objective (recent, previous) on
  the validation split and its parameters; for Diehl & Cook also the best trial
  of each reading of the timer;
* per compared variant: mean ± 95 % CI over seeds of recent-task accuracy,
  previous-task accuracy (average over the stream), accuracy on the earlier
  tasks at the end of the stream, forgetting and BWT, on the evaluation split
  recorded in the file;
* SpikeDyn minus each baseline, paired over seeds (mean ± 95 % CI, and the
  per-seed values).

Nothing is computed here that the files do not hold except the formatting::

    python benchmarks/study_tables.py --tune results/study/tune_*.nc \\
        --comparison results/study/comparison_N400_K1000.nc
"""

import argparse
import json
import sys

import numpy as np

from spikedyn_brian.analysis.storage import read_dataset


def _number(value):
    if isinstance(value, str):
        return value
    value = float(value)
    return f"{value:.3g}"


def study_times(path):
    """(sum of trial durations, span first start → last end) in hours, from ``<path>.db``."""
    from pathlib import Path

    database = Path(path).with_suffix(".db")
    if not database.is_file():
        return None
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{database}"
    (summary,) = optuna.study.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    trials = [t for t in study.get_trials(deepcopy=False)
              if t.datetime_start is not None and t.datetime_complete is not None]
    busy = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in trials)
    span = (max(t.datetime_complete for t in trials)
            - min(t.datetime_start for t in trials)).total_seconds()
    return busy / 3600, span / 3600


def tuning_table(paths):
    lines = ["| variant | trials | best trial | objective | recent | previous | parameters |",
             "|---|---:|---:|---:|---:|---:|---|"]
    times = []
    for path in paths:
        spent = study_times(path)
        if spent is not None:
            times.append(f"* {path}: trial time {spent[0]:.2f} h in all, first start to last "
                         f"end {spent[1]:.2f} h")
        data = read_dataset(path)
        objective = data.objective.values
        complete = np.isfinite(objective)
        groups = [("", complete)]
        if "param.excitatory.timer" in data:
            timers = data["param.excitatory.timer"].values.astype(str)
            groups += [(f" (timer {timer})", complete & (timers == timer))
                       for timer in sorted(set(timers))]
        for suffix, mask in groups:
            if not mask.any():
                continue
            best = int(np.flatnonzero(mask)[np.argmax(objective[mask])])
            params = ", ".join(
                f"{name[len('param.'):]} = {_number(data[name].values[best])}"
                for name in data.data_vars if name.startswith("param."))
            lines.append(
                f"| {data.attrs['variant']}{suffix} | {int(mask.sum())} | "
                f"{int(data.trial.values[best])} | {100 * objective[best]:.1f} | "
                f"{100 * data.recent_task_accuracy.values[best]:.1f} | "
                f"{100 * data.previous_tasks_accuracy.values[best]:.1f} | {params} |")
    return "\n".join(lines + [""] + times)


METRICS = (("recent_task_accuracy", "recent task"),
           ("previous_tasks_accuracy", "previous tasks (stream)"),
           ("final_previous_tasks_accuracy", "earlier tasks at the end"),
           ("average_forgetting", "forgetting"),
           ("backward_transfer", "BWT"))


def comparison_table(path):
    data = read_dataset(path)
    metrics = [(name, label) for name, label in METRICS if f"{name}_mean" in data]
    lines = [f"Evaluation split: {data.attrs.get('evaluation_split')}; seeds "
             f"{list(np.atleast_1d(data.seed.values))}; points, mean ± 95 % CI.", "",
             "| variant | " + " | ".join(label for _, label in metrics) + " |",
             "|---|" + "---:|" * len(metrics)]
    for variant in data.variant.values:
        row = data.sel(variant=variant)
        cells = [f"{100 * float(row[f'{name}_mean']):.1f} ± {100 * float(row[f'{name}_ci95']):.1f}"
                 for name, _ in metrics]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    if "baseline" in data.dims:
        lines += ["", "SpikeDyn minus baseline, paired over seeds (points; per seed in brackets):",
                  "", "| baseline | recent task | previous tasks (stream) | earlier tasks at the end |",
                  "|---|---:|---:|---:|"]
        for baseline in data.baseline.values:
            row = data.sel(baseline=baseline)
            cells = []
            for name in ("recent_task_accuracy", "previous_tasks_accuracy",
                         "final_previous_tasks_accuracy"):
                if f"{name}_difference_mean" not in row:
                    cells.append("–")
                    continue
                per_seed = ", ".join(f"{100 * v:+.1f}" for v in row[f"{name}_difference"].values)
                cells.append(f"{100 * float(row[f'{name}_difference_mean']):+.1f} ± "
                             f"{100 * float(row[f'{name}_difference_ci95']):.1f} [{per_seed}]")
            lines.append(f"| {baseline} | " + " | ".join(cells) + " |")
    parameters = json.loads(data.attrs.get("variant_parameters", "{}"))
    if parameters:
        lines += ["", "Network overrides per variant (from the tuned tables):", ""]
        lines += [f"* `{variant}`: `{json.dumps(value, sort_keys=True)}`"
                  for variant, value in parameters.items()]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", nargs="*", default=[], help="trial tables (netCDF)")
    parser.add_argument("--comparison", nargs="*", default=[], help="merged comparison files")
    args = parser.parse_args(argv)
    if args.tune:
        print(tuning_table(args.tune))
        print()
    for path in args.comparison:
        print(f"### {path}\n")
        print(comparison_table(path))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
