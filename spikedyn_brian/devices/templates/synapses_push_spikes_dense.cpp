{# A dense pathway's spike "push" (`spikedyn_brian.devices.dense`): nothing to
   do. Its synapses are found from the source's event space by the pathway's
   own code object (synapses_dense), so no SpikeQueue is prepared or filled. #}
{# USES_VARIABLES { _n_sources, _n_targets } #}
{% extends 'common_group.cpp' %}

{% block maincode %}
    // dense pathway {{owner.name}}: no SpikeQueue (see synapses_dense)
{% endblock %}
