#!/usr/bin/env python
"""One short train/test run on one device, as JSON: for comparing devices.

Trains a fresh network on ``--train-samples`` digits of
``load_embedded('train')`` (seeded random order, ``plastic=True``, from
``engine.initial_state(seed)``), labels the neurons from the responses to the
second half of that training stream, tests on ``--test-samples`` digits of
``load_embedded('test')`` (seeded random order, learning off) and prints one
JSON object (the last line of stdout): spike statistics (excitatory spikes and presentation slots per
digit, input spikes per digit), accuracies of both prediction rules, ms per
digit (``StreamResult.simulation_seconds``, without building) and the build
time of each stream (code generation + compilation).

Run the same command on two devices with the same seed: the data (digits,
order, initial weights) are the same. On ``genn`` (in the environment of
``make genn-venv``, with ``GENN_PATH`` set; GeNN's single-threaded CPU
backend unless ``--use-gpu``) every stream is one GeNN project, built and
compiled before it runs, and its Poisson inputs come from GeNN's generator,
which the seed does not reach: spike trains differ, statistics should not.

Example (``docs/performance.md``, GPU devices)::

    python benchmarks/device_comparison.py --device cpp_standalone --neurons 100 \\
        --train-samples 400 --test-samples 500 --seed 0
    GENN_PATH=/path/to/genn .venv-genn/bin/python benchmarks/device_comparison.py \\
        --device genn --neurons 100 --train-samples 400 --test-samples 500 --seed 0
"""

import argparse
import json
import sys
import tempfile
import time

import numpy as np


def compare(device, network="diehl-cook", neurons=100, train_samples=400, test_samples=500,
            seed=0, build_root=None, use_gpu=False, input_seed=None):
    """Train, label and test on ``device``; return the figures as a dict.

    ``seed`` chooses the digits, their order and the initial weights;
    ``input_seed`` (default ``seed``) the Poisson input spikes (not on genn,
    whose generator Brian2's seed does not reach). ``use_gpu``: the device's
    option of that name (genn: GeNN's CUDA backend). The network has the
    published constants (``network.parameter_set = 'published'``).
    """
    import brian2

    from spikedyn_brian.config import network_from_mapping
    from spikedyn_brian.data import load_embedded
    from spikedyn_brian.engine import Engine
    from spikedyn_brian.phases import PhaseRunner
    from spikedyn_brian.protocols import evaluation
    from spikedyn_brian.seeds import RunSeeds

    seeds = RunSeeds(seed)
    input_seeds = seeds if input_seed is None else RunSeeds(input_seed)
    rng = np.random.default_rng(seeds.stream_order)
    train = load_embedded("train")
    test = load_embedded("test")
    train_order = rng.permutation(len(train))[:train_samples]
    test_set = test.subset(evaluation.fixed_subset(len(test), test_samples))
    parameters = network_from_mapping({"variant": network, "n_neurons": neurons,
                                       "parameter_set": "published"})
    build_root = build_root or tempfile.mkdtemp(prefix="device-comparison-")
    options = {"use_gpu": True} if use_gpu else {}
    start = time.perf_counter()
    engine = Engine(parameters, device=device, build_root=build_root,
                    chunk_samples=max(train_samples, test_samples), options=options)
    phases = PhaseRunner(engine, checkpoint=None, progress=False)
    build_seconds = []
    if engine.build_seconds is not None:  # built once, here (cpp_standalone, cuda)
        build_seconds.append(engine.build_seconds)
    # A device that builds every stream (genn: one project each): each stream's build.
    per_stream_builds = not engine.builds_once and engine.build_seconds is None
    trained = evaluation.train(phases, "train", train.images[train_order],
                               engine.initial_state(seeds.weights), input_seeds)
    if per_stream_builds and engine.build_seconds is not None:
        build_seconds.append(engine.build_seconds)
    # Neurons are labelled with the second half of the training digits.
    half = train_samples // 2
    scores = evaluation.label_and_test(phases, "", trained.state,
                                       train.subset(train_order[half:]), test_set, input_seeds)
    tested, accuracies = scores.test, scores.accuracies
    if per_stream_builds and engine.build_seconds is not None:
        build_seconds.append(engine.build_seconds)
    total_seconds = time.perf_counter() - start
    engine.close()

    def statistics(result, n):
        spikes = result.spike_counts.sum(axis=1)
        return {
            "spikes_per_digit": float(spikes.mean()),
            "silent_digits": int(np.sum(spikes == 0)),
            "slots_per_digit": float(result.presentations.mean()),
            "input_spikes_per_digit": result.input_spikes_total / n,
            "ms_per_digit": result.simulation_seconds / n * 1e3,
        }

    return {
        "device": device,
        "use_gpu": bool(use_gpu),
        "network": network,
        "neurons": neurons,
        "train_samples": train_samples,
        "test_samples": test_samples,
        "seed": seed,
        "input_seed": input_seeds.root,
        "brian2": brian2.__version__,
        "train": statistics(trained, train_samples),
        "test": statistics(tested, test_samples),
        "accuracy": {rule: float(value) for rule, value in accuracies.items()},
        "weight_column_sums": trained.state.weight_matrix(784).sum(axis=0).tolist(),
        "theta_mean_mV": float(trained.state.theta.mean() * 1e3),
        "build_seconds": build_seconds,
        "total_seconds": total_seconds,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    from spikedyn_brian.devices.registry import DEVICES

    parser.add_argument("--device", required=True, choices=DEVICES)
    parser.add_argument("--network", default="diehl-cook")
    parser.add_argument("--neurons", type=int, default=100)
    parser.add_argument("--train-samples", type=int, default=400)
    parser.add_argument("--test-samples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--input-seed", type=int, default=None,
                        help="seed of the input spikes only (default: --seed)")
    parser.add_argument("--build-dir", default=None)
    parser.add_argument("--use-gpu", action="store_true", help="genn: GeNN's CUDA backend")
    args = parser.parse_args(argv)
    figures = compare(args.device, args.network, args.neurons, args.train_samples,
                      args.test_samples, args.seed, args.build_dir, args.use_gpu,
                      args.input_seed)
    # brian2genn prints its progress to stdout: the figures are the last line.
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
