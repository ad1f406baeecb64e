"""What the GeNN formulation needs from brian2genn 1.7 beyond what it does.

brian2genn runs a ``run_regularly`` operation on the host, between two GeNN
time steps: it copies the variables the operation reads from GeNN's arrays
into Brian2's, runs Brian2's C++ code, and copies the variables it writes
back (and pushes them to the GPU). For a ``Synapses`` owner it treats every
variable as one of the synapses' own, so an operation that reads or writes a
pre- or postsynaptic variable (``index_pre``, ``input_weight_sum_post += w``,
``w *= normalisation_factor_post``) generates C++ that names arrays that do
not exist, and does not compile. The network's slot operations need exactly
that (``docs/models.md``, section Devices).

`patch` makes brian2genn copy such a variable as a variable of the group that
owns it (the neuron-group path of the same template), pull it under its own
name before the step, and push it to the device after the operation. It
changes brian2genn's engine template and its pull bookkeeping
(``consolidate_pull_operations``), in both places only for such variables:
anything else is generated as before. The ``genn`` backend applies it for the
``genn`` device; it refuses a brian2genn whose template lacks the text it
edits (brian2genn 1.7.0's).
"""

import brian2genn
from brian2genn.codeobject import GeNNCodeObject
from brian2genn.device import GeNNDevice
from brian2.codegen.templates import CodeObjectTemplate

from spikedyn_brian.devices.errors import DeviceError

__all__ = ["SUPPORTED_BRIAN2GENN", "patch"]

#: brian2genn version whose engine template `patch` edits.
SUPPORTED_BRIAN2GENN = "1.7.0"

# Jinja: ``_v`` is the Brian2 variable; foreign when its owner is another group.
_FOREIGN = "obj['isSynaptic'] and obj['owner'].variables[var].owner.name != obj['owner'].name"
_COPY_IN = """{% set _v = obj['owner'].variables[var] %}
      std::copy_n({{_v.name}}{{_v.owner.name}}, {{_v.size}}, brian::_array_{{_v.owner.name}}_{{_v.name}});
"""
_COPY_OUT = """{% set _v = obj['owner'].variables[var] %}
      std::copy_n(brian::_array_{{_v.owner.name}}_{{_v.name}}, {{_v.size}}, {{_v.name}}{{_v.owner.name}});
"""

_READ_ANCHOR = """              {% else %}
                {% if obj['isSynaptic'] %}
                  {% if obj['connectivity'] == 'DENSE' %}
      convert_dense_matrix_2_dynamic_arrays({{var}}{{obj['owner'].name}},"""
_READ_REPLACEMENT = (
    "              {% elif " + _FOREIGN + " %}\n" + _COPY_IN
    + """              {% else %}
                {% if obj['isSynaptic'] %}
                  {% if obj['connectivity'] == 'DENSE' %}
      convert_dense_matrix_2_dynamic_arrays({{var}}{{obj['owner'].name}},"""
)
_WRITE_ANCHOR = """            {% for var in obj['write'] %}
              {% if obj['isSynaptic'] %}"""
_WRITE_REPLACEMENT = (
    "            {% for var in obj['write'] %}\n"
    "              {% if " + _FOREIGN + " %}\n" + _COPY_OUT
    + "              {% elif obj['isSynaptic'] %}"
)
_PUSH_ANCHOR = """            {% if var in groupDict[run_reg['owner'].name].variables %}
              {% if not run_reg['owner'].variables[var] in states_pushed %}
                {% set var_owner = run_reg['owner'].variables[var].owner %}
                {% if var_owner.__class__.__name__ == 'Synapses' %}
                  {% set push_name = var + var_owner.name%}
                {% else %}
                  {% set push_name = 'Current' + var + var_owner.name %}
                {% endif %}"""
_PUSH_REPLACEMENT = """            {% set _v = run_reg['owner'].variables[var] %}
            {% if _v.name in groupDict[_v.owner.name].variables %}
              {% if not _v in states_pushed %}
                {% set var_owner = _v.owner %}
                {% if var_owner.__class__.__name__ == 'Synapses' %}
                  {% set push_name = _v.name + var_owner.name%}
                {% else %}
                  {% set push_name = 'Current' + _v.name + var_owner.name %}
                {% endif %}"""


def _patched_engine_template():
    templater = GeNNCodeObject.templater
    source = templater.env.loader.get_source(templater.env, "engine.cpp")[0]
    for anchor, replacement in ((_READ_ANCHOR, _READ_REPLACEMENT),
                                (_WRITE_ANCHOR, _WRITE_REPLACEMENT),
                                (_PUSH_ANCHOR, _PUSH_REPLACEMENT)):
        if source.count(anchor) != 1:
            raise DeviceError(
                f"brian2genn {brian2genn.__version__}: its engine template is not the one "
                f"spikedyn_brian patches ({SUPPORTED_BRIAN2GENN}); use brian2genn "
                f"{SUPPORTED_BRIAN2GENN} (`make genn-venv`)"
            )
        source = source.replace(anchor, replacement)
    return CodeObjectTemplate(templater.env.from_string(source), source)


def _consolidate_pull_operations(self, run_regularly_operations):
    """brian2genn's method, pulling a pre/postsynaptic variable by its own name.

    brian2genn keys a pulled variable by the name the operation reads it
    under (``index_pre``) and its owner (``controller``): a pull function
    that does not exist. Such variables are pulled under their own name
    (``index``) before every step the operation runs at.
    """
    own_only, foreign = [], []
    for op in run_regularly_operations:
        variables = op["owner"].variables
        read = set()
        for name in op["read"]:
            variable = None if name in ("t", "dt") else variables[name]
            if variable is not None and variable.owner.name != op["owner"].name:
                foreign.append((op["step"], variable))
            else:
                read.add(name)
        own_only.append(dict(op, read=read))
    start, end = _original_consolidate(self, own_only)
    for step, variable in foreign:
        key = f"{variable.name}{variable.owner.name}"
        steps = set(start.get(key, [])) | {step}
        start[key] = [1] if 1 in steps else sorted(steps)
    return start, end


_original_consolidate = GeNNDevice.consolidate_pull_operations


def patch():
    """Apply the changes above to the loaded brian2genn (idempotent)."""
    GeNNCodeObject.templater.templates._templates["engine"] = _patched_engine_template()
    GeNNDevice.consolidate_pull_operations = _consolidate_pull_operations
