"""Benchmarks: mpupload against s5cmd, rclone, the AWS CLI and the seed's V2 design, on SeaweedFS."""
