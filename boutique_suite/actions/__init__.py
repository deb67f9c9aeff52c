"""What changes the platform, each change with its revert: faults, drift, disruptions the platform must ride
out, gitops commits, load (and the latency read from it), sealing, the scenario's test workload
(``cluster``), the revert journal that outlives a run (``journal``, replayed by ``reverts``), and the
catalogue of wrong commits the suite must catch (``mutations``, run by ``mutants``).

May import every other room."""
