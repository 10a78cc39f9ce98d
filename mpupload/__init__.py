"""mpupload: move very large collections of local files into S3, fast, and prove every byte arrived."""

__version__ = "0.1.0"
