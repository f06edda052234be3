"""Great Expectations suites, custom expectations and rule severities for the validate phase.

Importing this package is cheap; `expectations.custom` (imported by `expectations.loader`) pulls in
Great Expectations and registers the custom expectations.
"""
