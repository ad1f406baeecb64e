"""``cpp_dense``: Brian2's C++ standalone device with contiguous loops for dense pathways.

Brian2's generic synaptic propagation pushes every synapse of every spiking
neuron into a ``SpikeQueue`` and then loops over those synapse indices with an
indirection (``_postsynaptic_idx = _synaptic_post[_idx]``) that no compiler
vectorises. For a **dense** pathway — its Synapses connected all-to-all by a
single ``connect()`` (so synapse ``i * N_post + j`` joins source ``i`` to
target ``j``: presynaptic-major order), with no per-synapse delays and no
subgroups — this device instead generates, for every spiking presynaptic
neuron, one contiguous loop over its row with the pathway's own ``on_pre``
code (template ``synapses_dense``), and for every spiking postsynaptic neuron
a loop over its column with the ``on_post`` code. No ``SpikeQueue`` is used
(template ``synapses_push_spikes_dense``). The loop body is the vector code
Brian2 generates from the model's equations, with the index loads replaced
by the loop indices, so every model (Diehl & Cook, ASP, SpikeDyn and their
options) runs unchanged, and the floating-point operations and their order
are those of Brian2's generic path: results are identical to
``cpp_standalone``.

Everything else (state updaters, thresholds, monitors, run_regularly
operations, non-dense pathways) is Brian2's. The device is registered in
Brian2's ``all_devices`` as ``'cpp_dense'``, the way brian2cuda and brian2genn
register theirs::

    import spikedyn_brian.devices.dense  # registers 'cpp_dense'
    set_device("cpp_dense", directory="build", require_dense=["input_synapses"])

``require_dense`` names Synapses that *must* be dense: the device refuses such
a pathway with a `DenseDeviceError` saying why when it is not (e.g. per-synapse
delays). Other pathways are made dense when they qualify and left to Brian2
otherwise.
"""

from brian2.devices.cpp_standalone.codeobject import CPPStandaloneCodeObject
from brian2.devices.cpp_standalone.device import CPPStandaloneDevice
from brian2.devices.device import all_devices
from brian2.groups.subgroup import Subgroup
from brian2.parsing.statements import parse_statement

__all__ = ["DenseCodeObject", "DenseStandaloneDevice", "DenseDeviceError", "DEVICE_NAME"]

#: Name of the device in Brian2's ``all_devices``.
DEVICE_NAME = "cpp_dense"


class DenseDeviceError(RuntimeError):
    """A pathway the device was asked to make dense cannot be."""


class DenseCodeObject(CPPStandaloneCodeObject):
    """C++ standalone code object that also finds the templates of this package."""

    templater = CPPStandaloneCodeObject.templater.derive(
        "spikedyn_brian.devices", templates_dir="templates"
    )


def _all_to_all(template_kwds, abstract_code):
    """Whether a ``synapses_create_generator`` call is a plain ``connect()``."""
    kwds = template_kwds or {}
    code = {key: str(value).strip() for key, value in abstract_code.items()}
    return (
        kwds.get("outer_index") == "i"
        and kwds.get("iterator_func") == "range"
        and kwds.get("iterator_kwds") == {"low": "0", "high": "N_post", "step": "1"}
        and not kwds.get("result_index_condition")
        and kwds.get("multisynaptic_index") is None
        and code.get("create_cond") == "_cond = True"
        and code.get("generator_expr", "").endswith("_j = _k")
        and code.get("update", "").endswith("_n = 1")
    )


def _written_variables(code):
    """Names assigned in abstract code (one statement per line)."""
    written = set()
    for line in str(code).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            written.add(parse_statement(line)[0])
    return written


class DenseStandaloneDevice(CPPStandaloneDevice):
    """C++ standalone device with contiguous row/column loops for dense pathways.

    See the module documentation. Only the code objects of dense pathways
    differ from `CPPStandaloneDevice`'s.
    """

    def __init__(self):
        super().__init__()
        #: Synapses name → list of (connect call is all-to-all) booleans.
        self.connections = {}
        #: Names of Synapses that must be dense (``activate(require_dense=...)``).
        self.require_dense = set()
        #: Pathway names made dense in this build.
        self.dense_pathways = []
        #: Group name → variables that generated code sets (``group.x = 'expr'``).
        self.code_written = {}

    def __repr__(self):
        return (f"DenseStandaloneDevice(project_dir={self.project_dir!r}, "
                f"dense_pathways={self.dense_pathways!r})")

    def reinit(self):
        require = self.require_dense
        super().reinit()
        self.connections = {}
        self.dense_pathways = []
        self.code_written = {}
        self.require_dense = require

    def activate(self, build_on_run=True, require_dense=(), **kwargs):
        self.require_dense = set(require_dense)
        super().activate(build_on_run=build_on_run, **kwargs)

    def code_object_class(self, codeobj_class=None, fallback_pref=None):
        return DenseCodeObject if codeobj_class is None else codeobj_class

    # ------------------------------------------------------------ density
    def _written(self, variable):
        """Whether values were assigned to ``variable`` (arrays or single values)."""
        array_name = self.get_array_name(variable, access_data=False)
        for _, arguments in self.main_queue:
            if isinstance(arguments, tuple) and array_name in arguments:
                return True
        return False

    def why_not_dense(self, pathway):
        """Why ``pathway`` (a SynapticPathway) cannot be dense, or None if it can."""
        synapses = pathway.synapses
        connections = self.connections.get(synapses.name, [])
        if len(connections) != 1 or not connections[0]:
            return ("its synapses are not created by one plain all-to-all connect() "
                    f"({len(connections)} connect call(s) recorded)")
        if isinstance(synapses.source, Subgroup) or isinstance(synapses.target, Subgroup):
            return "its source or target is a subgroup"
        delay = pathway.variables["delay"]
        if delay.scalar:
            if float(delay.get_value()[0]) != 0.0:
                return "it has a non-zero delay"
        elif self._written(delay) or any(
                delay.name in self.code_written.get(owner, ())
                for owner in (synapses.name, pathway.name)):
            return "it has per-synapse (heterogeneous) delays"
        if pathway.event != "spike":
            return f"it is triggered by the custom event {pathway.event!r}"
        return None

    def _dense_template_kwds(self, pathway, abstract_code, variables, variable_indices):
        synapses = pathway.synapses
        n_pre, n_post = int(synapses.source.N), int(synapses.target.N)
        direction = pathway.prepost
        source = synapses.source if direction == "pre" else synapses.target
        event_source_index = "_presynaptic_idx" if direction == "pre" else "_postsynaptic_idx"
        code = "\n".join(str(value) for value in abstract_code.values())
        # Threads own blocks of the loop index: no two may write the element
        # that the event's own neuron indexes.
        parallel = not any(variable_indices.get(name) == event_source_index
                           for name in _written_variables(code))
        return {
            "direction": direction,
            "n_pre": n_pre,
            "n_post": n_post,
            "n_source": int(source.N),
            "eventspace": self.get_array_name(source.variables["_spikespace"]),
            # Index loads of the vector code → loop indices (where the code reads them).
            "replacements": [
                (f"_ptr{self.get_array_name(synapses.variables[name])}[_idx]", loop_index)
                for name, loop_index in (("_synaptic_pre", "_dense_i"),
                                         ("_synaptic_post", "_dense_j"))
            ],
            "parallel": parallel,
        }

    def code_object(self, owner, name, abstract_code, variables, template_name,
                    variable_indices, codeobj_class=None, template_kwds=None,
                    override_conditional_write=None, compiler_kwds=None):
        dense = None
        if template_name == "synapses_create_generator":
            self.connections.setdefault(owner.name, []).append(
                _all_to_all(template_kwds, abstract_code))
        elif template_name == "synapses_create_array":
            self.connections.setdefault(owner.name, []).append(False)
        elif template_name.startswith("group_variable_set"):
            self.code_written.setdefault(getattr(owner, "name", ""), set()).update(
                _written_variables("\n".join(str(v) for v in abstract_code.values())))
        elif template_name in ("synapses", "synapses_push_spikes"):
            # The pathway's event code belongs to its Synapses (the pathway is a
            # template keyword); the push code object to the pathway itself.
            pathway = owner if template_name == "synapses_push_spikes" else template_kwds["pathway"]
            reason = self.why_not_dense(pathway)
            if reason is None:
                template_name += "_dense"
                if template_name == "synapses_dense":
                    dense = self._dense_template_kwds(pathway, abstract_code, variables,
                                                      variable_indices)
                    template_kwds = dict(template_kwds or {}, dense_pathway=dense)
            elif pathway.synapses.name in self.require_dense:
                raise DenseDeviceError(
                    f"device '{DEVICE_NAME}' cannot make pathway '{pathway.name}' dense: "
                    f"{reason}. Dense pathways are all-to-all (one plain connect()), in "
                    "presynaptic-major order, without per-synapse delays; run this network "
                    "on 'cpp_standalone' instead"
                )
        codeobj = super().code_object(
            owner, name, abstract_code, variables, template_name, variable_indices,
            codeobj_class=codeobj_class, template_kwds=template_kwds,
            override_conditional_write=override_conditional_write,
            compiler_kwds=compiler_kwds,
        )
        if dense is not None:
            source = codeobj.code.cpp_file
            for index, _ in dense["replacements"]:
                if index in source:  # pragma: no cover - a Brian2 code generator change
                    raise DenseDeviceError(
                        f"pathway '{name}': the generated code still reads '{index}'; "
                        "this Brian2 version generates index loads the dense template "
                        "does not recognise"
                    )
            self.dense_pathways.append(template_kwds["pathway"].name)
        return codeobj


dense_standalone_device = DenseStandaloneDevice()
all_devices[DEVICE_NAME] = dense_standalone_device
