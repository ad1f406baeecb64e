{# The state updater of `cpp_dense` (`spikedyn_brian.devices.dense`):
   Brian2's template, and for dense Synapses (`dense_synapses`: run_regularly
   code and clock-driven equations of synapses made by one plain all-to-all
   connect()) the same synapses i*N_post + j in the same order as a loop over
   rows and a contiguous loop over their targets, with the index loads
   `_synaptic_pre[_idx]`/`_synaptic_post[_idx]` replaced by the loop indices:
   no indirection, so the target loop vectorises, and column sums such as
   `input_weight_sum_post += w` add the same terms in the same order. The
   device uses it only for code that calls no function whose result depends
   on how the compiler vectorises it (`DenseStandaloneDevice.exact_under_vectorisation`).
   Should the synapses not number n_pre * n_post at run time, Brian2's loop runs. #}
{# USES_VARIABLES { N } #}
{# ALLOWS_SCALAR_WRITE #}
{% extends 'common_group.cpp' %}

{% block maincode %}
    //// MAIN CODE ////////////
    // scalar code
    const size_t _vectorisation_idx = -1;
    {{scalar_code|autoindent}}

    {# N is a constant in most cases (NeuronGroup, etc.), but a scalar array for
       synapses, we therefore have to take care to get its value in the right
       way. #}
    const int _N = {{constant_or_scalar('N', variables['N'])}};
    {% set dense = dense_synapses|default(none) %}
    {% if dense is not none %}
    {% set body = namespace(code=(vector_code if vector_code is string else vector_code|join('\n'))) %}
    {% for index_load, loop_index in dense.replacements %}
    {% set body.code = body.code|replace(index_load, loop_index) %}
    {% endfor %}
    if (_N == {{dense.n_pre}} * {{dense.n_post}})
    {
        // Dense synapses: rows of contiguous targets, in synapse order.
        for (size_t _dense_i = 0; _dense_i < {{dense.n_pre}}; _dense_i++)
        {
            const size_t _dense_row = _dense_i * {{dense.n_post}};
            #pragma GCC ivdep
            for (size_t _dense_j = 0; _dense_j < {{dense.n_post}}; _dense_j++)
            {
                const size_t _idx = _dense_row + _dense_j;
                const size_t _vectorisation_idx = _idx;
                {{body.code|autoindent}}
            }
        }
    }
    else
    {% endif %}
    {
    {{openmp_pragma('parallel-static')}}
    for(int _idx=0; _idx<_N; _idx++)
    {
        // vector code
        const size_t _vectorisation_idx = _idx;
        {{vector_code|autoindent}}
    }
    }
{% endblock %}
