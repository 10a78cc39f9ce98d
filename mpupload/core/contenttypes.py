"""Content types by file suffix, from a table shipped with mpupload.

Not the standard library's `mimetypes`: it reads the host's /etc/mime.types (and the Windows registry), so two
machines of one Dask cluster, or this year's run and next year's, could label the same file differently. A
compressed file is labelled as what its bytes are (`a.csv.gz` is application/gzip, with no Content-Encoding),
since the object holds the compressed bytes; `--content-type` and `--content-encoding` say otherwise when a
user wants it served decompressed. A suffix not in the table gets no Content-Type (S3 then says
binary/octet-stream)."""

from __future__ import annotations

TYPES: dict[str, str] = {
    # images (archives of scans: the common case)
    ".jp2": "image/jp2", ".j2k": "image/jp2", ".jpf": "image/jpx", ".jpx": "image/jpx", ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg", ".jpe": "image/jpeg", ".png": "image/png", ".gif": "image/gif", ".tif": "image/tiff",
    ".tiff": "image/tiff", ".bmp": "image/bmp", ".webp": "image/webp", ".svg": "image/svg+xml",
    ".ico": "image/vnd.microsoft.icon", ".heic": "image/heic", ".heif": "image/heif", ".avif": "image/avif",
    ".psd": "image/vnd.adobe.photoshop", ".dng": "image/x-adobe-dng", ".cr2": "image/x-canon-cr2",
    ".nef": "image/x-nikon-nef", ".jxl": "image/jxl", ".pbm": "image/x-portable-bitmap",
    ".pgm": "image/x-portable-graymap", ".ppm": "image/x-portable-pixmap", ".djvu": "image/vnd.djvu",
    # documents and text
    ".pdf": "application/pdf", ".txt": "text/plain", ".text": "text/plain", ".log": "text/plain",
    ".md": "text/markdown", ".csv": "text/csv", ".tsv": "text/tab-separated-values", ".html": "text/html",
    ".htm": "text/html", ".css": "text/css", ".js": "text/javascript", ".mjs": "text/javascript",
    ".json": "application/json", ".jsonl": "application/jsonl", ".ndjson": "application/x-ndjson",
    ".xml": "application/xml", ".xsl": "application/xslt+xml", ".yaml": "application/yaml",
    ".yml": "application/yaml", ".toml": "application/toml", ".rtf": "application/rtf", ".tex": "application/x-tex",
    ".epub": "application/epub+zip", ".doc": "application/msword", ".dot": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".ppt": "application/vnd.ms-powerpoint",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text", ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation", ".ics": "text/calendar", ".vcf": "text/vcard",
    ".eml": "message/rfc822", ".mbox": "application/mbox",
    # archives and compressed files: what the bytes are
    ".zip": "application/zip", ".gz": "application/gzip", ".tgz": "application/gzip", ".bz2": "application/x-bzip2",
    ".xz": "application/x-xz", ".zst": "application/zstd", ".lz4": "application/x-lz4", ".br": "application/x-brotli",
    ".z": "application/x-compress", ".7z": "application/x-7z-compressed", ".rar": "application/vnd.rar",
    ".tar": "application/x-tar", ".iso": "application/x-iso9660-image", ".warc": "application/warc",
    ".arc": "application/x-internet-archive",
    # audio and video
    ".mp3": "audio/mpeg", ".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg", ".oga": "audio/ogg",
    ".opus": "audio/opus", ".m4a": "audio/mp4", ".aac": "audio/aac", ".aif": "audio/aiff", ".aiff": "audio/aiff",
    ".mid": "audio/midi", ".midi": "audio/midi", ".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime",
    ".avi": "video/x-msvideo", ".mkv": "video/x-matroska", ".webm": "video/webm", ".ogv": "video/ogg",
    ".mpg": "video/mpeg", ".mpeg": "video/mpeg", ".wmv": "video/x-ms-wmv", ".flv": "video/x-flv",
    ".ts": "video/mp2t", ".mxf": "application/mxf",
    # data and science formats
    ".parquet": "application/vnd.apache.parquet", ".avro": "application/avro", ".orc": "application/x-orc",
    ".arrow": "application/vnd.apache.arrow.file", ".feather": "application/vnd.apache.arrow.file",
    ".h5": "application/x-hdf5", ".hdf5": "application/x-hdf5", ".nc": "application/x-netcdf",
    ".fits": "image/fits", ".fit": "image/fits", ".dcm": "application/dicom", ".nii": "application/x-nifti",
    ".sqlite": "application/vnd.sqlite3", ".db": "application/vnd.sqlite3", ".geojson": "application/geo+json",
    ".kml": "application/vnd.google-earth.kml+xml", ".kmz": "application/vnd.google-earth.kmz",
    ".shp": "application/x-esri-shape", ".gpx": "application/gpx+xml", ".las": "application/vnd.las",
    ".laz": "application/vnd.laszip", ".npy": "application/x-npy", ".wasm": "application/wasm",
    # fonts, code, binaries
    ".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".otf": "font/otf",
    ".py": "text/x-python", ".sh": "application/x-sh", ".c": "text/x-c", ".h": "text/x-c", ".java": "text/x-java",
    ".bin": "application/octet-stream", ".exe": "application/vnd.microsoft.portable-executable",
    ".dmg": "application/x-apple-diskimage", ".deb": "application/vnd.debian.binary-package",
    ".rpm": "application/x-rpm", ".jar": "application/java-archive", ".apk": "application/vnd.android.package-archive",
    ".pem": "application/x-pem-file", ".crt": "application/x-x509-ca-cert",
}


def content_type_for(name: str) -> str | None:
    """The content type of a file by its last suffix, case-insensitive ('scan.JP2' -> image/jp2); None when
    the table has no entry (or the name has no suffix: '.profile' is a name, not a suffix)."""
    base = name.rsplit("/", 1)[-1]
    dot = base.rfind(".")
    if dot <= 0:
        return None
    return TYPES.get(base[dot:].lower())
