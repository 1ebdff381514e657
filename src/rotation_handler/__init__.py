"""AWS Secrets Manager rotation function for Amazon SES SMTP credentials.

``app.lambda_handler`` is the Lambda entry point; ``steps`` holds the four rotation steps,
``guard`` the staging-label checks, ``keys`` the IAM access key housekeeping and ``settings``
the function's configuration.
"""
