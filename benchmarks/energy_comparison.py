"""SpikeDyn against ASP and Diehl & Cook: analytical energy from measured spike counts.

For each variant, train on the same stream of embedded MNIST training digits
(learning on) and test on the same test digits (learning off), on
``cpp_standalone``; count operations from the runs' spike totals
(:mod:`spikedyn_brian.analysis.energy`), multiply by the energy table, read
the CPU/GPU energy counters around each compiled run where they exist
(:mod:`spikedyn_brian.power`), and print the per-sample figures, their
breakdown and the per-cent change of SpikeDyn against each baseline (ASP,
the paper's, first), plus the activity rates that calibrate
``analysis.energy.DEFAULT_RATES``.

    python benchmarks/energy_comparison.py --neurons 400 --train-samples 400 \\
        --test-samples 100 --out results/energy_comparison_400.nc

With ``--tuned asp=SOURCE diehl-cook=SOURCE spikedyn=SOURCE`` each family runs
its tuned network (a trial table of ``spikedyn run tune``, a tuned-set TOML or
a shipped set's name, e.g. ``spikedyn=spikedyn-N200``); without one, a family
runs with the configuration's defaults (its shipped N = 400 set).
"""

import argparse
import json
import time

import numpy as np
import xarray

from spikedyn_brian.analysis import energy
from spikedyn_brian.analysis.memory import memory_footprint
from spikedyn_brian.analysis.storage import write_dataset
from spikedyn_brian.data import load_digits
from spikedyn_brian.engine import Engine
from spikedyn_brian.phases import PhaseRunner
from spikedyn_brian.power import EnergyMeter
from spikedyn_brian.protocols import evaluation
from spikedyn_brian.protocols.static_mnist import training_order
from spikedyn_brian.seeds import RunSeeds

VARIANTS = ("asp", "diehl-cook", "spikedyn")
#: Baselines SpikeDyn's energy is compared with (the paper's first).
BASELINES = ("asp", "diehl-cook")


def measure(variant, n_neurons, train_images, test_images, seed, build_root=None, tuned=None):
    """Run one variant; return {phase: (StreamResult, EnergyReading)} and the build time."""
    from spikedyn_brian.config import experiment_from_mapping, merge

    overrides = {"variant": variant}
    if tuned:
        from spikedyn_brian.protocols.tuning import tuned_overrides

        overrides = merge(tuned_overrides(tuned, n_neurons=n_neurons), overrides)
    overrides["n_neurons"] = n_neurons
    parameters = experiment_from_mapping({"network": overrides}).network
    engine = Engine(parameters, device="cpp_standalone", build_root=build_root,
                    chunk_samples=max(len(train_images), len(test_images)))
    phases = PhaseRunner(engine, checkpoint=None, progress=False)
    seeds = RunSeeds(seed)
    runs = {}
    with EnergyMeter() as meter:
        train = evaluation.train(phases, "train", train_images,
                                 engine.initial_state(seeds.weights), seeds)
    runs["train"] = (train, meter.reading)
    with EnergyMeter() as meter:
        test = phases.run("test", test_images, train.state, plastic=False,
                          seed=seeds.inputs("test"), description="test")
    runs["inference"] = (test, meter.reading)
    engine.close()
    return parameters, runs, engine.build_seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=400)
    parser.add_argument("--train-samples", type=int, default=400)
    parser.add_argument("--test-samples", type=int, default=100)
    parser.add_argument("--weight-bits", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--build-dir", default=None)
    parser.add_argument("--out", default="results/energy_comparison.nc")
    parser.add_argument("--tuned", nargs="*", default=[], metavar="FAMILY=SOURCE",
                        help="each family's tuned network: a trial table .nc, a tuned-set "
                             ".toml or a shipped set's name")
    parser.add_argument("--data-dir", default=None,
                        help="full MNIST (the IDX files); default: the embedded digits")
    args = parser.parse_args(argv)
    tuned = dict(item.split("=", 1) for item in args.tuned)

    train_set = load_digits("train", data_dir=args.data_dir)
    test_set = load_digits("test", data_dir=args.data_dir)
    order = training_order(len(train_set), args.train_samples, 1,
                           RunSeeds(args.seed).stream_order)
    test_index = evaluation.fixed_subset(len(test_set), args.test_samples)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = {}
    for variant in VARIANTS:
        parameters, runs, build = measure(variant, args.neurons, train_set.images[order],
                                          test_set.images[test_index], args.seed, args.build_dir,
                                          tuned.get(variant))
        rows[variant] = (parameters, runs)
        print(f"{variant}: build {build:.1f} s")
    breakdowns = []
    for variant, (parameters, runs) in rows.items():
        memory = memory_footprint(parameters, weight_bits=args.weight_bits)
        print(f"\n## {variant}, N = {args.neurons}: memory {memory.total_bytes} B "
              f"({args.weight_bits}-bit weights)")
        for phase, (result, reading) in runs.items():
            counts = energy.operation_counts_from_result(parameters, result, phase)
            estimate = energy.energy_per_sample(parameters, counts, weight_bits=args.weight_bits)
            n = len(result.presentations)
            rates = energy.ActivityRates.from_result(result)
            print(f"{phase}: {estimate.joules * 1e6:.3f} µJ per sample (analytical); "
                  f"{result.simulation_seconds / n * 1e3:.2f} ms per sample; measured {reading}")
            print(f"  rates: {rates}")
            for name in energy.OPERATIONS:
                joules = estimate.joules_by_operation[name]
                if counts.per_sample[name]:
                    print(f"  {name:24s} {counts.per_sample[name]:14.1f} ops "
                          f"{joules * 1e6:9.3f} µJ ({100 * joules / estimate.joules:5.1f} %)")
            dataset = estimate.to_dataset().expand_dims(variant=[variant], phase=[phase])
            for key, value in (("measured_cpu_joules_per_sample", reading.cpu_joules),
                               ("measured_gpu_joules_per_sample", reading.gpu_joules)):
                dataset[key] = (("variant", "phase"), [[np.nan if value is None else value / n]])
            dataset["wall_seconds_per_sample"] = (("variant", "phase"),
                                                  [[result.simulation_seconds / n]])
            dataset["slots_per_sample"] = (("variant", "phase"), [[result.slots / n]])
            dataset.attrs = {"cpu_status": reading.cpu_status, "gpu_status": reading.gpu_status}
            breakdowns.append(dataset)
    merged = xarray.combine_by_coords([d.drop_attrs() if hasattr(d, "drop_attrs") else d
                                       for d in breakdowns])
    totals = merged.energy_joules_per_sample.sum("operation")
    change = [np.asarray(energy.percent_change(totals.sel(variant="spikedyn"),
                                               totals.sel(variant=baseline)))
              for baseline in BASELINES]
    merged = merged.assign_coords(baseline=list(BASELINES))
    merged["energy_change_percent"] = (("baseline", "phase"), np.array(change), {
        "long_name": "SpikeDyn against each baseline, analytical energy per sample",
        "units": "%"})
    merged.attrs = {"n_neurons": args.neurons, "train_samples": args.train_samples,
                    "test_samples": args.test_samples, "seed": args.seed,
                    "weight_bits": args.weight_bits, "started": started,
                    "cpu_status": breakdowns[0].attrs["cpu_status"],
                    "gpu_status": breakdowns[0].attrs["gpu_status"],
                    "energy_table_source": energy.HOROWITZ_45NM.source,
                    "tuned": json.dumps(tuned)}
    for baseline in BASELINES:
        print(f"\n## SpikeDyn against {baseline} (analytical, from measured spike counts)")
        for phase in energy.PHASES:
            print(f"{phase}: {float(totals.sel(variant=baseline, phase=phase)) * 1e6:.3f} → "
                  f"{float(totals.sel(variant='spikedyn', phase=phase)) * 1e6:.3f} µJ per "
                  "sample, "
                  f"{float(merged.energy_change_percent.sel(baseline=baseline, phase=phase)):+.1f} %")
    write_dataset(merged, args.out)
    print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
