"""The synthetic study cohort: 34 FHIR R4 patients shaped after the source study's Table 1 and Table 2.

``offline.cohort.generate`` writes the bundles (``python -m offline.cohort.generate``; offline, not
shipped), ``load`` reads them with their ``@day-N`` dates resolved, ``demo_cli`` assesses them through
the service (``hcc-cds demo``).
No real patient data.
"""
