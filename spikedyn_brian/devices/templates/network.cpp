{# The network loop of `cpp_dense` (`spikedyn_brian.devices.dense`): Brian2's,
   with the same objects run in the same order at the same steps, and the
   clocks ticking as they do there, at less cost per step. Brian2's loop
   clears and refills a std::set of the current clocks at every step (an
   allocation per clock per step) and searches it once per object per step;
   here each object knows the index of its clock (found once per run), each
   step sets one flag per clock, and an object runs when its clock's flag is
   set. A step in which only clocks without code tick (Brian2's defaultclock
   at 0.1 ms under groups at 0.5 ms: four steps in five) skips the objects,
   unless a report function looks at the clock between objects. #}
{% macro cpp_file() %}

#include "network.h"
#include<stdlib.h>
#include<iostream>
#include <ctime>
#include<utility>
#include<chrono>
#include<algorithm>

{{ openmp_pragma('include') }}

#define Clock_epsilon 1e-14

double Network::_last_run_time = 0.0;
double Network::_last_run_completed_fraction = 0.0;
bool Network::_globally_stopped = false;
bool Network::_globally_running = false;

Network::Network()
{
    t = 0.0;
    code_due = false;
}

void Network::clear()
{
    objects.clear();
}

void Network::add(BaseClock* clock, codeobj_func func)
{
#if defined(_MSC_VER) && (_MSC_VER>=1700)
    objects.push_back(std::make_pair(std::move(clock), std::move(func)));
#else
    objects.push_back(std::make_pair(clock, func));
#endif
}

void Network::run(const double duration, void (*report_func)(const double, const double, const double, const double), const double report_period)
{
    std::chrono::time_point<std::chrono::high_resolution_clock> start, current;
    const double t_start = t;
    const double t_end = t + duration;
    double next_report_time = report_period;
    // compute the set of clocks
    compute_clocks();
    // set interval for all clocks

    for(std::vector<BaseClock*>::iterator i=clocks.begin(); i!=clocks.end(); i++)
        (*i)->set_interval(t, t_end);

    start = std::chrono::high_resolution_clock::now();
    if (report_func)
    {
        report_func(0.0, 0.0, t_start, duration);
    }

    BaseClock* clock = next_clocks();
    double elapsed_realtime;
    bool did_break_early = false;

    Network::_globally_running = true;
    Network::_globally_stopped = false;
    while(clock && clock->running() && !Network::_globally_stopped)
    {
        t = clock->t[0];

        // Nothing to run when only clocks without code tick (and no reports).
        const size_t n_objects = code_due || report_func ? objects.size() : 0;
        for(size_t i=0; i<n_objects; i++)
        {
            if (report_func)
            {
                current = std::chrono::high_resolution_clock::now();
                const double elapsed = std::chrono::duration<double>(current - start).count();
                if (elapsed > next_report_time)
                {
                    report_func(elapsed, (clock->t[0]-t_start)/duration, t_start, duration);
                    next_report_time += report_period;
                }
            }
            // Only execute the object if it uses the right clock for this step
            if (clock_active[object_clock[i]])
            {
                codeobj_func func = objects[i].second;
                if (func)  // code objects can be NULL in cases where we store just the clock
                    func();
            }
        }
        for(std::vector<BaseClock*>::iterator i=curclocks.begin(); i!=curclocks.end(); i++)
            (*i)->tick();
        clock = next_clocks();

        {% if maximum_run_time is not none %}
        current = std::chrono::high_resolution_clock::now();
        elapsed_realtime = std::chrono::duration<double>(current - start).count();
        if(elapsed_realtime>{{maximum_run_time}})
        {
            did_break_early = true;
            break;
        }
        {% endif %}

    }
    Network::_globally_running = false;
    current = std::chrono::high_resolution_clock::now();
    elapsed_realtime = std::chrono::duration<double>(current - start).count();

    if(!did_break_early && !Network::_globally_stopped)
        t = t_end;
    else
        t = clock->t[0];

    _last_run_time = elapsed_realtime;
    if(duration>0)
    {
        _last_run_completed_fraction = (t-t_start)/duration;
    } else {
        _last_run_completed_fraction = 1.0;
    }
    if (report_func)
    {
        report_func(elapsed_realtime, _last_run_completed_fraction, t_start, duration);
    }
}

void Network::compute_clocks()
{
    clocks.clear();
    object_clock.resize(objects.size());
    for(size_t i=0; i<objects.size(); i++)
    {
        BaseClock *clock = objects[i].first;
        std::vector<BaseClock*>::iterator found = std::find(clocks.begin(), clocks.end(), clock);
        object_clock[i] = found - clocks.begin();
        if (found == clocks.end())
            clocks.push_back(clock);
    }
    clock_active.assign(clocks.size(), 0);
    clock_has_code.assign(clocks.size(), 0);
    clock_times.resize(clocks.size());
    for(size_t i=0; i<clocks.size(); i++)
        clock_times[i] = clocks[i]->t;
    for(size_t i=0; i<objects.size(); i++)
        if (objects[i].second)
            clock_has_code[object_clock[i]] = 1;
    code_due = false;
}

BaseClock* Network::next_clocks()
{
    const size_t n = clocks.size();
    if (n == 0)
        return NULL;
    // find minclock, the first clock with the smallest t value
    size_t minclock = 0;
    double t = clock_times[0][0];
    for(size_t i=1; i<n; i++)
    {
        const double s = clock_times[i][0];
        if(s<t)
        {
            t = s;
            minclock = i;
        }
    }
    // find set of equal clocks
    curclocks.clear();
    bool due = false;
    for(size_t i=0; i<n; i++)
    {
        const double s = clock_times[i][0];
        const bool current = s==t || fabs(s-t)<=Clock_epsilon;
        clock_active[i] = current;
        due |= current && clock_has_code[i];
        if(current)
            curclocks.push_back(clocks[i]);
    }
    code_due = due;
    return clocks[minclock];
}

{% endmacro %}

{% macro h_file() %}

#ifndef _BRIAN_NETWORK_H
#define _BRIAN_NETWORK_H

#include<vector>
#include<utility>
#include<set>
#include "brianlib/clocks.h"

typedef void (*codeobj_func)();

class Network
{
    std::vector<BaseClock*> clocks, curclocks;
    // Per clock (as in clocks): whether it ticks in this step (it is in
    // curclocks) and whether an object with code uses it; per object: the
    // index of its clock.
    std::vector<char> clock_active, clock_has_code;
    std::vector<size_t> object_clock;
    std::vector<double*> clock_times;
    // Whether a clock with code ticks in this step.
    bool code_due;
    void compute_clocks();
    BaseClock* next_clocks();
public:
    std::vector< std::pair< BaseClock*, codeobj_func > > objects;
    double t;
    static double _last_run_time;
    static double _last_run_completed_fraction;
    static bool _globally_stopped;
    static bool _globally_running;

    Network();
    void clear();
    void add(BaseClock *clock, codeobj_func func);
    void run(const double duration, void (*report_func)(const double, const double, const double, const double), const double report_period);
};

#endif

{% endmacro %}
