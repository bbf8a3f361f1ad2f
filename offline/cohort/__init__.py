"""The synthetic study cohort's generator (offline; the service reads its output with ``service.cohort.load``)."""
