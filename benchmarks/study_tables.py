#!/usr/bin/env python
"""Markdown tables of the replication study (``docs/results.md``) from its files.

Reads the trial tables of ``spikedyn run tune`` and the merged file of
``spikedyn run continual-comparison`` and prints

* per tuning study: trials (complete, silent, failed), the best trial's
  objective (per seed; recent, previous) on the validation split, its
  parameters, the study's core-hours, where each best value lies in its range,
  and (``--convergence FILE``) the best objective against trial;
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
from pathlib import Path

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
    """Best trial of each study, its per-seed objectives, and the study's cost."""
    lines = ["| family | N | trials (complete / silent / failed) | best trial | objective "
             "(seeds) | recent | recent w/o task 0 | previous | core-hours | parameters |",
             "|---|---:|---|---:|---|---:|---:|---:|---:|---|"]
    for path in paths:
        data = read_dataset(path)
        objective = data.objective.values
        complete = np.isfinite(objective)
        silent = (data["silent"].values.astype(str) != "") if "silent" in data else complete * 0
        best = int(np.flatnonzero(complete)[np.argmax(objective[complete])])
        base = json.loads(data.attrs.get("base_config", "{}"))
        n_neurons = base.get("network", {}).get("n_neurons", "?")
        params = ", ".join(
            f"{name[len('param.'):]} = {_number(data[name].values[best])}"
            for name in data.data_vars if name.startswith("param."))
        seeds = ", ".join(f"{100 * v:.1f}" for v in data.objective_per_seed.values[best]) \
            if "objective_per_seed" in data else ""
        later = (f"{100 * data.later_recent_task_accuracy.values[best]:.1f}"
                 if "later_recent_task_accuracy" in data else "–")
        hours = data.attrs.get("core_seconds")
        spent = study_times(path)
        if hours is None and spent is not None:
            hours = spent[0] * 3600
        lines.append(
            f"| {data.attrs['variant']} | {n_neurons} | {int(complete.sum())} / "
            f"{int(silent.sum())} / {int((~complete).sum())} | {int(data.trial.values[best])} | "
            f"{100 * objective[best]:.1f} ({seeds}) | "
            f"{100 * data.recent_task_accuracy.values[best]:.1f} | {later} | "
            f"{100 * data.previous_tasks_accuracy.values[best]:.1f} | "
            f"{'–' if hours is None else f'{float(hours) / 3600:.2f}'} | {params} |")
    return "\n".join(lines)


def edge_table(paths):
    """Where each best value lies in its range (`tuning.edge_report`)."""
    from spikedyn_brian.protocols.tuning import edge_report

    lines = ["| family | N | parameter | best value | to low edge | to high edge | near an "
             "edge? |", "|---|---:|---|---:|---:|---:|---|"]
    for path in paths:
        data = read_dataset(path)
        n_neurons = json.loads(data.attrs.get("base_config", "{}")).get(
            "network", {}).get("n_neurons", "?")
        for row in edge_report(data):
            near = "no"
            if row["near"]:
                near = (f"{row['near']} edge: physical ({row['limit']})" if row["limit"]
                        else f"**{row['near']} edge: arbitrary, widen**")
            lines.append(f"| {data.attrs['variant']} | {n_neurons} | `{row['key']}` | "
                         f"{_number(row['value'])} | {row['to_low']:.2f} | {row['to_high']:.2f} "
                         f"| {near} |")
    return "\n".join(lines + ["", "(distances in decades on log-scaled ranges, in fractions "
                                   "of the range on linear ones)"])


def convergence_figure(paths, output):
    """Best objective against trial, one panel per network size."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from spikedyn_brian.analysis.plots import plot_tuning_convergence

    by_size = {}
    for path in paths:
        data = read_dataset(path)
        n_neurons = json.loads(data.attrs.get("base_config", "{}")).get(
            "network", {}).get("n_neurons", "?")
        by_size.setdefault(n_neurons, []).append(data)
    figure = Figure(figsize=(5.5 * len(by_size), 4), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(by_size)))
    for ax, (size, studies) in zip(axes, sorted(by_size.items(), reverse=True)):
        plot_tuning_convergence([d.objective.values for d in studies],
                                labels=[d.attrs["variant"] for d in studies], ax=ax,
                                title=f"N = {size}: best validation objective so far")
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=120)
    return output


METRICS = (("recent_task_accuracy", "recent task"),
           ("later_recent_task_accuracy", "recent task w/o task 0"),
           ("previous_tasks_accuracy", "previous tasks (stream)"),
           ("final_previous_tasks_accuracy", "earlier tasks at the end"),
           ("average_forgetting", "forgetting"),
           ("backward_transfer", "BWT"))


def comparison_table(path):
    data = read_dataset(path)
    metrics = [(name, label) for name, label in METRICS if f"{name}_mean" in data]
    lines = [f"Evaluation split: {data.attrs.get('evaluation_split')}; seeds "
             f"{[int(s) for s in np.atleast_1d(data.seed.values)]}; points, mean ± 95 % CI.", "",
             "| variant | " + " | ".join(label for _, label in metrics) + " |",
             "|---|" + "---:|" * len(metrics)]
    for variant in data.variant.values:
        row = data.sel(variant=variant)
        cells = [f"{100 * float(row[f'{name}_mean']):.1f} ± {100 * float(row[f'{name}_ci95']):.1f}"
                 for name, _ in metrics]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    if "baseline" in data.dims:
        lines += ["", "SpikeDyn minus baseline, paired over seeds (points; per seed in brackets):",
                  "", "| baseline | recent task | recent task w/o task 0 | previous tasks "
                      "(stream) | earlier tasks at the end |",
                  "|---|---:|---:|---:|---:|"]
        for baseline in data.baseline.values:
            row = data.sel(baseline=baseline)
            cells = []
            for name in ("recent_task_accuracy", "later_recent_task_accuracy",
                         "previous_tasks_accuracy", "final_previous_tasks_accuracy"):
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


def cross_file_table(spikedyn_path, baseline_path):
    """SpikeDyn of one comparison file minus every variant of another, paired over
    the seeds both hold (the same seed: the same digits and input spikes)."""
    from spikedyn_brian.protocols.continual_comparison import seed_statistics

    ours, theirs = read_dataset(spikedyn_path), read_dataset(baseline_path)
    seeds = sorted(int(s) for s in set(np.atleast_1d(ours.seed.values))
                   & set(np.atleast_1d(theirs.seed.values)))
    lines = [f"SpikeDyn of {Path(spikedyn_path).name} minus the variants of "
             f"{Path(baseline_path).name}, paired over seeds {seeds} (points, mean ± 95 % CI; "
             "per seed in brackets):", "",
             "| baseline | recent task | recent task w/o task 0 | previous tasks (stream) | "
             "earlier tasks at the end |", "|---|---:|---:|---:|---:|"]
    for variant in theirs.variant.values:
        cells = []
        for name in ("recent_task_accuracy", "later_recent_task_accuracy",
                     "previous_tasks_accuracy", "final_previous_tasks_accuracy"):
            difference = 100 * (ours[name].sel(variant="spikedyn", seed=seeds, drop=True)
                                - theirs[name].sel(variant=variant, seed=seeds, drop=True))
            mean, _, half = seed_statistics(difference)
            per_seed = ", ".join(f"{v:+.1f}" for v in difference.values)
            cells.append(f"{float(mean):+.1f} ± {float(half):.1f} [{per_seed}]")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", nargs="*", default=[], help="trial tables (netCDF)")
    parser.add_argument("--comparison", nargs="*", default=[], help="merged comparison files")
    parser.add_argument("--convergence", metavar="FILE.png",
                        help="write the convergence figure of the --tune studies")
    parser.add_argument("--paired", nargs=2, metavar=("SPIKEDYN.nc", "BASELINES.nc"),
                        help="SpikeDyn of the first comparison file minus every variant of "
                             "the second, paired over their common seeds")
    args = parser.parse_args(argv)
    if args.tune:
        print(tuning_table(args.tune))
        print()
        print(edge_table(args.tune))
        print()
        if args.convergence:
            print(f"convergence figure: {convergence_figure(args.tune, args.convergence)}\n")
    for path in args.comparison:
        print(f"### {path}\n")
        print(comparison_table(path))
        print()
    if args.paired:
        print(cross_file_table(*args.paired))
    return 0


if __name__ == "__main__":
    sys.exit(main())
