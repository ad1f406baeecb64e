{# A dense synaptic pathway (all-to-all, synapses in presynaptic-major order,
   no per-synapse delays; `spikedyn_brian.devices.dense`): the pathway's own
   event code, run over a contiguous row (pre pathway: synapse i*N_post + j for
   every target j of a spiking source i) or a column (post pathway: synapse
   i*N_post + j for every source i of a spiking target j), without a
   SpikeQueue. The vector code is Brian2's, with the synapse's pre/post index
   loads replaced by the loop indices. Events are processed in the order of the
   event space, targets in increasing order: the same floating-point
   operations, in the same order, as Brian2's generic path. #}
{% extends 'common_synapses.cpp' %}

{% block maincode %}
    {# USES_VARIABLES { _synaptic_pre, _synaptic_post } #}
    // scalar code
    const size_t _vectorisation_idx = -1;
    {{scalar_code|autoindent}}

    {% set dense = dense_pathway %}
    {% set body = namespace(code=(vector_code if vector_code is string else vector_code|join('\n'))) %}
    {% for index_load, loop_index in dense.replacements %}
    {% set body.code = body.code|replace(index_load, loop_index) %}
    {% endfor %}
    const int32_t* __restrict _dense_events = brian::{{dense.eventspace}};
    const int32_t _dense_event_count = _dense_events[{{dense.n_source}}];
    if (_dense_event_count > 0)
    {
    {% if dense.direction == 'pre' %}
    // Rows: every target of a spiking source, split into one block of
    // targets per thread (each thread owns its targets: no write conflicts).
    {% if dense.parallel %}
    {{ openmp_pragma('parallel') }}
    {% endif %}
    {
        size_t _dense_j_begin = 0, _dense_j_end = {{dense.n_post}};
        {% if dense.parallel %}
        #ifdef _OPENMP
        {
            const size_t _threads = omp_get_num_threads(), _thread = omp_get_thread_num();
            const size_t _block = ({{dense.n_post}} + _threads - 1) / _threads;
            _dense_j_begin = std::min((size_t){{dense.n_post}}, _thread * _block);
            _dense_j_end = std::min((size_t){{dense.n_post}}, _dense_j_begin + _block);
        }
        #endif
        {% endif %}
        for (int32_t _dense_event = 0; _dense_event < _dense_event_count; _dense_event++)
        {
            const size_t _dense_i = _dense_events[_dense_event];
            const size_t _dense_row = _dense_i * {{dense.n_post}};
            #pragma GCC ivdep
            for (size_t _dense_j = _dense_j_begin; _dense_j < _dense_j_end; _dense_j++)
            {
                const size_t _idx = _dense_row + _dense_j;
                const size_t _vectorisation_idx = _idx;
                {{body.code|autoindent}}
            }
        }
    }
    {% else %}
    // Columns: every source of a spiking target (strided), split into one
    // block of sources per thread.
    {% if dense.parallel %}
    {{ openmp_pragma('parallel') }}
    {% endif %}
    {
        size_t _dense_i_begin = 0, _dense_i_end = {{dense.n_pre}};
        {% if dense.parallel %}
        #ifdef _OPENMP
        {
            const size_t _threads = omp_get_num_threads(), _thread = omp_get_thread_num();
            const size_t _block = ({{dense.n_pre}} + _threads - 1) / _threads;
            _dense_i_begin = std::min((size_t){{dense.n_pre}}, _thread * _block);
            _dense_i_end = std::min((size_t){{dense.n_pre}}, _dense_i_begin + _block);
        }
        #endif
        {% endif %}
        for (int32_t _dense_event = 0; _dense_event < _dense_event_count; _dense_event++)
        {
            const size_t _dense_j = _dense_events[_dense_event];
            #pragma GCC ivdep
            for (size_t _dense_i = _dense_i_begin; _dense_i < _dense_i_end; _dense_i++)
            {
                const size_t _idx = _dense_i * {{dense.n_post}} + _dense_j;
                const size_t _vectorisation_idx = _idx;
                {{body.code|autoindent}}
            }
        }
    }
    {% endif %}
    }
{% endblock %}

{% block extra_headers %}
{{ super() }}
#include <algorithm>
#ifdef _OPENMP
#include <omp.h>
#endif
{% endblock %}
