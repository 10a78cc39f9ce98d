"""The only code that speaks S3: clients, the route botocore resolved, SigV4, the lean PUT, the transport
(lean first, botocore when declined), multipart uploads, listings, the preflight and checksum probes."""
