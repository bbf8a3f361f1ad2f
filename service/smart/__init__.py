"""The SMART on FHIR app (issue 23): EHR launch, live assessment and measurement capture."""
