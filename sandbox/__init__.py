"""The local world: moto for AWS, an SES-like SMTP server, a Secrets Manager rotation driver.

Used by the tests, ``make demo`` and the benchmarks alike; never shipped in the Lambda zip.
"""
