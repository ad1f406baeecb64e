#!/usr/bin/env python
"""Test accuracy of static MNIST runs under two label protocols, from their files.

Diehl & Cook (2015) assigned each neuron its class from the responses to the
**60,000 training digits** (learning off); the original code's evaluation
script uses 10,000 recorded training responses, and its readme's "around 89 %"
assigns labels from the **test** responses. A static run with
``--assignment-samples 0`` stores the responses to all its training digits
(``assignment_spike_counts``, in training-file order); this script labels the
neurons from all of them and from the first 10,000 only (the digits with index
< 10,000), and predicts the stored test responses with both rules::

    python benchmarks/label_protocols.py results/study2/static_dc_N100_e1.nc ...

Prints one markdown row per file and protocol; nothing is simulated.
"""

import argparse
import json
import sys

import numpy as np

from spikedyn_brian.analysis.labelling import label_and_predict
from spikedyn_brian.analysis.storage import read_dataset


def label_protocol_accuracies(dataset, first=10_000):
    """{protocol: {rule: accuracy}} for labels from all labelling digits and the first ``first``."""
    counts = dataset.assignment_spike_counts.values
    labels = dataset.assignment_labels.values
    test_counts = dataset.test_spike_counts.values
    test_labels = dataset.test_labels.values
    protocols = {f"labels from {len(labels):,} training digits": slice(None)}
    if len(labels) > first:
        protocols[f"labels from the first {first:,} training digits"] = slice(0, first)
    return {name: label_and_predict(counts[part], labels[part], test_counts, test_labels)[3]
            for name, part in protocols.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="static-mnist results files (netCDF)")
    parser.add_argument("--first", type=int, default=10_000,
                        help="the smaller label set: the first N labelling digits")
    args = parser.parse_args(argv)
    print("| file | network | N | passes | numerics | label protocol | all-activity | "
          "proportion weighting |")
    print("|---|---|---:|---:|---|---|---:|---:|")
    for path in args.files:
        dataset = read_dataset(path)
        config = json.loads(dataset.attrs["config"])
        network = config["network"]
        numerics = network["integration_method"] + (
            f", input delays {network['plasticity']['max_input_delay_ms']:g} ms"
            if network["plasticity"]["max_input_delay_ms"] else "")
        for protocol, accuracies in label_protocol_accuracies(dataset, args.first).items():
            print(f"| {path} | {network['variant']} | {network['n_neurons']} | "
                  f"{config['stream']['epochs']} | {numerics} | {protocol} | "
                  f"{100 * accuracies['all_activity']:.1f} % | "
                  f"{100 * accuracies['proportion_weighting']:.1f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
