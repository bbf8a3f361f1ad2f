"""Screening a whole hospital from a FHIR Bulk Data export (issue 22): ``hcc-cds screen`` and the job API.

The flow, one module a step (data flows one way):

* ``backend_auth``  SMART Backend Services: a private_key_jwt client assertion for an access token;
* ``bulk_client``   ``$export`` kick-off, status polling, NDJSON downloads (retrying what is transient);
* ``sources``       a FHIR server's export or a folder/URL of NDJSON files -> local NDJSON files;
* ``partition``     NDJSON files -> partitions of whole patients on disk (bounded memory);
* ``runner``        one partition -> one result file, each patient through the hook call's gather -> map ->
                    assess (``service.pipeline.Assessor``), summarised by ``summary``;
* ``executors``     partitions on local processes or a Dask cluster;
* ``store``         runs and per-patient results in the database, with what changed since the last run;
* ``job``           one run from start to end (CLI and API), resumable.
"""
