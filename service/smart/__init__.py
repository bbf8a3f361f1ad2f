"""The SMART on FHIR app (issue 23): an EHR launch from the patient's chart into hcc-cds.

``discovery`` (the EHR's ``.well-known/smart-configuration``, behind the iss allowlist), ``launch`` (the
authorize URL with PKCE S256 and the code exchange, Authlib; the id_token, PyJWT), ``session`` (the
server-side session a browser's cookie names, and the FastAPI dependency that reads it), ``crypto``
(the Fernet keys encrypting what a session keeps). Nothing here is imported by ``service.db`` but
``session.SmartSession`` (kept free of the service's imports for that reason).
"""
