{# The threshold of `cpp_dense` (`spikedyn_brian.devices.dense`): the same
   condition and the same event space as Brian2's template, in two passes so
   that the compiler can vectorise the first. Brian2's single loop appends to
   the event space as it goes, which no compiler vectorises. Pass 1 evaluates
   every neuron's condition into a byte array; pass 2 collects the indices of
   the neurons whose byte is set, in increasing order (skipping eight silent
   neurons at a time), and marks them refractory. Same events, same order. #}
{# USES_VARIABLES { N } #}
{% extends 'common_group.cpp' %}
{% block maincode %}
    //// MAIN CODE ////////////
    // scalar code
    const int _vectorisation_idx = -1;
    {{scalar_code|autoindent}}

    {% set _eventspace = get_array_name(eventspace_variable) %}
    static std::vector<char> _conditions;
    if (_conditions.size() < N)
        _conditions.resize(N);
    char* __restrict _condition = _conditions.data();
    for(size_t _idx=0; _idx<N; _idx++)
    {
        const size_t _vectorisation_idx = _idx;
        {{vector_code|autoindent}}
        _condition[_idx] = _cond;
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
{% endblock %}

{% block extra_headers %}
{{ super() }}
#include <cstring>
#include <vector>
#include <stdint.h>
{% endblock %}

{% block after_code %}
{% set _eventspace = get_array_name(eventspace_variable) %}
{{_eventspace}}[N] = 0;  // Note that this is not an off-by-1-error: the array has N+1 elements
{% endblock %}
