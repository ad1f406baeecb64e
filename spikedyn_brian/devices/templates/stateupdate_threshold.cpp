{# One pass over a neuron group per step in `cpp_dense`
   (`spikedyn_brian.devices.dense`): the group's state update and its spike
   condition in one loop, then the spiking neurons collected as in
   `threshold.cpp`. The device uses it only where Brian2's threshold of the
   group may run right after its state updater: nothing scheduled between them
   (other groups' updates) reads or writes a variable of the threshold, the
   threshold calls no stateful function (rand), and neither block calls a
   function whose result depends on how the compiler vectorises the loop
   (`DenseStandaloneDevice.exact_under_vectorisation`: exp, log, ...). Each
   block is Brian2's own code for it (abstract code blocks 'stateupdate' and
   'threshold', translated as in their own code objects), in its own scope;
   the threshold block reads what the state update block has just stored.
   The same operations in the same order for each neuron; the loop runs once
   instead of twice. #}
{# USES_VARIABLES { N } #}
{# ALLOWS_SCALAR_WRITE #}
{% extends 'common_group.cpp' %}

{% block maincode %}
    //// MAIN CODE ////////////
    // scalar code
    const size_t _vectorisation_idx = -1;
    {{scalar_code['stateupdate']|autoindent}}
    {
    {{scalar_code['threshold']|autoindent}}

    {% set _eventspace = get_array_name(eventspace_variable) %}
    static std::vector<char> _conditions;
    if (_conditions.size() < N)
        _conditions.resize(N);
    char* __restrict _condition = _conditions.data();
    const int _N = N;
    for(int _idx=0; _idx<_N; _idx++)
    {
        const size_t _vectorisation_idx = _idx;
        {
            // state update
            {{vector_code['stateupdate']|autoindent}}
        }
        {
            // threshold condition
            {{vector_code['threshold']|autoindent}}
            _condition[_idx] = _cond;
        }
    }
    long _count = 0;
    size_t _block = 0;
    for(; _block + 8 <= N; _block += 8)
    {
        uint64_t _word;
        std::memcpy(&_word, _condition + _block, 8);
        if (_word == 0)
            continue;
        for(size_t _idx=_block; _idx<_block + 8; _idx++)
        {
            if(_condition[_idx]) {
                {{_eventspace}}[_count++] = _idx;
                {% if _uses_refractory %}
                {{not_refractory}}[_idx] = false;
                {{lastspike}}[_idx] = {{t}};
                {% endif %}
            }
        }
    }
    for(size_t _idx=_block; _idx<N; _idx++)
    {
        if(_condition[_idx]) {
            {{_eventspace}}[_count++] = _idx;
            {% if _uses_refractory %}
            {{not_refractory}}[_idx] = false;
            {{lastspike}}[_idx] = {{t}};
            {% endif %}
        }
    }
    {{_eventspace}}[N] = _count;
    }
{% endblock %}

{% block extra_headers %}
{{ super() }}
#include <cstring>
#include <vector>
#include <stdint.h>
{% endblock %}
