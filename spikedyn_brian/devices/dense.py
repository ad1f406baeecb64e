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

Other exact rewrites, each the same floating-point operations in the same
order as Brian2's code (``templates/``):

* **One pass per neuron group and step** (template ``stateupdate_threshold``):
  a group's state update and spike condition in one loop, where nothing that
  runs between Brian2's state updater and threshold of the group (the other
  groups' updates) touches a variable of the threshold (`network_run`).
* **Dense Synapses' own code** (run_regularly operations such as the weight
  column sums and the normalisation, clock-driven synapse equations): rows of
  contiguous targets without index loads (template ``stateupdate``).
* **The network loop** (template ``network``): one flag per clock instead of
  a search per object and step.

A loop is only restructured when its code calls no function outside
`EXACT_FUNCTIONS` (`exact_under_vectorisation`): the last bit of ``exp`` and
its kind depends on whether gcc vectorises the loop around it, and with
which vector width (glibc's scalar ``exp`` and its vector versions round
differently), and any change of a loop body may change that choice. The
neuron updates of exponential Euler call ``exp`` per neuron; they stay
Brian2's loops, each with its own threshold pass (template ``threshold``).

Everything else (resets, monitors, non-dense pathways) is Brian2's. The device
is registered in Brian2's ``all_devices`` as ``'cpp_dense'``, the way
brian2cuda and brian2genn register theirs::

    import spikedyn_brian.devices.dense  # registers 'cpp_dense'
    set_device("cpp_dense", directory="build", require_dense=["input_synapses"])

``require_dense`` names Synapses that *must* be dense: the device refuses such
a pathway with a `DenseDeviceError` saying why when it is not (e.g. per-synapse
delays). Other pathways are made dense when they qualify and left to Brian2
otherwise.
"""

import copy
import re

from brian2.core.functions import Function
from brian2.core.preferences import prefs
from brian2.core.variables import ArrayVariable
from brian2.devices.cpp_standalone.codeobject import CPPStandaloneCodeObject
from brian2.devices.cpp_standalone.device import CPPStandaloneDevice
from brian2.devices.device import all_devices
from brian2.groups.neurongroup import NeuronGroup
from brian2.groups.subgroup import Subgroup
from brian2.parsing.statements import parse_statement
from brian2.synapses.synapses import Synapses
from brian2.units import second

__all__ = ["DenseCodeObject", "DenseStandaloneDevice", "DenseDeviceError", "DEVICE_NAME",
           "EXACT_FUNCTIONS"]

#: Name of the device in Brian2's ``all_devices``.
DEVICE_NAME = "cpp_dense"


class DenseDeviceError(RuntimeError):
    """A pathway the device was asked to make dense cannot be."""


#: Functions whose C++ result is the same however the compiler vectorises the call:
#: exactly rounded IEEE arithmetic or integer results. Every other function (exp, log,
#: ...) may round differently in glibc's scalar and vector versions (libmvec's SSE
#: version also differs from its AVX2/AVX-512 ones), so its last bit depends on the
#: vector width the compiler picks for the loop around it.
EXACT_FUNCTIONS = frozenset({"timestep", "clip", "int", "abs", "sign", "floor", "ceil"})


class DenseCodeObject(CPPStandaloneCodeObject):
    """C++ standalone code object that also finds the templates of this package."""

    templater = CPPStandaloneCodeObject.templater.derive(
        "spikedyn_brian.devices", templates_dir="templates"
    )


#: Template of a group's fused state update and threshold (`DenseStandaloneDevice.network_run`).
FUSED_TEMPLATE = "stateupdate_threshold"


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
        #: Code object name → the arguments it was made from (to fuse code objects).
        self.code_object_sources = {}
        #: Whether a group's state update and threshold may run as one pass.
        self.fuse_neuron_passes = True
        #: Neuron group name → why its passes stay apart (for the groups not fused).
        self.unfused_groups = {}
        #: Neuron groups whose state update and threshold run as one pass.
        self.fused_groups = []
        #: Synapses whose own code (state update, run_regularly) loops over dense rows.
        self.dense_synapse_code = []

    def __repr__(self):
        return (f"DenseStandaloneDevice(project_dir={self.project_dir!r}, "
                f"dense_pathways={self.dense_pathways!r})")

    def reinit(self):
        require, fuse = self.require_dense, self.fuse_neuron_passes
        super().reinit()
        self.connections = {}
        self.dense_pathways = []
        self.code_written = {}
        self.code_object_sources = {}
        self.unfused_groups = {}
        self.fused_groups = []
        self.dense_synapse_code = []
        self.require_dense = require
        self.fuse_neuron_passes = fuse

    def activate(self, build_on_run=True, require_dense=(), fuse_neuron_passes=True, **kwargs):
        """``require_dense``: Synapses that must be dense; ``fuse_neuron_passes``: one
        pass per neuron group and step where the order allows it (`network_run`)."""
        self.require_dense = set(require_dense)
        self.fuse_neuron_passes = bool(fuse_neuron_passes)
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

    def why_synapses_not_dense(self, synapses):
        """Why ``synapses`` are not dense (i*N_post + j joins i to j), or None if they are."""
        connections = self.connections.get(synapses.name, [])
        if len(connections) != 1 or not connections[0]:
            return ("its synapses are not created by one plain all-to-all connect() "
                    f"({len(connections)} connect call(s) recorded)")
        if isinstance(synapses.source, Subgroup) or isinstance(synapses.target, Subgroup):
            return "its source or target is a subgroup"
        return None

    def why_not_dense(self, pathway):
        """Why ``pathway`` (a SynapticPathway) cannot be dense, or None if it can."""
        synapses = pathway.synapses
        reason = self.why_synapses_not_dense(synapses)
        if reason is not None:
            return reason
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

    def _index_replacements(self, synapses):
        """Index loads of the vector code → loop indices (where the code reads them)."""
        return [
            (f"_ptr{self.get_array_name(synapses.variables[name])}[_idx]", loop_index)
            for name, loop_index in (("_synaptic_pre", "_dense_i"), ("_synaptic_post", "_dense_j"))
        ]

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
            "replacements": self._index_replacements(synapses),
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
        elif (template_name == "stateupdate" and isinstance(owner, Synapses)
              and not prefs.devices.cpp_standalone.openmp_threads
              and self.why_synapses_not_dense(owner) is None
              and self.exact_under_vectorisation({
                  "owner": owner, "abstract_code": abstract_code, "variables": variables,
                  "template_name": template_name, "variable_indices": variable_indices,
                  "codeobj_class": codeobj_class,
                  "override_conditional_write": override_conditional_write})):
            # The Synapses' own code (run_regularly, clock-driven equations): rows.
            template_kwds = dict(template_kwds or {}, dense_synapses={
                "n_pre": int(owner.source.N), "n_post": int(owner.target.N),
                "replacements": self._index_replacements(owner)})
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
        if "dense_synapses" in (template_kwds or {}):
            self.dense_synapse_code.append(codeobj.name)
        self.code_object_sources[codeobj.name] = {
            "owner": owner, "abstract_code": abstract_code, "variables": variables,
            "template_name": template_name, "variable_indices": variable_indices,
            "codeobj_class": codeobj_class, "template_kwds": template_kwds,
            "override_conditional_write": override_conditional_write,
            "compiler_kwds": compiler_kwds,
        }
        return codeobj

    # ------------------------------------------------------------ exactness
    def _vector_code(self, source):
        """The vector code Brian2 generates for a code object's arguments (one string)."""
        codeobj_class = self.code_object_class(source["codeobj_class"])
        template = getattr(codeobj_class.templater, source["template_name"])
        generator = codeobj_class.generator_class(
            variables=source["variables"], variable_indices=source["variable_indices"],
            owner=source["owner"], iterate_all=template.iterate_all,
            codeobj_class=codeobj_class,
            override_conditional_write=source["override_conditional_write"],
            allows_scalar_write=template.allows_scalar_write,
            name="_dense_exactness_check", template_name=source["template_name"])
        _, vector_code, _ = generator.translate(source["abstract_code"],
                                                dtype=prefs["core.default_float_dtype"])
        return "\n".join(code if isinstance(code, str) else "\n".join(code)
                         for code in vector_code.values())

    def inexact_functions(self, source):
        """Functions outside `EXACT_FUNCTIONS` that a code object's per-element code calls."""
        codeobj_class = self.code_object_class(source["codeobj_class"])
        called = set(re.findall(r"\b([A-Za-z_]\w*)\s*\(", self._vector_code(source)))
        inexact = set()
        for key, value in source["variables"].items():
            if not isinstance(value, Function) or key in EXACT_FUNCTIONS:
                continue
            try:
                cpp_name = value.implementations[codeobj_class].name or key
            except KeyError:
                cpp_name = key
            if key in called or cpp_name in called:
                inexact.add(key)
        return sorted(inexact)

    def exact_under_vectorisation(self, source):
        """Whether a code object's per-element code gives the same bits however its loop
        is vectorised: only +, -, *, /, comparisons and `EXACT_FUNCTIONS`."""
        return not self.inexact_functions(source)

    # ------------------------------------------------------------ one pass per group
    def network_run(self, net, duration, report=None, report_period=10 * second,
                    namespace=None, profile=None, level=0, **kwds):
        """Brian2's `network_run`, then one pass per neuron group and step where the
        order allows it (`fuse_neuron_passes`), before a build on run."""
        build_on_run, self.build_on_run = self.build_on_run, False
        try:
            super().network_run(net, duration, report=report, report_period=report_period,
                                namespace=namespace, profile=profile, level=level + 1, **kwds)
        finally:
            self.build_on_run = build_on_run
        if self.fuse_neuron_passes and not prefs.devices.cpp_standalone.openmp_threads:
            self._fuse_neuron_passes(net)
        if self.build_on_run:
            if self.has_been_run:
                raise RuntimeError(
                    "The network has already been built and run before. Use set_device "
                    "with build_on_run=False and an explicit device.build call to use "
                    "multiple run statements with this device.")
            self.build(direct_call=False, **self.build_options)

    def _fuse_neuron_passes(self, net):
        """Run each neuron group's threshold in the loop of its state updater.

        Brian2 runs a group's state updater (``when='groups'``) and its threshold
        (``'thresholds'``) as two code objects; between them run only the other
        groups' state updaters. The threshold may move up to its state updater
        when none of the code objects scheduled in between reads or writes any
        array it reads or writes (clock variables aside: only the network loop
        writes them) and it calls no stateful function: then every value it
        reads and writes is the same, and so is every value those code objects
        see. The fused code object (template ``stateupdate_threshold``) takes
        the state updater's place in the loop; the threshold's leaves it (its
        after-run code, which empties the event space, stays).
        """
        # The run's entry in the main queue (after-run code of the run's code objects
        # follows it).
        runs = [arguments for kind, arguments in self.main_queue if kind == "run_network"]
        if not runs or runs[-1][0] is not net:  # pragma: no cover - a Brian2 change
            return
        run_lines = runs[-1][1]
        sequence = [(obj, codeobj.name) for obj in net.sorted_objects if obj.active
                    for codeobj in obj._code_objects]
        clock_variables = {id(variable) for obj in net.objects
                           for variable in obj.clock.variables.values()}
        runners = [obj for obj, _ in sequence]
        groups = sorted(
            (obj for obj in net.objects if isinstance(obj, NeuronGroup)),
            key=lambda group: (runners.index(group.state_updater)
                               if getattr(group, "state_updater", None) in runners
                               else len(runners)))
        for group in groups:
            reason = self._fuse_group(group, sequence, clock_variables, run_lines)
            if reason is not None:
                self.unfused_groups[group.name] = reason

    def _fuse_group(self, group, sequence, clock_variables, run_lines):
        """Fuse ``group``'s state updater and threshold; None, or why not."""
        updater = getattr(group, "state_updater", None)
        threshold = getattr(group, "thresholder", {}).get("spike")
        if updater is None or threshold is None:
            return "it has no state updater or no threshold"
        if not (updater.active and threshold.active) or updater.clock is not threshold.clock:
            return "its state updater and threshold are not both active on one clock"
        if len(updater._code_objects) != 1 or len(threshold._code_objects) != 1:
            return "its state updater or threshold has no code (or more than one)"
        names = [name for _, name in sequence]
        update_name, threshold_name = updater._code_objects[0].name, threshold._code_objects[0].name
        if names.count(update_name) != 1 or names.count(threshold_name) != 1:
            return "its code objects are not in the network loop once each"
        first, last = names.index(update_name), names.index(threshold_name)
        if first > last:
            return "its threshold runs before its state updater"
        update, check = (self.code_object_sources.get(update_name),
                         self.code_object_sources.get(threshold_name))
        if (update is None or check is None or update["template_name"] != "stateupdate"
                or check["template_name"] != "threshold"
                or set(update["abstract_code"]) != {None} or set(check["abstract_code"]) != {None}):
            return "its code objects are not Brian2's state update and threshold"
        if any(isinstance(value, Function) and not value.stateless
               for value in check["variables"].values()):
            return "its threshold calls a stateful function (random numbers)"
        inexact = self.inexact_functions(update) + self.inexact_functions(check)
        if inexact:
            return (f"its per-neuron code calls {', '.join(sorted(set(inexact)))}, whose last "
                    "bit depends on how the compiler vectorises the loop around it")
        arrays = {id(value) for value in check["variables"].values()
                  if isinstance(value, ArrayVariable) and id(value) not in clock_variables}
        for _, name in sequence[first + 1:last]:
            shared = [key for key, value in self.code_objects[name].variables.items()
                      if id(value) in arrays]
            if shared:
                return f"'{name}' runs in between and uses {', '.join(sorted(shared))}"
        # In one loop the threshold of neuron i runs before the update of neuron i + 1:
        # it may only read what the update writes at its own index.
        written = {id(update["variables"][name]) for name in
                   _written_variables("\n".join(update["abstract_code"].values()))
                   if name in update["variables"]}
        for key, value in check["variables"].items():
            if id(value) in written and check["variable_indices"][key] != "_idx":
                return f"its threshold reads '{key}' of other neurons than its own"
        variables, indices = dict(update["variables"]), copy.copy(update["variable_indices"])
        for key, value in check["variables"].items():
            if variables.setdefault(key, value) is not value:
                return f"its state update and threshold mean different things by '{key}'"
        for key, value in check["variable_indices"].items():
            if indices.setdefault(key, value) != value:
                return f"its state update and threshold index '{key}' differently"
        update_line = [i for i, line in enumerate(run_lines)
                       if line.endswith(f", _run_{update_name});")]
        threshold_line = [i for i, line in enumerate(run_lines)
                          if line.endswith(f", _run_{threshold_name});")]
        if len(update_line) != 1 or len(threshold_line) != 1:  # pragma: no cover
            return "its code objects are not in the network's run lines once each"
        compiler_kwds = {}
        for source in (update, check):
            for key, values in (source["compiler_kwds"] or {}).items():
                merged = compiler_kwds.setdefault(key, [])
                merged += [value for value in values if value not in merged]
        fused = self.code_object(
            group, f"{group.name}_stateupdater_thresholder_codeobject*",
            {"stateupdate": update["abstract_code"][None],
             "threshold": check["abstract_code"][None]},
            variables, FUSED_TEMPLATE, indices, codeobj_class=update["codeobj_class"],
            template_kwds=dict(update["template_kwds"] or {}, **(check["template_kwds"] or {})),
            override_conditional_write=update["override_conditional_write"],
            compiler_kwds=compiler_kwds)
        run_lines[update_line[0]] = run_lines[update_line[0]].replace(
            f"_run_{update_name});", f"_run_{fused.name});")
        del run_lines[threshold_line[0]]
        position = sequence[first][0]
        sequence[first] = (position, fused.name)
        del sequence[last]
        self.fused_groups.append(group.name)
        return None


dense_standalone_device = DenseStandaloneDevice()
all_devices[DEVICE_NAME] = dense_standalone_device
