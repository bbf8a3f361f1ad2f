"""The synthetic study cohort: 34 FHIR R4 patients shaped after the source study's Table 1 and Table 2.

``generate`` writes the bundles (``python -m service.cohort.generate``), ``load`` reads them with
their ``@day-N`` dates resolved, ``demo_cli`` assesses them through the service (``hcc-cds demo``).
No real patient data.
"""
